"""Processors: what a worker does with a claimed task, chosen by the task's kind.

A kind names its processor (`TaskKind.processor`, in `core.kinds`); this module maps names to
functions. `surveyor.processing` registers `inventory` (merge.py: task data records into the
site's inventory) when it is imported; another kind registers its own. A processor takes a
`ProcessingJob` and returns the task as it ends, in `processed` (`ProcessingJob.finish` moves
it there); it raises `TaskDataError` for data that can never be processed (the task is
canceled), and `LeaseLost` or `StopRequested` as the worker asks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.jsonl_limits import JsonlLimits
from surveyor.core.kinds import kind_of
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.processing.queue import Claim, leave_processing, renew_lease
from surveyor.store.engine import Database


class LeaseLost(Exception):
    """Another worker took the task over (our lease expired): stop without writing more."""


class StopRequested(Exception):
    """The worker is shutting down; the task goes back to the queue and resumes later."""


@dataclass(frozen=True)
class ProcessingJob:
    """A claimed task and what its worker lends the processor: the database, the data
    directory, the pace it works at, and whether to stop."""

    db: Database
    data_dir: Path
    claim: Claim
    batch_size: int
    lease_seconds: float
    limits: JsonlLimits
    should_stop: Callable[[], bool]
    #: The worker's clock: lease renewals and the times the processor records.
    clock: Clock = SYSTEM_CLOCK

    @property
    def task(self) -> Task:
        return self.claim.task

    def fence(self, conn: Connection, changes: Mapping[str, Any] | None = None) -> None:
        """Renew the lease in `conn`'s transaction (writing `changes`, such as progress), so
        that what the transaction writes is ours; raise LeaseLost when it is not."""
        if not renew_lease(
            conn,
            self.claim.task_id,
            self.claim.owner,
            now=self.clock.now(),
            lease_seconds=self.lease_seconds,
            changes=dict(changes) if changes else None,
        ):
            raise LeaseLost(self.claim.task_id)

    def finish(self, *, message: str, changes: Mapping[str, Any] | None = None) -> Task:
        """Move the task to `processed` with `changes` (its result), fenced by the lease."""
        with self.db.write() as conn:
            self.fence(conn)
            return complete(
                conn, self.claim, message=message, changes=changes, now=self.clock.now()
            )


Processor = Callable[[ProcessingJob], Task]
#: Told of every task that processing completes, in the transaction that completes it (a
#: Query refresh is requested so).
AfterProcessing = Callable[[Connection, Task, datetime], None]

_processors: dict[str, Processor] = {}
_after_processing: list[AfterProcessing] = []
_lock = threading.Lock()


def register_after_processing(hook: AfterProcessing) -> None:
    with _lock:
        if hook not in _after_processing:
            _after_processing.append(hook)


def register_processor(name: str, processor: Processor) -> None:
    with _lock:
        _processors[name] = processor


def unregister_processor(name: str) -> None:
    with _lock:
        _processors.pop(name, None)


def processor_for(task_type: str) -> Processor:
    """The processor of a type of task; a LookupError names what is missing."""
    name = kind_of(task_type).processor
    if name is None:
        raise LookupError(f"nothing processes tasks of type '{task_type}'")
    processor = _processors.get(name)
    if processor is None:
        raise LookupError(f"no processor '{name}' is registered in this worker")
    return processor


def process(job: ProcessingJob) -> Task:
    """Process a claimed task with its kind's processor; the task as it ends."""
    return processor_for(job.task.type)(job)


def complete(
    conn: Connection,
    claim: Claim,
    *,
    message: str,
    changes: Mapping[str, Any] | None = None,
    now: datetime,
) -> Task:
    """Move a claimed task to `processed` with `changes`, giving up its lease; the caller
    renewed the lease in this transaction (`fence`), so the task is still ours. The hooks
    registered with `register_after_processing` are told, in the same transaction."""
    finished = leave_processing(
        conn,
        claim,
        TaskStatus.PROCESSED,
        message=message,
        changes={
            "progress_process": 1.0,
            **(changes or {}),
            "lease_owner": None,
            "lease_expires_at": None,
        },
        now=now,
    )
    for hook in tuple(_after_processing):
        hook(conn, finished, now)
    return finished
