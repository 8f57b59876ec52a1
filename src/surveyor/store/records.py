"""Organization-scoped rows of the small resources: sites, hosted zones, explorers.

Every read and write here takes the caller's organization, so another organization's row is
simply not found. The typed functions (`get_site`, `list_zones`, `update_explorer`, ...)
return the frozen rows of `surveyor.core.resources`; the generic ones under them take a
table and stay inside the store (and its tests' fixtures).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, func, select

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.resources import Explorer, HostedZone, Site
from surveyor.core.rows import Row
from surveyor.store import owned_rows

# The audit trail lives in its own module; callers that record from here keep working, and
# likewise Conflict, which the owned rows' writes raise.
from surveyor.store.audit import audit as audit
from surveyor.store.owned_rows import Conflict as Conflict
from surveyor.store.schema import explorers, hosted_zones, sites

_Row = TypeVar("_Row")


def _name_taken(table: Table) -> str:
    return f"a {table.name.rstrip('s').replace('_', ' ')} with that name exists"


def create_record(
    conn: Connection,
    table: Table,
    organization_id: int,
    values: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    new_id = owned_rows.insert_named(
        conn,
        table,
        organization_id,
        values,
        now=now or SYSTEM_CLOCK.now(),
        name_taken=_name_taken(table),
    )
    found = get_record(conn, table, organization_id, new_id)
    assert found is not None
    return found


def get_record(
    conn: Connection, table: Table, organization_id: int, record_id: int
) -> dict[str, Any] | None:
    row = owned_rows.get_owned(conn, table, organization_id, record_id)
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
    rows = owned_rows.list_owned(conn, table, organization_id, limit=limit, after_id=after_id)
    return [dict(row) for row in rows]


def count_records(conn: Connection, table: Table, organization_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(table)
            .where(table.c.organization_id == organization_id)
        ).scalar_one()
    )


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


class _Resource(owned_rows.OwnedTable[_Row]):
    """The reads and writes of one organization-scoped table, returning its frozen rows: an
    owned table's (`get`, `page`, `change`, `delete`), and these."""

    def __init__(self, table: Table, make: Callable[[Row], _Row]) -> None:
        super().__init__(table, make, name_taken=_name_taken(table))

    def find(self, conn: Connection, organization_id: int, name: str) -> _Row | None:
        """The organization's row with this exact name."""
        row = find_by_name(conn, self.table, organization_id, name)
        return self.make(row) if row is not None else None

    def count(self, conn: Connection, organization_id: int) -> int:
        return count_records(conn, self.table, organization_id)

    def create(
        self,
        conn: Connection,
        organization_id: int,
        values: Mapping[str, Any],
        *,
        now: datetime | None = None,
    ) -> _Row:
        """Raises `Conflict` when the name is taken in the organization."""
        return self.make(create_record(conn, self.table, organization_id, values, now=now))

    def update(
        self,
        conn: Connection,
        organization_id: int,
        record_id: int,
        changes: Mapping[str, Any],
        *,
        now: datetime | None = None,
    ) -> _Row | None:
        """The row after the changes, or None if it does not exist; `Conflict` when the new
        name is taken."""
        if changes:
            self.change(conn, organization_id, record_id, changes, now=now or SYSTEM_CLOCK.now())
        return self.get(conn, organization_id, record_id)


_SITES = _Resource(sites, Site.from_row)
get_site = _SITES.get
find_site = _SITES.find
list_sites = _SITES.page
count_sites = _SITES.count
create_site = _SITES.create
update_site = _SITES.update
delete_site = _SITES.delete

_ZONES = _Resource(hosted_zones, HostedZone.from_row)
get_zone = _ZONES.get
list_zones = _ZONES.page
create_zone = _ZONES.create
update_zone = _ZONES.update
delete_zone = _ZONES.delete

_EXPLORERS = _Resource(explorers, Explorer.from_row)
get_explorer = _EXPLORERS.get
list_explorers = _EXPLORERS.page
update_explorer = _EXPLORERS.update
delete_explorer = _EXPLORERS.delete
