"""The keys assets can be searched by (SPEC §11), mapped onto the inventory tables.

Keys on addresses, names and services match an asset when any of its addresses, names or
services matches (`port:22 port:80` finds assets with both). A bare value searches addresses,
names, MAC and operating system. Stale assets (core/retention.py) are left out unless the
query names `stale` (`compile_asset_search`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, and_, not_, true

from surveyor.core.retention import STALE_KEY
from surveyor.core.search import Catalogue, FieldKind, Query, SearchField, mentions_key
from surveyor.store.retention import STALE
from surveyor.store.schema import (
    asset_addresses,
    asset_names,
    asset_outliers,
    asset_sources,
    assets,
    services,
    sites,
)
from surveyor.store.search_sql import RelatedValue, SqlCatalogue, SqlSource, compile_search

_TEXT, _NUMBER, _TIME, _BOOL = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.TIME, FieldKind.BOOL
_a = assets.c
_sc = services.c
SqlField = SearchField[SqlSource]

#: The keys on a service's own columns (SPEC §11): the asset search's, where any of an
#: asset's services may match, and the service search's, on the service itself.
_SERVICE_COLUMNS: Final[dict[str, tuple[FieldKind, ColumnElement[Any]]]] = {
    "port": (_NUMBER, _sc.port),
    "service": (_TEXT, _sc.name),
    "protocol": (_TEXT, _sc.name),
    "transport": (_TEXT, _sc.proto),
    "product": (_TEXT, _sc.product),
    "version": (_TEXT, _sc.version),
    "cpe": (_TEXT, _sc.cpe),
    "banner": (_TEXT, _sc.banner),
    "title": (_TEXT, _sc.http_title),
    "http_server": (_TEXT, _sc.http_server),
    "tls_subject": (_TEXT, _sc.tls_subject),
    "tls_issuer": (_TEXT, _sc.tls_issuer),
}


def service_keys(
    reach: Callable[[ColumnElement[Any]], SqlSource] = lambda column: column,
) -> dict[str, SqlField]:
    """The keys on a service's own columns, each column as `reach` gets to it from the
    searched table (as it is, when that is the services table)."""
    return {
        key: SearchField(kind, reach(column)) for key, (kind, column) in _SERVICE_COLUMNS.items()
    }


def address_keys(asset_id: ColumnElement[Any]) -> dict[str, SqlField]:
    """`address` and `hostname`: any of the addresses and names of the asset `asset_id` (a
    column of the searched table) may match."""
    return {
        "address": SearchField(
            _TEXT, RelatedValue(asset_id, asset_addresses.c.asset_id, asset_addresses.c.address)
        ),
        "hostname": SearchField(
            _TEXT, RelatedValue(asset_id, asset_names.c.asset_id, asset_names.c.name)
        ),
    }


def _service(column: ColumnElement[Any]) -> RelatedValue:
    """A key on one column of an asset's services: any service may match."""
    return RelatedValue(_a.id, _sc.asset_id, column)


ASSET_SEARCH: SqlCatalogue = Catalogue(
    fields={
        "id": SearchField(_NUMBER, _a.id),
        **address_keys(_a.id),
        "mac": SearchField(_TEXT, _a.mac),
        "mac_vendor": SearchField(_TEXT, _a.mac_vendor),
        "os": SearchField(_TEXT, _a.os),
        "os_version": SearchField(_TEXT, _a.os_version),
        "device_type": SearchField(_TEXT, _a.device_type),
        "description": SearchField(_TEXT, _a.description),
        "seen_by": SearchField(_TEXT, _a.seen_by),
        "source": SearchField(
            _TEXT, RelatedValue(_a.id, asset_sources.c.asset_id, asset_sources.c.source)
        ),
        "site": SearchField(_TEXT, RelatedValue(_a.site_id, sites.c.id, sites.c.name)),
        "alive": SearchField(_BOOL, _a.alive),
        STALE_KEY: SearchField(_BOOL, STALE),
        "stale_since": SearchField(_TIME, _a.stale_since),
        "first_seen": SearchField(_TIME, _a.first_seen),
        "last_seen": SearchField(_TIME, _a.last_seen),
        "changed_at": SearchField(_TIME, _a.changed_at),
        "services": SearchField(_NUMBER, _a.service_count),
        # Its score, when it has one (`asset_outliers`).
        "outlier": SearchField(
            _NUMBER, RelatedValue(_a.id, asset_outliers.c.asset_id, asset_outliers.c.score)
        ),
        "last_task": SearchField(_NUMBER, _a.last_task_id),
        **service_keys(_service),
    },
    bare_keys=("address", "hostname", "mac", "os"),
)


def compile_asset_search(
    conn: Connection, query: Query | None, *, now: datetime
) -> ColumnElement[bool]:
    """The WHERE condition of an asset search as the Assets list, the API and exports use it:
    stale assets are left out unless the query names `stale` (`stale:true` lists them)."""
    clause = compile_search(conn, query, ASSET_SEARCH, now=now)
    if query is not None and mentions_key(query, STALE_KEY):
        return clause if clause is not None else true()
    fresh = not_(STALE)
    return fresh if clause is None else and_(clause, fresh)
