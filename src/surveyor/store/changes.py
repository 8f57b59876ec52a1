"""What a write transaction changed in tasks.

The store's one task write path notes a `TaskChange` for every task row it inserts or
updates; the notes live on the connection and are handed, once the transaction has
committed, to whoever publishes them (the console's change bus, `store/change_bus.py`).
A rolled-back transaction publishes nothing: its notes are dropped with it
(`forget_changes`, registered on every engine by `store.engine.make_engine`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection


class ChangeKind(StrEnum):
    #: A task row was inserted (a created task, a spawned run of a template).
    CREATED = "created"
    #: Its status changed (`previous_status` says from what).
    STATUS = "status"
    #: Other columns changed; `fields` names them.
    EDITED = "edited"


#: Columns that move while a task runs and mean nothing to anyone waiting for work: an
#: edit of these alone is progress, which pages poll for and other processes never hear of.
PROGRESS_FIELDS = frozenset(
    {"progress_collect", "progress_process", "stats", "last_report_at", "lease_expires_at"}
)


@dataclass(frozen=True)
class TaskChange:
    kind: ChangeKind
    organization_id: int
    #: None when the changes of several tasks arrived coalesced from another process.
    task_id: int | None
    task_type: str
    status: str
    previous_status: str | None = None
    explorer_id: int | None = None
    template: bool = False
    #: The task's wait reason after the change (the scheduler wakes for `not_due` ones).
    wait_reason: str | None = None
    #: The columns the write set (empty for a created task).
    fields: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        row: Mapping[Any, Any],
        kind: ChangeKind,
        *,
        previous_status: str | None = None,
        fields: Collection[str] = (),
    ) -> TaskChange:
        """The change `kind` of the task whose row (after the write) is `row`."""
        return cls(
            kind=kind,
            organization_id=int(row["organization_id"]),
            task_id=int(row["id"]),
            task_type=str(row["type"]),
            status=str(row["status"]),
            previous_status=previous_status,
            explorer_id=row.get("explorer_id"),
            template=bool(row.get("recur")),
            wait_reason=row.get("wait_reason"),
            fields=frozenset(fields) - {"id"},
        )

    @property
    def progress_only(self) -> bool:
        """An edit of progress columns alone (a running task's report, a lease renewal)."""
        return self.kind is ChangeKind.EDITED and self.fields <= PROGRESS_FIELDS


_CHANGES = "surveyor_task_changes"


def note_change(conn: Connection, change: TaskChange) -> None:
    """Remember `change` until this transaction ends."""
    conn.info.setdefault(_CHANGES, []).append(change)


def note_changes(conn: Connection, changes: Iterable[TaskChange]) -> None:
    """Remember the changes of a bulk write until this transaction ends."""
    conn.info.setdefault(_CHANGES, []).extend(changes)


def pending_changes(conn: Connection) -> Sequence[TaskChange]:
    """The changes noted so far in this transaction (not removed)."""
    return tuple(conn.info.get(_CHANGES, ()))


def take_changes(conn: Connection) -> list[TaskChange]:
    """The changes noted in this transaction, removed from it (at commit or rollback)."""
    changes: list[TaskChange] = conn.info.pop(_CHANGES, [])
    return changes


def forget_changes(conn: Connection) -> None:
    """Drop the notes of a transaction that ended without publishing them (a rollback, or
    a commit outside `Database`: their next transaction must not publish them)."""
    # A connection that was invalidated (lost) has no usable info left to clear.
    with contextlib.suppress(Exception):
        conn.info.pop(_CHANGES, None)


_Member = TypeVar("_Member")


class Registrations(Generic[_Member]):
    """Who is told of changes (a database's publishers, a bus's subscribers): added and
    removed from any thread, while the one publishing reads a snapshot without locking."""

    def __init__(self) -> None:
        self._members: tuple[_Member, ...] = ()
        self._lock = threading.Lock()

    def add(self, member: _Member) -> Callable[[], None]:
        """Register `member` until the returned function is called."""
        with self._lock:
            self._members = (*self._members, member)

        def remove() -> None:
            with self._lock:
                self._members = tuple(m for m in self._members if m is not member)

        return remove

    def snapshot(self) -> tuple[_Member, ...]:
        return self._members
