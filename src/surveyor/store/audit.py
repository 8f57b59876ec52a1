"""The audit trail: who created, edited, stopped or removed what, written and read back.

Entries are read newest first (by time, then id) with keyset pagination, always within one
organization, narrowed by who did it, what they did, to which object and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    and_,
    insert,
    literal,
    select,
    tuple_,
)

from surveyor.core.field_error import FieldError
from surveyor.core.rows import from_columns
from surveyor.store.cursors import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from surveyor.store.cursors import decode_cursor, encode_cursor, keyset_page, page_size
from surveyor.store.schema import (
    audit_events,
    credentials,
    enrollment_tokens,
    explorers,
    hosted_zones,
    sites,
    tasks,
)
from surveyor.store.tasks import InvalidCursor

_CURSOR_TAG = "audit"
_MAX_ID = 2**63 - 1


class InvalidAuditFilter(FieldError):
    """A filter that can match nothing by mistake (the time range is upside down)."""


@dataclass(frozen=True)
class AuditEvent:
    """One entry: at `at`, `actor` did `action` to the object `object_type` `object_id`."""

    id: int
    organization_id: int | None
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: int | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: RowMapping) -> AuditEvent:
        return from_columns(cls, row, details=dict(row["details"] or {}))


@dataclass(frozen=True)
class AuditFilter:
    """What to narrow the trail to; None leaves that part open. `since` is inclusive,
    `until` exclusive."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def check(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidAuditFilter("until", "'until' is before 'since'; swap them")

    def clause(self) -> list[ColumnElement[bool]]:
        table = audit_events.c
        parts: list[ColumnElement[bool]] = []
        if self.actor:
            # e-mail addresses are stored in lower case; other actors as written
            parts.append(table.actor.in_(sorted({self.actor, self.actor.lower()})))
        if self.action:
            parts.append(table.action == self.action)
        if self.object_type:
            parts.append(table.object_type == self.object_type)
        if self.object_id is not None:
            parts.append(table.object_id == self.object_id)
        if self.since is not None:
            parts.append(table.at >= self.since)
        if self.until is not None:
            parts.append(table.at < self.until)
        return parts


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent] = field(default_factory=list)
    next_cursor: str | None = None


def audit(
    conn: Connection,
    *,
    organization_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: int | None,
    details: Mapping[str, Any] | None = None,
    at: datetime,
) -> None:
    """Append to the audit trail of who created, edited, stopped or removed what, and
    when (`at`)."""
    conn.execute(
        insert(audit_events).values(
            organization_id=organization_id,
            at=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=dict(details or {}),
        )
    )


def _encode_cursor(event: AuditEvent) -> str:
    return encode_cursor([_CURSOR_TAG, event.at.isoformat(), event.id])


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    malformed = "the cursor is malformed; use the next_cursor of a previous page"
    try:
        decoded = decode_cursor(cursor)
    except ValueError as exc:
        raise InvalidCursor(malformed) from exc
    if not isinstance(decoded, list) or len(decoded) != 3:
        raise InvalidCursor(malformed)
    tag, at, last_id = decoded
    if tag != _CURSOR_TAG:
        raise InvalidCursor("this cursor belongs to another listing; start from the first page")
    if not isinstance(at, str) or not isinstance(last_id, int) or not 0 <= last_id <= _MAX_ID:
        raise InvalidCursor(malformed)
    try:
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        return moment.astimezone(UTC), last_id
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor(malformed) from exc


def list_audit_events(
    conn: Connection,
    organization_id: int,
    filters: AuditFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> AuditPage:
    """One page of the organization's trail, newest first; `next_cursor` continues it."""
    filters = filters or AuditFilter()
    filters.check()
    limit = page_size(limit)
    table = audit_events.c
    clause = and_(table.organization_id == organization_id, *filters.clause())
    if cursor:
        last_at, last_id = _decode_cursor(cursor)
        bound = tuple_(literal(last_at, table.at.type), literal(last_id))
        clause = and_(clause, tuple_(table.at, table.id) < bound)
    rows = (
        conn.execute(
            select(audit_events)
            .where(clause)
            .order_by(table.at.desc(), table.id.desc())
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    return AuditPage(*keyset_page(rows, limit, AuditEvent.from_row, _encode_cursor))


#: The object types whose current names can be looked up, and their tables.
_NAMED_OBJECTS: dict[str, Table] = {
    "task": tasks,
    "site": sites,
    "hosted_zone": hosted_zones,
    "explorer": explorers,
    "enrollment_token": enrollment_tokens,
    "credential": credentials,
}


def object_names(
    conn: Connection, organization_id: int, events: Iterable[AuditEvent]
) -> dict[tuple[str, int], str]:
    """The current names of the objects these entries are about, where they still exist
    (one query per kind of object; a removed task no longer does)."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.object_type in _NAMED_OBJECTS and event.object_id is not None:
            wanted.setdefault(event.object_type, set()).add(event.object_id)
    names: dict[tuple[str, int], str] = {}
    for object_type, ids in wanted.items():
        table = _NAMED_OBJECTS[object_type]
        query = select(table.c.id, table.c.name).where(
            table.c.organization_id == organization_id, table.c.id.in_(sorted(ids))
        )
        if table is tasks:
            query = query.where(tasks.c.removed_at.is_(None))
        rows = conn.execute(query).all()
        names.update({(object_type, row_id): name for row_id, name in rows})
    return names
