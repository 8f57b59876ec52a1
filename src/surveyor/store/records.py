"""Organization-scoped rows of the small resources: sites, hosted zones, explorers.

Every read and write here takes the caller's organization, so another organization's row is
simply not found.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.core.clock import SYSTEM_CLOCK

# The audit trail lives in its own module; callers that record from here keep working.
from surveyor.store.audit import audit as audit
from surveyor.store.schema import sites


class Conflict(Exception):
    """A unique name is taken, or the row is still referenced."""


def create_record(
    conn: Connection,
    table: Table,
    organization_id: int,
    values: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or SYSTEM_CLOCK.now()
    row = {**values, "organization_id": organization_id, "created_at": now, "updated_at": now}
    try:
        with conn.begin_nested():
            new_id = conn.execute(insert(table).values(**row).returning(table.c.id)).scalar_one()
    except IntegrityError as exc:
        raise Conflict(
            f"a {table.name.rstrip('s').replace('_', ' ')} with that name exists"
        ) from exc
    found = get_record(conn, table, organization_id, new_id)
    assert found is not None
    return found


def get_record(
    conn: Connection, table: Table, organization_id: int, record_id: int
) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(table).where(table.c.id == record_id, table.c.organization_id == organization_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def find_by_name(
    conn: Connection, table: Table, organization_id: int, name: str
) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(table).where(table.c.name == name, table.c.organization_id == organization_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def list_records(
    conn: Connection,
    table: Table,
    organization_id: int,
    *,
    limit: int = 100,
    after_id: int | None = None,
) -> list[dict[str, Any]]:
    query = select(table).where(table.c.organization_id == organization_id)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    rows = conn.execute(query.order_by(table.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def count_records(conn: Connection, table: Table, organization_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(table)
            .where(table.c.organization_id == organization_id)
        ).scalar_one()
    )


def update_record(
    conn: Connection,
    table: Table,
    organization_id: int,
    record_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    if changes:
        values = {**changes, "updated_at": now or SYSTEM_CLOCK.now()}
        try:
            with conn.begin_nested():
                conn.execute(
                    update(table)
                    .where(table.c.id == record_id, table.c.organization_id == organization_id)
                    .values(**values)
                )
        except IntegrityError as exc:
            raise Conflict(
                f"a {table.name.rstrip('s').replace('_', ' ')} with that name exists"
            ) from exc
    return get_record(conn, table, organization_id, record_id)


def delete_record(conn: Connection, table: Table, organization_id: int, record_id: int) -> bool:
    result = conn.execute(
        delete(table).where(table.c.id == record_id, table.c.organization_id == organization_id)
    )
    return result.rowcount == 1


def site_names(conn: Connection, organization_id: int, site_ids: Collection[int]) -> dict[int, str]:
    """The names of these sites of the organization (site id -> name)."""
    if not site_ids:
        return {}
    rows = conn.execute(
        select(sites.c.id, sites.c.name).where(
            sites.c.id.in_(sorted(site_ids)), sites.c.organization_id == organization_id
        )
    )
    return {row.id: row.name for row in rows}
