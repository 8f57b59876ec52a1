"""Rows an organization owns under a name unique within it (credentials, notification rules,
saved queries): read, listed, changed and deleted by organization, so another organization's
row is simply not found, and a name taken is `Conflict`. Each table's module says what its
columns hold; this one only keeps to the organization and the name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.store.records import Conflict


def _owned(table: Table, organization_id: int, row_id: int) -> ColumnElement[bool]:
    return (table.c.id == row_id) & (table.c.organization_id == organization_id)


def insert_named(
    conn: Connection, table: Table, values: Mapping[str, Any], *, name_taken: str
) -> int:
    """Insert a row (`values` name its organization); its id. `Conflict(name_taken)` when the
    name is taken in the organization."""
    try:
        with conn.begin_nested():
            return int(
                conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
            )
    except IntegrityError as exc:
        raise Conflict(name_taken) from exc


def get_owned(
    conn: Connection, table: Table, organization_id: int, row_id: int
) -> RowMapping | None:
    """The organization's row `row_id`, or None."""
    found = conn.execute(select(table).where(_owned(table, organization_id, row_id)))
    return found.mappings().first()


def list_owned(
    conn: Connection,
    table: Table,
    organization_id: int,
    *,
    limit: int,
    after_id: int | None = None,
    where: ColumnElement[bool] | None = None,
) -> Sequence[RowMapping]:
    """The organization's rows by id, after `after_id`, those `where` holds only."""
    query = select(table).where(table.c.organization_id == organization_id)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    if where is not None:
        query = query.where(where)
    return conn.execute(query.order_by(table.c.id).limit(limit)).mappings().all()


def update_named(
    conn: Connection,
    table: Table,
    organization_id: int,
    row_id: int,
    values: Mapping[str, Any],
    *,
    now: datetime,
    name_taken: str,
) -> bool:
    """Change the organization's row `row_id` (its `updated_at` becomes `now`); False when
    there is no such row, `Conflict(name_taken)` when the new name is taken."""
    try:
        with conn.begin_nested():
            result = conn.execute(
                update(table)
                .where(_owned(table, organization_id, row_id))
                .values(**values, updated_at=now)
            )
    except IntegrityError as exc:
        raise Conflict(name_taken) from exc
    return result.rowcount == 1


def delete_owned(conn: Connection, table: Table, organization_id: int, row_id: int) -> bool:
    """Delete the organization's row `row_id` (and what cascades with it); False when there
    is none."""
    result = conn.execute(delete(table).where(_owned(table, organization_id, row_id)))
    return result.rowcount == 1
