"""Inventory persistence: assets, their addresses and services, processing runs, change reports.

Every statement here is one named function with its purpose; the rules that decide what to
write live in `surveyor.core.fingerprint` and `surveyor.core.changes`, the order of writes in
`surveyor.processing.merge`. Bulk statements take lists of rows so that a batch of answers
costs a handful of round trips, whatever its size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from surveyor.core.fingerprint import HostDetails, KnownAsset, Service, address_key
from surveyor.core.inventory import (
    Asset,
    AssetService,
    AssetSource,
    CandidateAsset,
    OfflineAsset,
    details_from_row,
    split_lines,
)
from surveyor.core.processing import UNFINISHED_PHASES, ProcessingPhase
from surveyor.core.rows import Row
from surveyor.store.cursors import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from surveyor.store.cursors import decode_cursor, encode_cursor, keyset_page, page_size
from surveyor.store.schema import (
    asset_addresses,
    asset_changes,
    asset_names,
    asset_outliers,
    asset_sources,
    assets,
    processing_runs,
    services,
)
from surveyor.store.tasks import COUNT_CAP

#: Rows per `IN (...)` list: well under SQLite's bound-parameter limit.
IN_CHUNK = 900
RUN_COUNTS = ("new", "changed", "offline", "online", "unchanged", "ignored")


class InvalidAssetCursor(ValueError):
    pass


_Item = TypeVar("_Item")


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# Matching ------------------------------------------------------------------------------------


#: What matching and merging read of every candidate asset (its address and name lists,
#: and its services, only when an answer is not plainly identical to it).
_CANDIDATE_COLUMNS = (
    assets.c.id,
    assets.c.address,
    assets.c.mac,
    assets.c.hostname,
    assets.c.os,
    assets.c.alive,
    assets.c.state_hash,
    assets.c.first_seen,
    assets.c.last_seen,
    assets.c.last_run_id,
)


@dataclass(frozen=True)
class Candidates:
    """Assets of a site that a batch of answers may belong to, and what they share with it:
    `keys` holds ("mac" | "address" | "name", value, asset id) for every match found."""

    assets: dict[int, CandidateAsset]
    keys: list[tuple[str, str, int]]


def assets_sharing_identity(
    conn: Connection,
    site_id: int,
    *,
    macs: Collection[str],
    address_keys: Collection[str],
    hostnames: Collection[str],
) -> Candidates:
    """Assets of a site that share a MAC, an address or one of their names with a batch."""
    keys: list[tuple[str, str, int]] = []
    lookups = (
        ("mac", macs, assets.c.mac, assets.c.id, assets.c.site_id, assets.c.mac),
        (
            "address",
            address_keys,
            asset_addresses.c.address,
            asset_addresses.c.asset_id,
            asset_addresses.c.site_id,
            asset_addresses.c.address_key,
        ),
    )
    for kind, wanted, value, found, site, key in lookups:
        for chunk in _chunks(sorted(wanted)):
            query = select(value, found).where(site == site_id, key.in_(list(chunk)))
            keys.extend((kind, shared, asset_id) for shared, asset_id in conn.execute(query).all())
    # By name through the names' index first, then the site of each asset found by its key:
    # joined in one statement, SQLite walks the site's assets instead, for every batch.
    named: list[tuple[str, int]] = []
    for chunk in _chunks(sorted(hostnames)):
        query = select(asset_names.c.name, asset_names.c.asset_id).where(
            asset_names.c.name.in_(list(chunk))
        )
        named.extend((shared, asset_id) for shared, asset_id in conn.execute(query).all())
    in_site: set[int] = set()
    for chunk in _chunks(sorted({asset_id for _, asset_id in named})):
        query = select(assets.c.id).where(assets.c.id.in_(list(chunk)), assets.c.site_id == site_id)
        in_site.update(conn.execute(query).scalars())
    keys.extend(("name", shared, asset_id) for shared, asset_id in named if asset_id in in_site)
    candidates: dict[int, CandidateAsset] = {}
    for chunk in _chunks(sorted({asset_id for _, _, asset_id in keys})):
        query = select(*_CANDIDATE_COLUMNS).where(assets.c.id.in_(list(chunk)))
        for row in conn.execute(query).mappings().all():
            candidates[row["id"]] = CandidateAsset.from_row(row)
    return Candidates(candidates, keys)


#: An asset's address and name lists, and its details.
Identity = tuple[tuple[str, ...], tuple[str, ...], HostDetails]
_DETAIL_COLUMNS = tuple(assets.c[name] for name in HostDetails.__dataclass_fields__)


def asset_identities(conn: Connection, asset_ids: Collection[int]) -> dict[int, Identity]:
    """The address and name lists and the details of some assets, by id."""
    found: dict[int, Identity] = {}
    for chunk in _chunks(sorted(asset_ids)):
        query = select(assets.c.id, assets.c.addresses, assets.c.hostnames, *_DETAIL_COLUMNS).where(
            assets.c.id.in_(list(chunk))
        )
        for row in conn.execute(query).mappings().all():
            found[row["id"]] = (
                tuple(row["addresses"]),
                tuple(row["hostnames"]),
                details_from_row(row),
            )
    return found


def _of_assets(
    conn: Connection,
    asset_ids: Collection[int],
    query: Select[Any],
    asset_column: ColumnElement[int],
    make: Callable[[Row], _Item],
) -> dict[int, list[_Item]]:
    """What `make` makes of each row `query` reads for some assets (`asset_column` holds the
    row's asset; the query's rows have an `asset_id`), by asset id, in the query's order."""
    by_asset: dict[int, list[_Item]] = {asset_id: [] for asset_id in asset_ids}
    for chunk in _chunks(sorted(asset_ids)):
        for row in conn.execute(query.where(asset_column.in_(list(chunk)))).mappings():
            by_asset[row["asset_id"]].append(make(row))
    return by_asset


