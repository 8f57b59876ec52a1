"""Organization-scoped rows of the small resources: sites, hosted zones, explorers.

Every read and write here takes the caller's organization, so another organization's row is
simply not found. The typed functions (`get_site`, `list_zones`, `update_explorer`, ...)
return the frozen rows of `surveyor.core.resources`; the generic ones under them take a
table and stay inside the store (and its tests' fixtures).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.core.resources import Explorer, HostedZone, Site

# The audit trail lives in its own module; callers that record from here keep working.
from surveyor.store.audit import audit as audit
from surveyor.store.schema import explorers, hosted_zones, sites

_Row = TypeVar("_Row")


class Conflict(Exception):
    """A unique name is taken, or the row is still referenced."""


def _now() -> datetime:
    return datetime.now(UTC)


def create_record(
    conn: Connection, table: Table, organization_id: int, values: Mapping[str, Any]
) -> dict[str, Any]:
    now = _now()
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
) -> dict[str, Any] | None:
    if changes:
        values = {**changes, "updated_at": _now()}
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


# Typed rows ----------------------------------------------------------------------------------


def _typed(row: Mapping[str, Any] | None, make: Callable[[Mapping[str, Any]], _Row]) -> _Row | None:
    return make(row) if row is not None else None


def get_site(conn: Connection, organization_id: int, site_id: int) -> Site | None:
    return _typed(get_record(conn, sites, organization_id, site_id), Site.from_row)


def find_site(conn: Connection, organization_id: int, name: str) -> Site | None:
    """The organization's site with this exact name."""
    return _typed(find_by_name(conn, sites, organization_id, name), Site.from_row)


def list_sites(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[Site]:
    """The organization's sites by id, after `after_id`."""
    rows = list_records(conn, sites, organization_id, limit=limit, after_id=after_id)
    return [Site.from_row(row) for row in rows]


def count_sites(conn: Connection, organization_id: int) -> int:
    return count_records(conn, sites, organization_id)


def create_site(conn: Connection, organization_id: int, values: Mapping[str, Any]) -> Site:
    """Raises `Conflict` when the name is taken in the organization."""
    return Site.from_row(create_record(conn, sites, organization_id, values))


def update_site(
    conn: Connection, organization_id: int, site_id: int, changes: Mapping[str, Any]
) -> Site | None:
    """The site after the changes, or None if it does not exist; `Conflict` on a taken name."""
    return _typed(update_record(conn, sites, organization_id, site_id, changes), Site.from_row)


def delete_site(conn: Connection, organization_id: int, site_id: int) -> bool:
    return delete_record(conn, sites, organization_id, site_id)


def get_zone(conn: Connection, organization_id: int, zone_id: int) -> HostedZone | None:
    return _typed(get_record(conn, hosted_zones, organization_id, zone_id), HostedZone.from_row)


def list_zones(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[HostedZone]:
    """The organization's hosted zones by id, after `after_id`."""
    rows = list_records(conn, hosted_zones, organization_id, limit=limit, after_id=after_id)
    return [HostedZone.from_row(row) for row in rows]


def create_zone(conn: Connection, organization_id: int, values: Mapping[str, Any]) -> HostedZone:
    """Raises `Conflict` when the name is taken in the organization."""
    return HostedZone.from_row(create_record(conn, hosted_zones, organization_id, values))


def update_zone(
    conn: Connection, organization_id: int, zone_id: int, changes: Mapping[str, Any]
) -> HostedZone | None:
    """The zone after the changes, or None if it does not exist; `Conflict` on a taken name."""
    row = update_record(conn, hosted_zones, organization_id, zone_id, changes)
    return _typed(row, HostedZone.from_row)


def delete_zone(conn: Connection, organization_id: int, zone_id: int) -> bool:
    return delete_record(conn, hosted_zones, organization_id, zone_id)


def get_explorer(conn: Connection, organization_id: int, explorer_id: int) -> Explorer | None:
    return _typed(get_record(conn, explorers, organization_id, explorer_id), Explorer.from_row)


def list_explorers(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[Explorer]:
    """The organization's explorers by id, after `after_id`."""
    rows = list_records(conn, explorers, organization_id, limit=limit, after_id=after_id)
    return [Explorer.from_row(row) for row in rows]


def update_explorer(
    conn: Connection, organization_id: int, explorer_id: int, changes: Mapping[str, Any]
) -> Explorer | None:
    """The explorer after the changes, or None if it does not exist; `Conflict` on a taken
    name."""
    row = update_record(conn, explorers, organization_id, explorer_id, changes)
    return _typed(row, Explorer.from_row)


def delete_explorer(conn: Connection, organization_id: int, explorer_id: int) -> bool:
    return delete_record(conn, explorers, organization_id, explorer_id)
