"""The processing queue: claiming `processing_queued` tasks with a lease, and taking them back.

Rules:
- Queue order is the processing tab's order (`tab_sort`, then `id`). A task is claimable when
  it is the first queued task of its site and no task of its site is `processing`: tasks of
  one site are processed in order, one at a time; different sites in parallel.
- A claim is a lease: the worker owns the task until `lease_expires_at` and renews it while it
  works (`renew_lease`). A worker that stops renewing loses the task: `requeue_expired_leases`
  moves it back to `processing_queued` (lease loss), and after `max_attempts` lost leases in a
  row cancels it with an error that says so.
- For a queued task, `lease_expires_at` is the time it may be claimed again (a retry after an
  error waits a little); it is empty for everything else that queues a task.

On PostgreSQL the claim locks its row with `FOR UPDATE SKIP LOCKED`, so concurrent workers
never wait on each other. On SQLite the claim is an `UPDATE … RETURNING` inside the immediate
write transaction every write takes, which serializes claimers. Idle workers wake when the
change bus tells of a task queued or leaving `processing` (`wakes_workers`), in any process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from surveyor.core.kinds import processed_types
from surveyor.core.task import Task
from surveyor.core.tasks import IllegalTransition, TaskStatus
from surveyor.store import task_queue
from surveyor.store import tasks as task_store
from surveyor.store.changes import ChangeKind, TaskChange

log = logging.getLogger("surveyor.processing")

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """A task this worker holds a lease on."""

    task: Task
    owner: str
    expires_at: datetime
    attempt: int

    @property
    def task_id(self) -> int:
        return self.task.id

    @property
    def organization_id(self) -> int:
        return self.task.organization_id


def _attempts_before(conn: Connection, task: Task) -> int:
    """Lost leases in a row: counted while the task keeps coming back from `processing`,
    reset when it was queued anew (collected, reprocessed)."""
    came_from = task_queue.queued_from(conn, task.id)
    return task.processing_attempts if came_from == TaskStatus.PROCESSING.value else 0


def claim_next_task(
    conn: Connection, owner: str, *, now: datetime, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> Claim | None:
    """Claim the next task in queue order (see the module rules), or None when none is due.

    Runs in the caller's write transaction: the claim is only real once it commits.
    """
    expires_at = now + timedelta(seconds=lease_seconds)
    row = task_queue.take_lease(
        conn, owner, types=processed_types(), expires_at=expires_at, now=now
    )
    if row is None:
        return None
    attempt = _attempts_before(conn, row) + 1
    task = task_store.transition(
        conn,
        row.organization_id,
        row.id,
        TaskStatus.PROCESSING,
        actor=owner,
        message=f"claimed by worker {owner} (attempt {attempt})",
        changes={
            "lease_owner": owner,
            "lease_expires_at": expires_at,
            "processing_attempts": attempt,
        },
        expected=[TaskStatus.PROCESSING_QUEUED],
        now=now,
    )
    return Claim(task, owner, expires_at, attempt)


def renew_lease(
    conn: Connection,
    task_id: int,
    owner: str,
    *,
    now: datetime,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    changes: dict[str, Any] | None = None,
) -> bool:
    """Extend our lease (and write `changes`, such as progress); False if it is no longer ours."""
    return task_queue.extend_lease(
        conn,
        task_id,
        owner,
        expires_at=now + timedelta(seconds=lease_seconds),
        now=now,
        changes=changes,
    )


def leave_processing(
    conn: Connection,
    claim: Claim,
    target: TaskStatus,
    *,
    message: str,
    changes: Mapping[str, Any],
    now: datetime,
) -> Task:
    """Move a claimed task out of `processing` to `target` with `changes`, as the worker that
    holds its lease."""
    return task_store.transition(
        conn,
        claim.organization_id,
        claim.task_id,
        target,
        actor=claim.owner,
        message=message,
        changes=changes,
        expected=[TaskStatus.PROCESSING],
        now=now,
    )


def release_task(
    conn: Connection,
    claim: Claim,
    *,
    reason: str,
    now: datetime,
    retry_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    counts_as_attempt: bool = True,
) -> TaskStatus:
    """Give a task back: queued again (from `retry_at`), or canceled with `reason` once
    `max_attempts` attempts in a row failed. Returns the status it ended in."""
    attempts = claim.attempt if counts_as_attempt else claim.attempt - 1
    if counts_as_attempt and attempts >= max_attempts:
        leave_processing(
            conn,
            claim,
            TaskStatus.CANCELED,
            message=f"processing failed {attempts} times",
            changes={
                "error": f"processing failed {attempts} times; the last error: {reason}. "
                "Reprocess the task to try again.",
                "lease_owner": None,
                "lease_expires_at": None,
            },
            now=now,
        )
        return TaskStatus.CANCELED
    leave_processing(
        conn,
        claim,
        TaskStatus.PROCESSING_QUEUED,
        message=reason,
        changes={
            "lease_owner": None,
            "lease_expires_at": retry_at,
            "processing_attempts": attempts,
        },
        now=now,
    )
    return TaskStatus.PROCESSING_QUEUED


def cancel_task(conn: Connection, claim: Claim, *, error: str, now: datetime) -> None:
    """Cancel a claimed task that cannot succeed (its data is not valid, or missing)."""
    leave_processing(
        conn,
        claim,
        TaskStatus.CANCELED,
        message="processing failed",
        changes={"error": error, "lease_owner": None, "lease_expires_at": None},
        now=now,
    )


def expired_leases(conn: Connection, *, now: datetime) -> list[int]:
    """Tasks in `processing` whose worker stopped renewing its lease."""
    return task_queue.expired_leases(conn, types=processed_types(), now=now)


def requeue_expired_lease(
    conn: Connection,
    task_id: int,
    *,
    now: datetime,
    actor: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> TaskStatus | None:
    """Take an expired lease away and requeue the task (or cancel it after `max_attempts`
    attempts in a row); None when its worker renewed in time or someone else acted first."""
    stolen = task_queue.take_expired_lease(conn, task_id, now=now)
    if stolen is None:
        return None
    attempts = int(stolen["processing_attempts"])
    try:
        if attempts >= max_attempts:
            task_store.transition(
                conn,
                stolen["organization_id"],
                task_id,
                TaskStatus.CANCELED,
                actor=actor,
                message=f"lease expired {attempts} times in a row",
                changes={
                    "error": f"processing was interrupted {attempts} times in a row (its worker "
                    "stopped answering each time). Reprocess the task to try again.",
                },
                expected=[TaskStatus.PROCESSING],
                now=now,
            )
            return TaskStatus.CANCELED
        task_store.transition(
            conn,
            stolen["organization_id"],
            task_id,
            TaskStatus.PROCESSING_QUEUED,
            actor=actor,
            message=f"the worker's lease expired; requeued (attempt {attempts} of {max_attempts})",
            expected=[TaskStatus.PROCESSING],
            now=now,
        )
    except (IllegalTransition, task_store.StaleTask):
        return None
    return TaskStatus.PROCESSING_QUEUED


class Wakeup:
    """How an idle worker waits for work: a poll interval, cut short by `notify`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke

    def notify(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._event.set()


def wakes_workers(change: TaskChange) -> bool:
    """Whether idle workers should look at the queue after `change`: a task was queued, or
    left `processing` (its site may take its next task)."""
    if change.kind is ChangeKind.EDITED or change.task_type not in processed_types():
        return False
    return (
        change.status == TaskStatus.PROCESSING_QUEUED
        or change.previous_status == TaskStatus.PROCESSING
    )
