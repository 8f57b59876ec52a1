"""Tasks the console collects itself: connector runs that name no explorer (SPEC §9).

A console's runner (`service/console_runner.py`) claims a due task of a kind the console
runs (`core.kinds.run_in_console`) that names no explorer, moves it to its kind's collecting
status (`connecting`) as a new attempt, reports progress while it runs, and ends it: its data
in place and the task queued for processing (`connecting → connected → processing_queued`),
`stopped` with what it found when the user stopped it, or `canceled` with the error.

Every write checks the attempt token, so a runner that lost its task (another console took
it over after this one fell silent) changes nothing. A run whose console stopped reporting
for `silence` is canceled by any console's runner (`settle_silent_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.core import kinds
from surveyor.core.task import Task
from surveyor.core.tasks import IllegalTransition, TaskStatus
from surveyor.service.launch import launched, reported_progress
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store

#: The actor of a console runner's transitions in the task history.
CONSOLE_ACTOR = "console"


class RunLost(Exception):
    """The task is no longer this run's: another attempt took it, or it ended."""


def claim(conn: Connection, *, now: datetime) -> Task | None:
    """Launch the next due task the console runs, in its collecting status, as a new
    attempt; None when there is none. Two consoles never claim the same task."""
    for _ in range(5):
        task = explorer_store.next_console_candidate(conn, kinds.run_in_console(), now=now)
        if task is None:
            return None
        collecting = kinds.kind_of(task.type).collecting
        assert collecting is not None, "a kind the console runs has a collecting status"
        attempt = task.attempt + 1
        try:
            return _move(
                conn,
                task,
                collecting,
                f"started in the console (attempt {attempt})",
                expected=TaskStatus.NEW,
                changes=launched(attempt, now),
                now=now,
            )
        except (IllegalTransition, task_store.StaleTask):
            continue
    return None


def _move(
    conn: Connection,
    task: Task,
    to: TaskStatus,
    message: str,
    *,
    expected: TaskStatus,
    now: datetime,
    changes: Mapping[str, Any] | None = None,
) -> Task:
    """Move the console's run of `task` from `expected` to `to`, as the console."""
    return task_store.transition(
        conn,
        task.organization_id,
        task.id,
        to,
        actor=CONSOLE_ACTOR,
        message=message,
        expected=[expected],
        changes=changes,
        now=now,
    )


def _current(conn: Connection, task: Task, allowed: tuple[TaskStatus, ...]) -> Task:
    found = task_store.get_task(conn, task.organization_id, task.id)
    if found is None or found.attempt_token != task.attempt_token or found.status not in allowed:
        raise RunLost(task.id)
    return found


def _running(task: Task) -> tuple[TaskStatus, ...]:
    collecting = kinds.kind_of(task.type).collecting
    assert collecting is not None
    return (collecting, TaskStatus.STOPPING)


def report(
    conn: Connection,
    task: Task,
    *,
    collect: float,
    stats: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Store the run's progress; return whether the user asked it to stop. Raises RunLost."""
    for _ in range(5):
        current = _current(conn, task, _running(task))
        try:
            task_store.write_task(conn, current, reported_progress(collect, stats, now), now=now)
        except task_store.StaleTask:
            continue
        return current.status is TaskStatus.STOPPING
    raise task_store.StaleTask(task.id)


def finish(
    conn: Connection,
    task: Task,
    *,
    size: int,
    sha256: str,
    hosts: int,
    stats: Mapping[str, Any],
    store: Callable[[], Path],
    now: datetime,
) -> Task:
    """Put the run's data in place (`store`) and queue the task for processing; a run the
    user stopped keeps its data and becomes `stopped`. Raises RunLost."""
    current = _current(conn, task, _running(task))
    kind = kinds.kind_of(task.type)
    collected = kind.collected
    assert collected is not None
    stopping = current.status is TaskStatus.STOPPING
    data = {
        "size_data": size,
        "data_sha256": sha256,
        "data_partial": stopping,
        "last_report_at": now,
        "progress_collect": 1.0,
        "stats": {**(current.stats or {}), **stats, "hosts": hosts},
    }
    store()
    if stopping:
        return _move(
            conn,
            task,
            TaskStatus.STOPPED,
            f"stopped; what it had read ({hosts} hosts) is kept: process the task to merge it",
            expected=TaskStatus.STOPPING,
            changes=data,
            now=now,
        )
    _move(
        conn,
        task,
        collected,
        f"read {hosts} hosts",
        expected=current.status,
        changes=data,
        now=now,
    )
    return _move(
        conn,
        task,
        TaskStatus.PROCESSING_QUEUED,
        f"task data in place ({size} bytes)",
        expected=collected,
        now=now,
    )


def fail(conn: Connection, task: Task, *, error: str, now: datetime) -> Task:
    """The run failed: canceled with `error` (one being stopped just becomes `stopped`)."""
    current = _current(conn, task, _running(task))
    if current.status is TaskStatus.STOPPING:
        return _move(
            conn,
            task,
            TaskStatus.STOPPED,
            f"stopped; the run had failed: {error}",
            expected=TaskStatus.STOPPING,
            now=now,
        )
    return _move(
        conn,
        task,
        TaskStatus.CANCELED,
        "the run failed",
        expected=current.status,
        changes={"error": error},
        now=now,
    )


def settle_silent_runs(conn: Connection, *, now: datetime, silence: timedelta) -> list[Task]:
    """Cancel console runs no console has reported on for `silence` (the console running
    them stopped or restarted); a stop nobody finished becomes `stopped`."""
    ended = []
    for task in explorer_store.console_runs(conn, kinds.run_in_console()):
        heard = task.last_report_at or task.data_acquisition_started_at or task.updated_at
        if heard is not None and now - heard <= silence:
            continue
        try:
            if task.status is TaskStatus.STOPPING:
                target, message, changes = TaskStatus.STOPPED, "stopped", None
            else:
                target, message = TaskStatus.CANCELED, "the console running it went silent"
                changes = {
                    "error": "the console running this task stopped reporting for "
                    f"{int(silence.total_seconds())} s (it was stopped or restarted); "
                    "run the task again"
                }
            ended.append(
                _move(
                    conn,
                    task,
                    target,
                    message,
                    expected=task.status,
                    changes=changes,
                    now=now,
                )
            )
        except (IllegalTransition, task_store.StaleTask):
            continue
    return ended
