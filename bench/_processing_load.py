"""Build the processing benchmark's databases, and the raw baseline it is compared with.

The inventory is generated once into an SQLite file (cached in `$SURVEYOR_BENCH_CACHE`,
default /tmp/surveyor-bench, keyed by generator version, schema revision and sizes), with
the product's schema from its migrations, organizations, sites and tasks through the store,
and the inventory rows bulk loaded (`executemany`, synchronous=OFF, indexes rebuilt after).
PostgreSQL gets the same rows by `COPY` straight from that file.

Sites: `Main` holds the whole inventory; `Raw`, `One`, `Two A` and `Two B` hold copies of the
assets inside the scan's scope, so that every measurement starts from the same state.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._processing_data import GENERATOR_VERSION, Plan, asset_rows, inventory_assets
from surveyor.core.fingerprint import address_key
from surveyor.core.tasks import TaskType
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import head_revision, upgrade
from surveyor.store.records import create_record
from surveyor.store.schema import asset_addresses, asset_names, assets, services, sites

MAIN, RAW, ONE, TWO_A, TWO_B = "Main", "Raw", "One", "Two A", "Two B"
COPIES = (RAW, ONE, TWO_A, TWO_B)
PRODUCT_SITES = (MAIN, ONE, TWO_A, TWO_B)
INVENTORY_TABLES = (assets, asset_addresses, asset_names, services)
BATCH = 20_000


def cache_dir() -> Path:
    path = Path(os.environ.get("SURVEYOR_BENCH_CACHE") or "/tmp/surveyor-bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class World:
    """What the measurements need to know about a built database."""

    organization_id: int
    site_ids: dict[str, int]
    task_ids: dict[str, int]
    max_asset_id: int
    build_seconds: float
    cached: bool


def _sqlite_time(value: datetime) -> str:
    # What the product's UTCDateTime binds on SQLite: naive UTC with microseconds.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _sqlite_time(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _columns(table: Any) -> list[str]:
    return [column.name for column in table.columns]


def _create_places(db: Database) -> tuple[int, dict[str, int], dict[str, int]]:
    """The organization, its sites, and one import task (status new) per product site."""
    with db.write() as conn:
        org = accounts.create_organization(conn, "Bench")
        site_ids = {
            name: create_record(conn, sites, org["id"], {"name": name, "scope": "127.0.0.0/8"})[
                "id"
            ]
            for name in (MAIN, *COPIES)
        }
        task_ids = {
            name: task_store.create_task(
                conn,
                {
                    "organization_id": org["id"],
                    "site_id": site_ids[name],
                    "name": f"Scan of {name}",
                    "type": TaskType.IMPORT.value,
                },
                actor="bench",
            ).id
            for name in PRODUCT_SITES
        }
    return org["id"], site_ids, task_ids


def _site_rows(
    plan: Plan, organization_id: int, site_ids: dict[str, int]
) -> Iterator[tuple[str, Any]]:
    """(table, row) for every inventory row: the main site, then the copies."""
    in_scope = plan.roles.known_in_scope
    copies: list[Any] = []
    next_asset, next_service = 1, 1
    for number, found in enumerate(inventory_assets(plan)):
        if number < in_scope:
            copies.append(found)
        yield from _rows_of(found, next_asset, next_service, organization_id, site_ids[MAIN])
        next_asset += 1
        next_service += len(found.services)
    for site_name in COPIES:
        for found in copies:
            yield from _rows_of(
                found, next_asset, next_service, organization_id, site_ids[site_name]
            )
            next_asset += 1
            next_service += len(found.services)


def _rows_of(
    found: Any, asset_id: int, service_id: int, organization_id: int, site_id: int
) -> Iterator[tuple[str, Any]]:
    yield (
        "assets",
        {**found.asset, "id": asset_id, "organization_id": organization_id, "site_id": site_id},
    )
    for address in found.addresses:
        yield "asset_addresses", _address_row(asset_id, site_id, address)
    for name in found.names:
        yield "asset_names", {"asset_id": asset_id, "name": name}
    for offset, service in enumerate(found.services):
        yield "services", {**service, "id": service_id + offset, "asset_id": asset_id}


def _indexes(con: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table,),
    ).fetchall()


def build_sqlite(path: Path, plan: Plan) -> World:
    """Create the benchmark database at `path` (schema, places, tasks, inventory)."""
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    db = Database(engine)
    organization_id, site_ids, task_ids = _create_places(db)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1048576")
        dropped = [index for table in INVENTORY_TABLES for index in _indexes(con, table.name)]
        for name, _ in dropped:
            con.execute(f'DROP INDEX "{name}"')
        statements = {
            table.name: (
                _columns(table),
                f"INSERT INTO {table.name} ({', '.join(_columns(table))}) "
                f"VALUES ({', '.join('?' for _ in table.columns)})",
            )
            for table in INVENTORY_TABLES
        }
        pending: dict[str, list[list[Any]]] = {name: [] for name in statements}
        con.execute("BEGIN")
        max_asset = 0
        for table, row in _site_rows(plan, organization_id, site_ids):
            columns, _ = statements[table]
            pending[table].append([_sqlite_value(row.get(c)) for c in columns])
            if table == "assets":
                max_asset = row["id"]
            if len(pending[table]) >= BATCH:
                con.executemany(statements[table][1], pending[table])
                pending[table] = []
        for table, rows in pending.items():
            if rows:
                con.executemany(statements[table][1], rows)
        con.execute("COMMIT")
        for _, sql in dropped:
            con.execute(sql)
        con.execute("ANALYZE")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    return World(
        organization_id, site_ids, task_ids, max_asset, time.perf_counter() - started, False
    )


def prepare_sqlite(plan: Plan, *, rebuild: bool = False) -> tuple[Path, World]:
    """The cached benchmark database (built first when missing); measure on a copy."""
    name = f"processing-v{GENERATOR_VERSION}-{head_revision()}-{plan.inventory}-{plan.hosts}"
    cached = cache_dir() / f"{name}.db"
    meta = cache_dir() / f"{name}.json"
    if rebuild or not cached.exists() or not meta.exists():
        for stale in (cached, meta):
            stale.unlink(missing_ok=True)
        building = cached.with_suffix(".building")
        building.unlink(missing_ok=True)
        world = build_sqlite(building, plan)
        building.rename(cached)
        meta.write_text(json.dumps(world.__dict__))
    else:
        world = World(**{**json.loads(meta.read_text()), "cached": True})
    return cached, world


def load_postgresql(url: str, sqlite_path: Path) -> None:
    """Copy the schema's rows from the built SQLite database into an empty PostgreSQL."""
    engine = make_engine(url)
    upgrade(engine)
    raw = engine.raw_connection()
    source = sqlite3.connect(sqlite_path)
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET maintenance_work_mem = '512MB'")
            tables = ["organizations", "sites", "tasks", "task_events"]
            tables += [table.name for table in INVENTORY_TABLES]
            inventory_names = [t.name for t in INVENTORY_TABLES]
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = ANY(%s) AND indexname NOT LIKE 'pk_%%' "
                "AND indexname NOT LIKE 'uq_%%'",
                (inventory_names,),
            )
            indexes = cur.fetchall()
            for index_name, _ in indexes:
                cur.execute(f'DROP INDEX "{index_name}"')
            for table in tables:
                columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
                rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(_pg_row(row))
            for _, definition in indexes:
                cur.execute(definition)
            for table in ("organizations", "sites", "tasks", "task_events", "assets", "services"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            cur.execute("SET session_replication_role = DEFAULT")
        pg.commit()
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        source.close()
        raw.close()
        engine.dispose()


def _pg_row(row: Iterable[Any]) -> list[Any]:
    # SQLite stores booleans as 0/1; PostgreSQL's text input takes them as booleans.
    return [str(value) if isinstance(value, int) and value in (0, 1) else value for value in row]


# The raw baseline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRows:
    """The rows the scan leads to, for a hand-written bulk upsert."""

    assets: list[dict[str, Any]]
    addresses: list[dict[str, Any]]
    names: list[dict[str, Any]]
    services: list[dict[str, Any]]

    @property
    def count(self) -> int:
        return len(self.assets) + len(self.addresses) + len(self.names) + len(self.services)


def raw_rows(
    records: Iterable[dict[str, Any]],
    asset_ids: dict[str, int],
    *,
    organization_id: int,
    site_id: int,
    first_new_id: int,
    seen: datetime,
    first_seen: datetime,
) -> RawRows:
    """Every asset, address, name and service row of the scan's answers, with the asset ids
    the answers belong to (`asset_ids` by MAC or address; the rest get new ids)."""
    result = RawRows([], [], [], [])
    next_id = first_new_id
    for record in records:
        if record["type"] != "host":
            continue
        found = asset_rows(record, alive=True, seen=seen)
        mac = found.asset["mac"]
        known = asset_ids.get(f"mac:{mac}") if mac else None
        known = known or asset_ids.get(found.asset["address"])
        asset_id = known or next_id
        if known is None:
            next_id += 1
        asset = {
            **found.asset,
            "id": asset_id,
            "organization_id": organization_id,
            "site_id": site_id,
            "first_seen": first_seen if known else seen,
        }
        result.assets.append(asset)
        result.addresses.extend(_address_row(asset_id, site_id, a) for a in found.addresses)
        result.names.extend({"asset_id": asset_id, "name": n} for n in found.names)
        result.services.extend({**s, "asset_id": asset_id} for s in found.services)
    return result


def _address_row(asset_id: int, site_id: int, address: str) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "address_key": address_key(address),
        "site_id": site_id,
        "address": address,
    }
