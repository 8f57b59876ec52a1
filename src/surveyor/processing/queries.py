"""The `query` processor: a Query task counts what each of its organization's pinned queries
finds and stores each count with its time (the history the Dashboard reads).

Each query is counted in a read transaction of its own and its count written in a fenced one
(the lease renewed, the progress advanced), so a long count holds no write lock. A query whose
search no longer compiles (a key was renamed) is left uncounted and named in the task's
message; the others are counted. A requeued task counts every query again: a count is a fact
of its time, so a second one is simply the newer.

A Query task is requested (`request_after_processing`) in the transaction that finishes any
other processing of the organization's data, and hourly by the scheduler
(`store.queries.organizations_due`); at most one waits per organization.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from surveyor.core.kinds import QUERY_PROCESSOR, find_kind
from surveyor.core.queries import QueryKind
from surveyor.core.search import SearchError
from surveyor.core.task import Task
from surveyor.processing.processors import ProcessingJob, StopRequested
from surveyor.store import queries as query_store

#: The event message of a Query task requested after processing.
AFTER_PROCESSING = "the organization's data was processed"


def refresh_queries(job: ProcessingJob) -> Task:
    """Count every pinned query of the task's organization and mark the task processed."""
    organization_id = job.task.organization_id
    with job.db.read() as conn:
        pinned = query_store.list_queries(conn, organization_id, pinned=True)
    failed: list[str] = []
    for done, query in enumerate(pinned, start=1):
        if job.should_stop():
            raise StopRequested(job.task.id)
        now = job.clock.now()
        try:
            with job.db.read() as conn:
                count = query_store.count_matches(
                    conn, organization_id, QueryKind(query.kind), query.search, now=now
                )
        except SearchError as exc:
            failed.append(f"{query.name!r} ({exc.message})")
            count = None
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": round(done / len(pinned), 4)})
            if count is not None:
                query_store.record_count(conn, query.id, count, counted_at=now, task_id=job.task.id)
    counted = len(pinned) - len(failed)
    message = f"counted {counted} pinned {'query' if counted == 1 else 'queries'}"
    if failed:
        message += f"; could not count {', '.join(failed)}"
    return job.finish(message=message, changes={"stats": {"queries": counted}})


def request_after_processing(conn: Connection, task: Task, now: datetime) -> None:
    """Queue a Query task of the task's organization, in the transaction that finishes its
    processing, unless the task is itself a Query task (or its organization pins nothing)."""
    kind = find_kind(task.type)
    if kind is not None and kind.processor == QUERY_PROCESSOR:
        return
    query_store.request_query_refresh(conn, task.organization_id, now=now, reason=AFTER_PROCESSING)
