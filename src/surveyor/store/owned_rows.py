"""Rows an organization owns under a name unique within it (sites, hosted zones and explorers
through store/records.py; credentials, notification rules and saved queries each through an
`OwnedTable`): read, listed, changed and deleted by organization, so another organization's
row is simply not found, and a name taken is `Conflict`. Each table's module says what its
columns hold; this one only keeps to the organization and the name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.core.rows import Row

_Row = TypeVar("_Row")


class Conflict(Exception):
    """A unique name is taken, or the row is still referenced."""


def _owned(table: Table, organization_id: int, row_id: int) -> ColumnElement[bool]:
    return (table.c.id == row_id) & (table.c.organization_id == organization_id)


def insert_named(
    conn: Connection,
    table: Table,
    organization_id: int,
    values: Mapping[str, Any],
    *,
    now: datetime,
    name_taken: str,
) -> int:
    """Insert the organization's row (created and changed `now`); its id.
    `Conflict(name_taken)` when the name is taken in the organization."""
    row = {**values, "organization_id": organization_id, "created_at": now, "updated_at": now}
    try:
        with conn.begin_nested():
            return int(conn.execute(insert(table).values(**row).returning(table.c.id)).scalar_one())
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
                .values({**values, "updated_at": now})
            )
    except IntegrityError as exc:
        raise Conflict(name_taken) from exc
    return result.rowcount == 1


def delete_owned(conn: Connection, table: Table, organization_id: int, row_id: int) -> bool:
    """Delete the organization's row `row_id` (and what cascades with it); False when there
    is none."""
    result = conn.execute(delete(table).where(_owned(table, organization_id, row_id)))
    return result.rowcount == 1


class OwnedTable(Generic[_Row]):
    """One table of such rows, read as its frozen rows (`make`), its written values stored as
    its columns hold them (`to_column`: a column's conversion, by column name)."""

    def __init__(
        self,
        table: Table,
        make: Callable[[Row], _Row],
        *,
        name_taken: str,
        to_column: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.table = table
        self.make = make
        self.name_taken = name_taken
        self.to_column = dict(to_column or {})

    def _columns(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: self.to_column[name](value) if name in self.to_column else value
            for name, value in values.items()
        }

    def insert(
        self, conn: Connection, organization_id: int, values: Mapping[str, Any], *, now: datetime
    ) -> int:
        """Insert the organization's row (see `insert_named`); its id."""
        return insert_named(
            conn,
            self.table,
            organization_id,
            self._columns(values),
            now=now,
            name_taken=self.name_taken,
        )

    def get(self, conn: Connection, organization_id: int, row_id: int) -> _Row | None:
        """The organization's row `row_id`, or None."""
        row = get_owned(conn, self.table, organization_id, row_id)
        return self.make(row) if row is not None else None

    def page(
        self,
        conn: Connection,
        organization_id: int,
        *,
        limit: int = 100,
        after_id: int | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> list[_Row]:
        """The organization's rows by id, after `after_id`, those `where` holds only."""
        rows = list_owned(
            conn, self.table, organization_id, limit=limit, after_id=after_id, where=where
        )
        return [self.make(row) for row in rows]

    def change(
        self,
        conn: Connection,
        organization_id: int,
        row_id: int,
        changes: Mapping[str, Any],
        *,
        now: datetime,
    ) -> bool:
        """Change the organization's row `row_id` (see `update_named`)."""
        return update_named(
            conn,
            self.table,
            organization_id,
            row_id,
            self._columns(changes),
            now=now,
            name_taken=self.name_taken,
        )

    def delete(self, conn: Connection, organization_id: int, row_id: int) -> bool:
        """Delete the organization's row `row_id` (see `delete_owned`)."""
        return delete_owned(conn, self.table, organization_id, row_id)