def services_of(conn: Connection, asset_ids: Collection[int]) -> dict[int, list[AssetService]]:
    """The services of some assets as the API shows them, by asset id, in port order."""
    query = select(services).order_by(services.c.asset_id, services.c.proto, services.c.port)
    return _of_assets(conn, asset_ids, query, services.c.asset_id, AssetService.from_row)


#: The columns of a service row that matching and merging compare: the rule's own fields.
SERVICE_FIELDS: tuple[str, ...] = Service._fields


def service_from_row(row: Row) -> Service:
    """A service row as matching and merging see it, field by column name."""
    values = {name: row[name] for name in SERVICE_FIELDS}
    values["tls_sans"] = split_lines(row["tls_sans"])
    values["cpe"] = split_lines(row["cpe"])
    return Service(**values)


def known_services(
    conn: Connection, asset_ids: Collection[int]
) -> dict[int, list[tuple[int, Service]]]:
    """The services of some assets as matching and merging see them: (service id, service)."""
    columns = [services.c.id, services.c.asset_id, *(services.c[n] for n in SERVICE_FIELDS)]
    query = select(*columns).order_by(services.c.asset_id, services.c.proto, services.c.port)

    def known(row: Row) -> tuple[int, Service]:
        return row["id"], service_from_row(row)

    return _of_assets(conn, asset_ids, query, services.c.asset_id, known)


def service_values(service: Service) -> dict[str, Any]:
    """A service as the columns of its row."""
    values = {name: getattr(service, name) for name in SERVICE_FIELDS}
    values["tls_sans"] = "\n".join(service.tls_sans)
    values["cpe"] = "\n".join(service.cpe)
    return values


