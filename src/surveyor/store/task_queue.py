"""The processing queue's statements (the rules are processing/queue.py's).

Leases are written through the task write path (`store.tasks.update_tasks`): the row is the
claimer's by its lock or its lease, so no version is read first, and the status moves through
`store.tasks.transition` as always.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, or_, select

from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as task_store
from surveyor.store.schema import task_events, tasks

#: The tasks table under the names the claim gives it, made once: an alias copies every
#: column of the table, and a console or worker claims many times a second (made anew on
#: each claim, they were most of the garbage a busy console's collector had to go through).
_QUEUED = tasks.alias("queued")
_BUSY = tasks.alias("busy")
_AHEAD = tasks.alias("ahead")


def _claimable(now: datetime, types: Sequence[str]) -> Select[Any]:
    """Queued tasks of these types that head their site's queue while their site is idle."""
    site_is_busy = exists().where(
        _BUSY.c.site_id == _QUEUED.c.site_id,
        _BUSY.c.status == TaskStatus.PROCESSING.value,
        _BUSY.c.type.in_(types),
    )
    queued_ahead = exists().where(
        _AHEAD.c.site_id == _QUEUED.c.site_id,
        _AHEAD.c.status == TaskStatus.PROCESSING_QUEUED.value,
        _AHEAD.c.type.in_(types),
        or_(
            _AHEAD.c.tab_sort < _QUEUED.c.tab_sort,
            and_(_AHEAD.c.tab_sort == _QUEUED.c.tab_sort, _AHEAD.c.id < _QUEUED.c.id),
        ),
    )
    return (
        select(_QUEUED.c.id)
        .where(
            _QUEUED.c.status == TaskStatus.PROCESSING_QUEUED.value,
            _QUEUED.c.type.in_(types),
            or_(_QUEUED.c.lease_expires_at.is_(None), _QUEUED.c.lease_expires_at <= now),
            or_(_QUEUED.c.site_id.is_(None), ~site_is_busy),
            or_(_QUEUED.c.site_id.is_(None), ~queued_ahead),
        )
        .order_by(_QUEUED.c.tab_sort, _QUEUED.c.id)
        .limit(1)
    )


def take_lease(
    conn: Connection,
    owner: str,
    *,
    types: Sequence[str],
    expires_at: datetime,
    now: datetime,
) -> Task | None:
    """Lease the head of the queue (tasks of `types`) to `owner`; its row, or None when
    nothing is due. PostgreSQL locks the head with SKIP LOCKED, so claimers never wait on
    each other; SQLite's claim is one UPDATE inside the immediate write transaction."""
    candidate = _claimable(now, types)
    if conn.dialect.name == "postgresql":
        task_id = conn.execute(
            candidate.with_for_update(skip_locked=True, of=_QUEUED)
        ).scalar_one_or_none()
        if task_id is None:
            return None
        chosen = tasks.c.id == task_id
    else:
        chosen = and_(
            tasks.c.id == candidate.scalar_subquery(),
            tasks.c.status == TaskStatus.PROCESSING_QUEUED.value,
        )
    written = task_store.update_tasks(
        conn, chosen, {"lease_owner": owner, "lease_expires_at": expires_at}, now=now
    )
    if not written:
        return None
    row = conn.execute(select(tasks).where(tasks.c.id == written[0].id)).mappings().one()
    return Task.from_row(row)


def queued_from(conn: Connection, task_id: int) -> str | None:
    """The status a task was in before it was last queued for processing (None: never)."""
    status: str | None = conn.execute(
        select(task_events.c.from_status)
        .where(
            task_events.c.task_id == task_id,
            task_events.c.to_status == TaskStatus.PROCESSING_QUEUED.value,
        )
        .order_by(task_events.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return status


def extend_lease(
    conn: Connection,
    task_id: int,
    owner: str,
    *,
    expires_at: datetime,
    now: datetime,
    changes: Mapping[str, Any] | None = None,
) -> bool:
    """Move the lease of a task `owner` is processing to `expires_at` (and write `changes`);
    False if it is no longer `owner`'s."""
    chosen = and_(
        tasks.c.id == task_id,
        tasks.c.lease_owner == owner,
        tasks.c.status == TaskStatus.PROCESSING.value,
    )
    values = {"lease_expires_at": expires_at, **(changes or {})}
    return len(task_store.update_tasks(conn, chosen, values, now=now)) == 1


def _lease_expired(now: datetime) -> Any:
    return or_(tasks.c.lease_expires_at.is_(None), tasks.c.lease_expires_at < now)


def expired_leases(conn: Connection, *, types: Sequence[str], now: datetime) -> list[int]:
    """Tasks of these types in `processing` whose worker stopped renewing its lease."""
    query = select(tasks.c.id).where(
        tasks.c.status == TaskStatus.PROCESSING.value,
        tasks.c.type.in_(types),
        _lease_expired(now),
    )
    return [int(task_id) for task_id in conn.execute(query).scalars()]


def take_expired_lease(conn: Connection, task_id: int, *, now: datetime) -> dict[str, Any] | None:
    """Clear the lease of a task in `processing` if it has expired: its `organization_id`
    and `processing_attempts`, or None when its worker renewed in time (or it moved on)."""
    written = task_store.update_tasks(
        conn,
        and_(
            tasks.c.id == task_id,
            tasks.c.status == TaskStatus.PROCESSING.value,
            _lease_expired(now),
        ),
        {"lease_owner": None, "lease_expires_at": None},
        now=now,
        returning=[tasks.c.processing_attempts],
    )
    return dict(written[0]._mapping) if written else None
