"""The `retention` processor: a Retention run applies its organization's retention.

It deletes the data files of tasks that finished more than the organization's `task_data_days`
ago, a page at a time (each file first, and their objects when task data lives in an object
store, then, in a fenced transaction, the tasks' record that they hold no data, with their
chunks in the database), and marks the assets not seen for `stale_after_days` stale. Task
rows, events and change summaries are never deleted. Its events name the tasks whose data it
deleted and count the assets it marked, and its `stats` keep the counts.

Deleting a file or object that is already gone is no error, so a run that failed or lost its
lease half-way starts again and finishes the work. A failure (a file it may not delete, an
object store out of reach) goes the way of any processing failure: retried, then canceled
with the error; the next day's run tries again.
"""

from __future__ import annotations

from surveyor.core import retention as rules
from surveyor.core.retention import RetentionOutcome
from surveyor.core.task import Task
from surveyor.core.tasks import EventKind
from surveyor.processing.processors import ProcessingJob, StopRequested
from surveyor.store import retention as retention_store
from surveyor.store import tasks as task_store
from surveyor.store.system_tasks import SYSTEM
from surveyor.store.task_data_store import discard_task_data
from surveyor.store.taskdata import task_data_path
from surveyor.store.tasks import TaskEvent


def apply_retention(job: ProcessingJob) -> Task:
    """Delete expired task data, mark stale assets, and mark the run processed."""
    run = job.task
    now = job.clock.now()
    with job.db.read() as conn:
        settings = retention_store.get_settings(conn, run.organization_id)
    deleted: list[int] = []
    freed = 0
    after = 0
    while True:
        with job.db.read() as conn:
            page = retention_store.expired_task_data(
                conn,
                run.organization_id,
                before=settings.data_cutoff(now),
                after_id=after,
                limit=job.batch_size,
            )
        if not page:
            break
        for task_id, _size in page:
            task_data_path(job.data_dir, task_id).unlink(missing_ok=True)
        ids = [task_id for task_id, _size in page]
        discard_task_data(job.db, ids)
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": 0.5})
            retention_store.forget_task_data(conn, ids, run=run, settings=settings, now=now)
        deleted += ids
        freed += sum(size for _task_id, size in page)
        after = ids[-1]
        if job.should_stop():
            raise StopRequested(run.id)
    with job.db.write() as conn:
        job.fence(conn, {"progress_process": 0.9})
        marked, unmarked = retention_store.mark_stale(
            conn, run.organization_id, before=settings.stale_cutoff(now), now=now
        )
        outcome = RetentionOutcome(tuple(deleted), freed, marked, unmarked)
        events = [
            TaskEvent(EventKind.RETENTION, SYSTEM, message)
            for message in rules.deletion_messages(outcome.deleted_task_ids, settings)
        ]
        stale = rules.stale_message(outcome, settings)
        events.append(TaskEvent(EventKind.RETENTION, SYSTEM, stale))
        task_store.add_events(conn, run, events, now=now)
    return job.finish(message=rules.summary_message(outcome), changes={"stats": outcome.stats()})
