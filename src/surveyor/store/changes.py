"""What a write transaction changed in tasks.

The store's one task write path notes a `TaskChange` for every task row it inserts or
updates; the notes live on the connection and are handed, once the transaction has
committed, to whoever publishes them (the console's change bus). A rolled-back transaction
publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Connection


class ChangeKind(StrEnum):
    #: A task row was inserted (a created task, a spawned run of a template).
    CREATED = "created"
    #: Its status changed (`previous_status` says from what).
    STATUS = "status"
    #: Other columns changed; `fields` names them.
    EDITED = "edited"


@dataclass(frozen=True)
class TaskChange:
    kind: ChangeKind
    organization_id: int
    task_id: int
    task_type: str
    status: str
    previous_status: str | None = None
    explorer_id: int | None = None
    template: bool = False
    fields: frozenset[str] = field(default_factory=frozenset)


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