def known_asset(
    candidate: CandidateAsset,
    identity: Identity,
    found: Iterable[tuple[int, Service]],
) -> KnownAsset:
    """An asset as the matching and comparing rules see it."""
    addresses, hostnames, details = identity
    return KnownAsset(
        id=candidate.id,
        addresses=addresses,
        mac=candidate.mac,
        hostnames=hostnames,
        services=tuple(service for _, service in found),
        os=candidate.os,
        details=details,
        alive=candidate.alive,
        first_seen=candidate.first_seen,
        last_seen=candidate.last_seen,
    )


# Writing assets ------------------------------------------------------------------------------


def insert_assets(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert new assets; their ids, in the order of `rows`."""
    if not rows:
        return []
    statement = insert(assets).returning(assets.c.id, sort_by_parameter_order=True)
    return [row.id for row in conn.execute(statement, list(rows))]


_ASSET_STATE = (
    "address",
    "address_key",
    "addresses",
    "mac",
    "hostname",
    "hostnames",
    "os",
    "alive",
    "service_count",
    "state_hash",
    "first_seen",
    "last_seen",
    "changed_at",
    "last_task_id",
    "last_run_id",
    *HostDetails.__dataclass_fields__,
)
#: What `touch_assets` writes of an asset that answered unchanged.
_ASSET_SEEN = ("alive", "first_seen", "last_seen", "last_task_id", "last_run_id", "state_hash")


def _update_by_id(
    conn: Connection, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    if not rows:
        return
    statement = (
        update(assets)
        .where(assets.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(statement, [{f"b_{name}": row[name] for name in ("id", *columns)} for row in rows])


#: Rows per statement of `_touch_assets_postgresql` (PostgreSQL takes 65,535 parameters).
TOUCH_CHUNK = 1000


def _driver_values(conn: Connection, columns: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """Rows of `columns` as the driver takes them, converted by the columns' own types; a
    batch repeats a few times over and over, so each distinct value is converted once."""
    converters: list[Callable[[Any], Any] | None] = []
    for name in columns:
        processor = assets.c[name].type.bind_processor(conn.dialect)
        if processor is None:
            converters.append(None)
        else:
            converters.append(functools.lru_cache(maxsize=256)(processor))
    names = tuple(columns)

    def convert(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if convert_one is None or value is None else convert_one(value)
            for convert_one, value in zip(converters, (row[n] for n in names), strict=True)
        )

    return convert


def _touch_assets_postgresql(conn: Connection, params: Sequence[tuple[Any, ...]]) -> None:
    """One `UPDATE … FROM (VALUES …)` per 1,000 assets instead of a statement per asset;
    written out by hand, since compiling a thousand-row VALUES costs more than it saves."""
    columns = ("id", *_ASSET_SEEN)
    # The first row casts each value to its column's own type; the others follow it.
    kinds = [assets.c[name].type.compile(dialect=conn.dialect) for name in columns]
    first = "(" + ", ".join(f"%s::{kind}" for kind in kinds) + ")"
    other = "(" + ", ".join("%s" for _ in columns) + ")"
    assignments = ", ".join(f"{name} = given.{name}" for name in _ASSET_SEEN)
    for chunk in _chunks(params, TOUCH_CHUNK):
        listed = ", ".join([first] + [other] * (len(chunk) - 1))
        conn.exec_driver_sql(
            f"UPDATE assets SET {assignments} FROM (VALUES {listed}) "
            f"AS given ({', '.join(columns)}) WHERE assets.id = given.id",
            tuple(value for row in chunk for value in row),
        )


def update_assets(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write every property of assets that changed (rows carry all of `_ASSET_STATE`)."""
    _update_by_id(conn, _ASSET_STATE, rows)


def touch_assets(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record that unchanged assets answered: when, and to which task and run.

    Most answers of a scan only do this, so it goes to the driver directly.
    """
    if not rows:
        return
    convert = _driver_values(conn, ("id", *_ASSET_SEEN))
    params = [convert(row) for row in rows]
    if conn.dialect.name == "postgresql":
        _touch_assets_postgresql(conn, params)
        return
    assignments = ", ".join(f"{name} = ?" for name in _ASSET_SEEN)
    conn.exec_driver_sql(
        f"UPDATE assets SET {assignments} WHERE id = ?", [(*row[1:], row[0]) for row in params]
    )


def note_reported(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write what answers last reported and nothing compares (uptime, distance): rows carry
    `id`, `uptime_seconds` and `distance`; None keeps the known value."""
    if not rows:
        return
    statement = (
        update(assets)
        .where(assets.c.id == bindparam("b_id"))
        .values(
            uptime_seconds=func.coalesce(
                bindparam("b_uptime", type_=BigInteger), assets.c.uptime_seconds
            ),
            distance=func.coalesce(bindparam("b_distance", type_=Integer), assets.c.distance),
        )
    )
    conn.execute(
        statement,
        [
            {"b_id": row["id"], "b_uptime": row["uptime_seconds"], "b_distance": row["distance"]}
            for row in rows
        ],
    )


def note_sources(conn: Connection, rows: Sequence[tuple[int, str, datetime]]) -> None:
    """Record that sources saw assets: (asset id, source, when). A source's first and last
    time seen only ever widen, so recording a sighting again changes nothing.

    Every answer of a batch writes one, so it goes to the driver directly (one statement
    executed for many rows, each time converted once, as `touch_assets` does).
    """
    if not rows:
        return
    postgresql = conn.dialect.name == "postgresql"
    convert = asset_sources.c.first_seen.type.bind_processor(conn.dialect)
    times = {at: convert(at) if convert is not None else at for _, _, at in rows}
    mark = "%s" if postgresql else "?"
    earliest, latest = ("least", "greatest") if postgresql else ("min", "max")
    conn.exec_driver_sql(
        "INSERT INTO asset_sources (asset_id, source, first_seen, last_seen) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (asset_id, source) DO UPDATE SET "
        f"first_seen = {earliest}(asset_sources.first_seen, excluded.first_seen), "
        f"last_seen = {latest}(asset_sources.last_seen, excluded.last_seen)",
        [(asset_id, source, times[at], times[at]) for asset_id, source, at in rows],
    )


def sources_of(conn: Connection, asset_ids: Collection[int]) -> dict[int, list[AssetSource]]:
    """The sources that saw some assets, by asset id, the most recent first."""
    query = select(asset_sources).order_by(
        asset_sources.c.asset_id, asset_sources.c.last_seen.desc(), asset_sources.c.source
    )
    return _of_assets(conn, asset_ids, query, asset_sources.c.asset_id, AssetSource.from_row)


def replace_addresses(
    conn: Connection, site_id: int, addresses_by_asset: Mapping[int, Sequence[str]]
) -> None:
    """Make each asset's address rows exactly its addresses."""
    if not addresses_by_asset:
        return
    for chunk in _chunks(sorted(addresses_by_asset)):
        conn.execute(delete(asset_addresses).where(asset_addresses.c.asset_id.in_(list(chunk))))
    insert_addresses(conn, site_id, addresses_by_asset)


def insert_addresses(
    conn: Connection, site_id: int, addresses_by_asset: Mapping[int, Sequence[str]]
) -> None:
    rows = [
        {"asset_id": asset_id, "site_id": site_id, "address": a, "address_key": address_key(a)}
        for asset_id, addresses in addresses_by_asset.items()
        for a in addresses
    ]
    if rows:
        conn.execute(insert(asset_addresses), rows)


def replace_names(conn: Connection, names_by_asset: Mapping[int, Sequence[str]]) -> None:
    """Make each asset's name rows exactly its names."""
    if not names_by_asset:
        return
    for chunk in _chunks(sorted(names_by_asset)):
        conn.execute(delete(asset_names).where(asset_names.c.asset_id.in_(list(chunk))))
    insert_names(conn, names_by_asset)


def insert_names(conn: Connection, names_by_asset: Mapping[int, Sequence[str]]) -> None:
    rows = [
        {"asset_id": asset_id, "name": name}
        for asset_id, names in names_by_asset.items()
        for name in names
    ]
    if rows:
        conn.execute(insert(asset_names), rows)


def insert_services(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(services), list(rows))


def update_services(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite the details of services by id (rows carry `id`, the details and `changed_at`)."""
    if not rows:
        return
    columns = [name for name in SERVICE_FIELDS if name not in ("port", "proto")] + ["changed_at"]
    statement = (
        update(services)
        .where(services.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(statement, [{f"b_{name}": row[name] for name in ("id", *columns)} for row in rows])


def delete_services(conn: Connection, service_ids: Collection[int]) -> None:
    for chunk in _chunks(sorted(service_ids)):
        conn.execute(delete(services).where(services.c.id.in_(list(chunk))))


def insert_changes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(asset_changes), list(rows))


# Offline marking -----------------------------------------------------------------------------


def silent_assets_in_scope(
    conn: Connection,
    site_id: int,
    *,
    run_id: int,
    observed_at: datetime,
    key_ranges: Sequence[tuple[str, str]],
    hostnames: Collection[str],
) -> list[int]:
    """Alive assets of a site with an address (or listed name) in the scanned scope that no
    answer of this run claimed and that nothing saw after the scan: ids, ascending."""
    silent = and_(
        assets.c.site_id == site_id,
        assets.c.alive.is_(True),
        or_(assets.c.last_run_id.is_(None), assets.c.last_run_id != run_id),
        assets.c.last_seen < observed_at,
    )
    found: set[int] = set()
    for chunk in _chunks(list(key_ranges), 50):
        in_range = or_(*(asset_addresses.c.address_key.between(low, high) for low, high in chunk))
        query = (
            select(assets.c.id)
            .join(asset_addresses, asset_addresses.c.asset_id == assets.c.id)
            .where(asset_addresses.c.site_id == site_id, in_range, silent)
        )
        found.update(conn.execute(query).scalars())
    for names in _chunks(sorted(hostnames)):
        query = select(assets.c.id).where(silent, assets.c.hostname.in_(list(names)))
        found.update(conn.execute(query).scalars())
    return sorted(found)


def mark_offline(conn: Connection, asset_ids: Sequence[int], *, run_id: int) -> list[OfflineAsset]:
    """Mark assets offline unless something claimed them meanwhile; the rows it marked."""
    if not asset_ids:
        return []
    statement = (
        update(assets)
        .where(
            assets.c.id.in_(list(asset_ids)),
            assets.c.alive.is_(True),
            or_(assets.c.last_run_id.is_(None), assets.c.last_run_id != run_id),
        )
        .values(alive=False)
        .returning(assets.c.id, assets.c.address, assets.c.hostname, assets.c.last_seen)
    )
    return [
        OfflineAsset(id=row.id, address=row.address, hostname=row.hostname, last_seen=row.last_seen)
        for row in conn.execute(statement)
    ]


# Processing runs -----------------------------------------------------------------------------


def _last_run(conn: Connection, *conditions: ColumnElement[bool]) -> dict[str, Any] | None:
    """The most recent processing run that meets `conditions`, or None."""
    row = (
        conn.execute(
            select(processing_runs)
            .where(*conditions)
            .order_by(processing_runs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def latest_run(conn: Connection, task_id: int) -> dict[str, Any] | None:
    """The task's most recent processing run (finished or not)."""
    return _last_run(conn, processing_runs.c.task_id == task_id)


def abandon_unfinished_runs(
    conn: Connection, task_id: int, *, keep: int, ended_at: datetime
) -> None:
    """Close a task's unfinished runs but `keep`: a fresh run took over. They stay listed,
    with what they had counted, as every earlier run does."""
    conn.execute(
        update(processing_runs)
        .where(
            processing_runs.c.task_id == task_id,
            processing_runs.c.id != keep,
            processing_runs.c.phase.in_([phase.value for phase in UNFINISHED_PHASES]),
        )
        .values(phase=ProcessingPhase.ABANDONED.value, ended_at=ended_at)
    )


def start_run(conn: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    """Open the task's next run, numbered after its earlier ones (which all stay)."""
    task_id = values["task_id"]
    number = conn.execute(
        select(func.coalesce(func.max(processing_runs.c.number), 0) + 1).where(
            processing_runs.c.task_id == task_id
        )
    ).scalar_one()
    row = {**dict.fromkeys(RUN_COUNTS, 0), "records_done": 0, "number": number, **values}
    run_id = conn.execute(
        insert(processing_runs).values(**row).returning(processing_runs.c.id)
    ).scalar_one()
    return {**row, "id": run_id, "ended_at": row.get("ended_at")}


def advance_run(
    conn: Connection,
    run_id: int,
    *,
    expected_done: int,
    done: int,
    counts: Mapping[str, int],
    phase: ProcessingPhase | None = None,
) -> bool:
    """Add a batch's counts and move the checkpoint, if it is still where this worker left it.

    False means another worker moved it: this one has lost the task and must stop.
    """
    values: dict[str, Any] = {
        name: processing_runs.c[name] + int(counts.get(name, 0)) for name in RUN_COUNTS
    }
    values["records_done"] = done
    if phase is not None:
        values["phase"] = phase.value
    result = conn.execute(
        update(processing_runs)
        .where(processing_runs.c.id == run_id, processing_runs.c.records_done == expected_done)
        .values(**values)
    )
    return result.rowcount == 1


def finish_run(conn: Connection, run_id: int, *, ended_at: datetime) -> dict[str, Any]:
    conn.execute(
        update(processing_runs)
        .where(processing_runs.c.id == run_id)
        .values(phase=ProcessingPhase.DONE.value, ended_at=ended_at)
    )
    row = conn.execute(select(processing_runs).where(processing_runs.c.id == run_id)).mappings()
    return dict(row.one())


def finished_run(conn: Connection, task_id: int) -> dict[str, Any] | None:
    """The task's latest finished run: the one its change report shows by default."""
    return _last_run(
        conn,
        processing_runs.c.task_id == task_id,
        processing_runs.c.phase == ProcessingPhase.DONE.value,
    )


def run_by_number(conn: Connection, task_id: int, number: int) -> dict[str, Any] | None:
    """One of the task's runs, by its number (1 for the first)."""
    return _last_run(conn, processing_runs.c.task_id == task_id, processing_runs.c.number == number)


def list_runs(
    conn: Connection, task_id: int, *, limit: int = 100, before_number: int | None = None
) -> list[dict[str, Any]]:
    """The task's processing runs, newest first, by keyset on the run number."""
    query = select(processing_runs).where(processing_runs.c.task_id == task_id)
    if before_number is not None:
        query = query.where(processing_runs.c.number < before_number)
    rows = conn.execute(query.order_by(processing_runs.c.number.desc()).limit(limit)).mappings()
    return [dict(row) for row in rows]


# Reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetPage:
    items: list[Asset]
    next_cursor: str | None


def _encode_cursor(asset: Asset) -> str:
    return encode_cursor([asset.address_key, asset.id])


def _decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        key, last_id = decode_cursor(cursor)
        if not isinstance(key, str) or not isinstance(last_id, int):
            raise TypeError
    except (ValueError, TypeError) as exc:
        raise InvalidAssetCursor(
            "the cursor is malformed; use the next_cursor of a previous page"
        ) from exc
    return key, last_id


#: An asset's outlier score and reasons, as `Asset.from_row` reads them (`asset_outliers`).
SCORE_COLUMNS = (
    asset_outliers.c.score.label("outlier"),
    asset_outliers.c.reasons.label("outlier_reasons"),
)


def searched_assets(
    organization_id: int, search: ColumnElement[bool] | None
) -> ColumnElement[bool]:
    """The organization's assets that `search` finds (all of them without one)."""
    clause = assets.c.organization_id == organization_id
    return clause if search is None else and_(clause, search)


def select_assets() -> Select[Any]:
    """Assets' rows with their outlier scores and reasons (NULL while not scored), as
    `Asset.from_row` reads them."""
    return select(*assets.c, *SCORE_COLUMNS).select_from(
        assets.outerjoin(asset_outliers, asset_outliers.c.asset_id == assets.c.id)
    )


def list_assets(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> AssetPage:
    """One page of an organization's assets in address order, by keyset pagination."""
    limit = page_size(limit)
    clause = searched_assets(organization_id, search)
    if cursor:
        key, last_id = _decode_cursor(cursor)
        bound = tuple_(literal(key, assets.c.address_key.type), literal(last_id))
        clause = and_(clause, tuple_(assets.c.address_key, assets.c.id) > bound)
    rows = (
        conn.execute(
            select_assets()
            .where(clause)
            .order_by(assets.c.address_key, assets.c.id)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    return AssetPage(*keyset_page(rows, limit, Asset.from_row, _encode_cursor))


@dataclass(frozen=True)
class AssetCount:
    """How many assets a search finds: exact, or stopped at the cap (`capped`, a lower
    bound, shown as `10,000+`)."""

    count: int
    capped: bool


def count_assets(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    cap: int | None = COUNT_CAP,
) -> AssetCount:
    """How many of an organization's assets `search` finds, reading no more than one past
    `cap` of them (`cap=None`: every one, however many)."""
    clause = searched_assets(organization_id, search)
    found = select(literal(1)).where(clause)
    if cap is not None:
        found = found.limit(cap + 1)
    count = int(conn.execute(select(func.count()).select_from(found.subquery())).scalar_one())
    if cap is not None and count > cap:
        return AssetCount(cap, True)
    return AssetCount(count, False)


def get_asset(conn: Connection, organization_id: int, asset_id: int) -> Asset | None:
    row = (
        conn.execute(
            select_assets().where(
                assets.c.id == asset_id, assets.c.organization_id == organization_id
            )
        )
        .mappings()
        .first()
    )
    return Asset.from_row(row) if row is not None else None


def asset_counts_by_site(conn: Connection, organization_id: int) -> dict[int, dict[str, int]]:
    """Assets per site of an organization: all of them (`total`) and those that answered
    the last scan of their scope (`online`); sites without assets are absent."""
    rows = conn.execute(
        select(
            assets.c.site_id,
            func.count(),
            func.sum(func.cast(assets.c.alive, assets.c.service_count.type)),
        )
        .where(assets.c.organization_id == organization_id)
        .group_by(assets.c.site_id)
    ).all()
    return {
        site_id: {"total": int(total), "online": int(alive or 0)} for site_id, total, alive in rows
    }


def asset_history(conn: Connection, asset_id: int, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest changes recorded for an asset, newest first."""
    rows = (
        conn.execute(
            select(asset_changes, processing_runs.c.observed_at)
            .join(processing_runs, processing_runs.c.id == asset_changes.c.run_id)
            .where(asset_changes.c.asset_id == asset_id)
            .order_by(asset_changes.c.id.desc())
            .limit(limit)
        )
        .mappings()
        .all()
    )
    return [dict(row) for row in rows]


def list_changes(
    conn: Connection,
    run_id: int,
    *,
    kinds: Collection[str] | None = None,
    after_id: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """A run's change report rows in the order they were recorded."""
    query = select(asset_changes).where(asset_changes.c.run_id == run_id)
    if kinds:
        query = query.where(asset_changes.c.kind.in_(sorted(kinds)))
    if after_id is not None:
        query = query.where(asset_changes.c.id > after_id)
    rows = conn.execute(query.order_by(asset_changes.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]
