"""Build a benchmark database: the product's schema and bootstrap, then a bulk load of tasks.

The schema comes from the product's migrations and the first admin from its bootstrap; sites,
explorers and users go through the store. Only the tasks are bulk loaded (SQLite `executemany`
with synchronous=OFF, PostgreSQL `COPY`), with each value encoded by the same SQLAlchemy
column types the product writes through, and the table's indexes rebuilt after the load.

SQLite databases are cached (`$SURVEYOR_BENCH_CACHE`, default /tmp/surveyor-bench), keyed by
the generator version, the schema revision and the task count, and rebuilt after a week so that
ages like `created_at:<30days` keep meaning what they meant when the rows were made.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.types.json import Json as PgJson
from sqlalchemy import JSON, Boolean, Dialect

from bench._data import (
    GENERATOR_VERSION,
    MAIN_ORG,
    OTHER_ORG,
    Explorer,
    Organization,
    OrganizationLayout,
    Site,
    User,
    json_text,
    plan_tasks,
    split_counts,
    task_rows,
)
from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.store import accounts
from surveyor.store.bootstrap import bootstrap_if_empty
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import head_revision, upgrade
from surveyor.store.records import create_record, find_by_name
from surveyor.store.schema import UTCDateTime, explorers, hosted_zones, sites, tasks

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "bench admin password, not a secret"
#: The bootstrap token is the admin's bearer token; fixed, so a cached database keeps working.
BENCH_TOKEN = "surveyor-bench-bootstrap-token-0123456789abcdef"
SEED = 20_240_601
CACHE_MAX_AGE = timedelta(days=7)
#: The product keeps per-tab counters in step with every task write; a bulk load recounts.
RECOUNT_TABS = (
    "DELETE FROM task_tab_counts",
    "INSERT INTO task_tab_counts (organization_id, tab, hidden, count) "
    "SELECT organization_id, tab, hidden, count(*) FROM tasks WHERE tab IS NOT NULL "
    "GROUP BY organization_id, tab, hidden",
)

BATCH = 20_000
CHECKED_ROWS = 5_000


@dataclass(frozen=True)
class Prepared:
    """A database ready to benchmark."""

    url: str
    organization_id: int
    tasks: int
    generated_at: str
    cached: bool
    generate_seconds: float
    load_seconds: float
    index_seconds: float
    analyze_seconds: float


def cache_dir() -> Path:
    return Path(os.environ.get("SURVEYOR_BENCH_CACHE") or "/tmp/surveyor-bench")


@contextmanager
def bootstrap_environment() -> Iterator[None]:
    """The variables the first start reads; restored afterwards."""
    wanted = {
        "SURVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
        "SURVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SURVEYOR_BOOTSTRAP_TOKEN": BENCH_TOKEN,
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _site_scope(index: int) -> tuple[str, str]:
    return f"127.{10 + index}.0.0/18", f"127.{10 + index}.0.1"


def _create_organization(
    db: Database, layout: OrganizationLayout, admin: User | None
) -> Organization:
    """Sites, hosted zones, explorers and users of one organization, through the store."""
    now = datetime.now(UTC)
    with db.write() as conn:
        org = accounts.find_organization(conn, layout.name)
        if org is None:
            org = accounts.create_organization(conn, layout.name)
        org_id = org["id"]
        zone_ids: dict[str, int] = {}
        for name in sorted({site.zone for site in layout.sites if site.zone}):
            zone = create_record(
                conn,
                hosted_zones,
                org_id,
                {"name": name, "description": f"explorer pool {name}", "max_concurrent": 4},
            )
            zone_ids[name] = zone["id"]
        site_refs: list[Site] = []
        explorer_refs: list[Explorer] = []
        number = 0
        for index, layout_site in enumerate(layout.sites):
            if layout_site.exists:
                row = find_by_name(conn, sites, org_id, layout_site.name)
                assert row is not None, f"the bootstrap did not create site {layout_site.name}"
            else:
                scope, excludes = _site_scope(index + (20 if layout.exists else 60))
                row = create_record(
                    conn,
                    sites,
                    org_id,
                    {
                        "name": layout_site.name,
                        "description": f"network segment {layout_site.name}",
                        "scope": scope,
                        "excludes": excludes,
                    },
                )
            site_refs.append(
                Site(row["id"], row["name"], row["scope"], row["excludes"], layout_site.weight)
            )
            zone_id = zone_ids.get(layout_site.zone) if layout_site.zone else None
            names = layout_site.explorer_names
            for slot in range(layout_site.explorers):
                number += 1
                name = names[slot] if slot < len(names) else f"exp-{number:02d}"
                explorer = create_record(
                    conn,
                    explorers,
                    org_id,
                    {
                        "name": name,
                        "site_id": row["id"],
                        "hosted_zone_id": zone_id,
                        "version": "1.4.2",
                        "hostname": f"{name}.corp.example",
                        "os": "Debian 12",
                        "addresses": [f"192.0.2.{number}"],
                        "last_checkin_at": now,
                    },
                )
                explorer_refs.append(Explorer(explorer["id"], name, row["id"], zone_id))
        user_refs: list[User] = [admin] if admin is not None else []
        for email, weight in layout.users:
            user = accounts.create_user(conn, email, password=None, name=email.split("@")[0])
            accounts.set_membership(conn, org_id, user["id"], accounts.Role.OPERATOR)
            user_refs.append(User(user["id"], email, weight))
    return Organization(
        org_id,
        tuple(site_refs),
        tuple(explorer_refs),
        {zone_id: name for name, zone_id in zone_ids.items()},
        tuple(user_refs),
    )


def _prepare_schema(db: Database, data_dir: Path) -> list[Organization]:
    upgrade(db.engine)
    with bootstrap_environment():
        created = bootstrap_if_empty(db, data_dir, now=SYSTEM_CLOCK.now())
    if created is None:
        raise RuntimeError("the benchmark database was not empty")
    with db.read() as conn:
        admin = accounts.find_user_by_email(conn, ADMIN_EMAIL)
        assert admin is not None
    admin_ref = User(admin["id"], ADMIN_EMAIL, 7)
    return [
        _create_organization(db, MAIN_ORG, admin_ref),
        _create_organization(db, OTHER_ORG, None),
    ]


def _encoder(
    dialect: Dialect,
) -> tuple[list[str], Callable[[Iterable[dict[str, Any]]], Iterator[list[Any]]]]:
    """Column names and a function turning a row dict into the DBAPI values SQLAlchemy binds.

    SQLAlchemy's own bind processors are exact but cost a minute per million rows, so the
    common kinds are encoded directly; the first rows are checked against SQLAlchemy.
    """
    columns = [column.name for column in tasks.columns]
    reference = [
        column.type.dialect_impl(dialect).bind_processor(dialect) for column in tasks.columns
    ]
    sqlite = dialect.name == "sqlite"
    defaults: dict[str, Any] = {}
    fast: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(tasks.columns):
        if isinstance(column.type, UTCDateTime):
            if sqlite:
                fast.append((index, _sqlite_time))
        elif isinstance(column.type, JSON):
            fast.append((index, json_text))
        elif isinstance(column.type, Boolean) and sqlite:
            fast.append((index, int))

    def encode(row: dict[str, Any]) -> list[Any]:
        values = [row.get(name, defaults.get(name)) for name in columns]
        for index, encode_value in fast:
            if values[index] is not None:
                values[index] = encode_value(values[index])
        return values

    def encode_checked(row: dict[str, Any]) -> list[Any]:
        unknown = row.keys() - set(columns)
        if unknown:
            raise RuntimeError(f"the generator writes columns the schema lacks: {unknown}")
        values = encode(row)
        for name, got, processor in zip(columns, values, reference, strict=True):
            want = row.get(name, defaults.get(name))
            if processor is not None and want is not None:
                want = processor(want)
            if isinstance(want, PgJson):
                want = json_text(want.obj)
            assert got == want, f"{name}: encoded {got!r}, SQLAlchemy binds {want!r}"
        return values

    def defaults_for(row: dict[str, Any]) -> None:
        # Columns newer than the generator get their default, and the benchmark says so.
        for column in tasks.columns:
            if column.name in row:
                continue
            default = column.default
            if default is not None and default.is_scalar:
                defaults[column.name] = default.arg  # type: ignore[attr-defined]
            elif column.nullable:
                defaults[column.name] = None
            else:
                raise RuntimeError(f"the generator does not know tasks.{column.name}")
            print(
                f"  note: tasks.{column.name} is not generated; using {defaults[column.name]!r}",
                file=sys.stderr,
            )

    def encode_all(rows: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
        for count, row in enumerate(rows):
            if count == 0:
                defaults_for(row)
            yield encode_checked(row) if count < CHECKED_ROWS else encode(row)

    return columns, encode_all


def _sqlite_time(value: datetime) -> str:
    # What the product's UTCDateTime binds on SQLite: naive UTC with microseconds.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@dataclass
class _Timings:
    generate: float = 0.0
    load: float = 0.0
    index: float = 0.0
    analyze: float = 0.0


def _rows(
    organizations: Sequence[Organization], count: int, now: datetime, timings: _Timings
) -> Iterator[dict[str, Any]]:
    started = time.perf_counter()
    main_count, other_count = split_counts(count)
    plans = plan_tasks(
        [(organizations[0], main_count), (organizations[1], other_count)], now=now, seed=SEED
    )
    timings.generate += time.perf_counter() - started
    yield from task_rows(plans, now=now, seed=SEED)


def _batches(rows: Iterable[list[Any]], size: int) -> Iterator[list[list[Any]]]:
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _load_sqlite(
    path: Path, dialect: Dialect, rows: Iterator[dict[str, Any]], timings: _Timings
) -> None:
    columns, encode = _encoder(dialect)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # Bulk-load settings for this connection only; the product's own stay as they are.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-524288")
        con.execute("PRAGMA temp_store=MEMORY")
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'tasks' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        insert = (
            f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        )
        con.execute("BEGIN")
        for batch in _batches(_timed(encode(rows), timings), BATCH):
            started = time.perf_counter()
            con.executemany(insert, batch)
            timings.load += time.perf_counter() - started
        con.execute(RECOUNT_TABS[0])
        con.execute(RECOUNT_TABS[1])
        con.execute("COMMIT")
        started = time.perf_counter()
        for _, sql in indexes:
            con.execute(sql)
        timings.index = time.perf_counter() - started
        started = time.perf_counter()
        con.execute("ANALYZE")
        timings.analyze = time.perf_counter() - started
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _timed(rows: Iterator[list[Any]], timings: _Timings) -> Iterator[list[Any]]:
    """Count the time spent making rows (not writing them) as generation time."""
    while True:
        started = time.perf_counter()
        row = next(rows, None)
        timings.generate += time.perf_counter() - started
        if row is None:
            return
        yield row


def _load_postgresql(db: Database, rows: Iterator[dict[str, Any]], timings: _Timings) -> None:
    columns, encode = _encoder(db.engine.dialect)
    raw = db.engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            # Foreign keys are not checked row by row during the load (the generator only
            # refers to rows it created); indexes are rebuilt once at the end.
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = 'tasks' "
                "AND indexname <> 'pk_tasks'"
            )
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            with cur.copy(f"COPY tasks ({', '.join(columns)}) FROM STDIN") as copy:
                for batch in _batches(_timed(encode(rows), timings), BATCH):
                    started = time.perf_counter()
                    for row in batch:
                        copy.write_row(row)
                    timings.load += time.perf_counter() - started
            started = time.perf_counter()
            for _, sql in indexes:
                cur.execute(sql)
            cur.execute("SELECT setval(pg_get_serial_sequence('tasks', 'id'), max(id)) FROM tasks")
            for statement in RECOUNT_TABS:
                cur.execute(statement)
            cur.execute("SET session_replication_role = DEFAULT")
            timings.index = time.perf_counter() - started
        pg.commit()
        started = time.perf_counter()
        pg.autocommit = True
        with pg.cursor() as cur:
            # A database that has been in use has been vacuumed: the visibility map lets
            # counts use index-only scans, as they would in production. The tasks table is
            # vacuumed again by name: the database-wide `VACUUM ANALYZE` right after the load
            # left its visibility map empty here (PostgreSQL 15), so every index-only scan
            # read the table too, and the planner priced them out. Checked, not assumed.
            cur.execute("VACUUM ANALYZE")
            cur.execute("VACUUM tasks")
            cur.execute("SELECT relallvisible, relpages FROM pg_class WHERE relname = 'tasks'")
            visible, pages = cur.fetchone() or (0, 0)
            if visible < 0.99 * pages:
                raise RuntimeError(f"tasks: {visible} of {pages} pages all-visible after VACUUM")
        pg.autocommit = False
        timings.analyze = time.perf_counter() - started
    finally:
        raw.close()


def _build(url: str, data_dir: Path, count: int, now: datetime) -> tuple[_Timings, int]:
    db = Database(make_engine(url))
    try:
        organizations = _prepare_schema(db, data_dir)
        timings = _Timings()
        rows = _rows(organizations, count, now, timings)
        if db.is_sqlite:
            dialect = db.engine.dialect
            path = Path(db.engine.url.database or "")
            db.dispose()
            _load_sqlite(path, dialect, rows, timings)
        else:
            _load_postgresql(db, rows, timings)
    finally:
        db.dispose()
    return timings, organizations[0].id


def _prepared(
    url: str, org_id: int, count: int, generated_at: str, timings: _Timings, *, cached: bool
) -> Prepared:
    return Prepared(
        url,
        org_id,
        count,
        generated_at,
        cached,
        round(timings.generate, 2),
        round(timings.load, 2),
        round(timings.index, 2),
        round(timings.analyze, 2),
    )


def prepare_sqlite(count: int, *, rebuild: bool = False) -> Prepared:
    """An SQLite database with `count` tasks, from the cache when a fresh one is there."""
    key = f"tasks-g{GENERATOR_VERSION}-r{head_revision()}-n{count}"
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}.db"
    meta_path = directory / f"{key}.json"
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        age = datetime.now(UTC) - datetime.fromisoformat(meta["generated_at"])
        if age < CACHE_MAX_AGE:
            return Prepared(**{**meta, "url": f"sqlite:///{path}", "cached": True})
    building = directory / f"{key}.building"
    shutil.rmtree(building, ignore_errors=True)
    for stale in (path, meta_path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    building.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    timings, org_id = _build(f"sqlite:///{building / 'surveyor.db'}", building, count, now)
    (building / "surveyor.db").rename(path)
    shutil.rmtree(building, ignore_errors=True)
    prepared = _prepared(f"sqlite:///{path}", org_id, count, now.isoformat(), timings, cached=False)
    meta_path.write_text(json.dumps(asdict(prepared), indent=2))
    return prepared


def prepare_postgresql(url: str, data_dir: Path, count: int) -> Prepared:
    """Load `count` tasks into the empty PostgreSQL database at `url`."""
    now = datetime.now(UTC).replace(microsecond=0)
    timings, org_id = _build(url, data_dir, count, now)
    return _prepared(url, org_id, count, now.isoformat(), timings, cached=False)
