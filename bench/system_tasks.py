"""Benchmark of the system tasks on one large site: the Outlier calculation (against pandas),
the Organization overview report, and the Dashboard with 50 insights; SQLite and PostgreSQL.

    .venv/bin/python -m bench.system_tasks [--assets N] [--backend sqlite|postgresql|both]
                                           [--repeat R] [--report-repeat R] [--no-check]
                                           [--outliers-only] [--keep-scores]
                                           [--json-out FILE]

The first organization (bootstrapped as on a first start) gets N generated assets (default
1,000,000) in its one site, with about 2.4 open services each: OS texts, recorded device types
and name patterns in skewed shares, port sets by kind of host, products and TLS issuers, and a
few planted rarities (telnet on Linux servers, a private TLS issuer, an odd name). The rows are
bulk loaded (SQLite `executemany` with the inventory indexes dropped and rebuilt after,
PostgreSQL `COPY`), then `ANALYZE` / `VACUUM ANALYZE`.

- **Outlier calculation**: a child process queues one for the site, as processing does
  (`store.outliers.request_outlier_calculation`), and a real processing worker claims and runs
  it (`Worker.drain`): one read of the site, every asset scored and the scores and reasons
  that changed written. Each calculation starts with no scores in the site (they are deleted
  before it, untimed), so it writes every asset's, as a site's first calculation does;
  `--keep-scores` measures calculations after the first instead, which write only what
  changed (nothing, here). Timed from the request to `processed`; its peak RSS is the
  child's VmHWM. The peer, alternately in another child on the same database: plain pandas,
  `read_sql` of the same asset and open-service columns, then the same per-feature
  frequencies with `value_counts` / `groupby` (OS family, device type, port, OS family x
  port, port set, product, TLS issuer, name pattern). Unless `--no-check`, the outlier
  child then counts the features the product's way (its read and `SiteProfiles.counts`
  alone) and every frequency must equal pandas'.
  Goals: ≤ 1.5x pandas' wall time, peak ≤ 1 GB.
- **Organization overview**: `bench.reports`' measurement on this database: a refresh queued
  and computed by a real worker, `--report-repeat` times, beside its two GROUP BY statements
  alone. Goal: ≤ 10 s.
- **Dashboard**: `bench.dashboard`'s measurement on this database (50 pinned insights with 30
  days of hourly counts; `/dashboard` in process, beside raw SQL). Goal: p95 ≤ 100 ms.

Every figure is printed with the load average it was measured under, and each run of the
Outlier calculation and of pandas on its own line as well (wall and CPU seconds: on a shared
machine the CPU seconds of the two children say what the wall time cannot). `--outliers-only`
leaves out the overview and the Dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, select, text

from bench import dashboard, reports
from bench._load import bootstrap_environment
from surveyor.core.fingerprint import address_key
from surveyor.store import accounts
from surveyor.store.bootstrap import bootstrap_if_empty
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from surveyor.store.schema import asset_outliers, assets, services
from surveyor.testing.postgres import throwaway_postgres

DEFAULT_ASSETS = 1_000_000
RATIO_GOAL = 1.5
PEAK_GOAL_MB = 1024.0
ROOT = Path(__file__).resolve().parents[1]
BATCH = 20_000

# --- the inventory -----------------------------------------------------------------------------

#: Kinds of host: (weight, OS texts, recorded device type, name prefix, (port, name, product)
#: each open with its probability).
KINDS: tuple[tuple[float, tuple[str, ...], str, str, tuple[tuple[int, str, str, float], ...]], ...]
KINDS = (
    (
        0.45,
        ("Windows 11", "Windows 10"),
        "",
        "ws",
        ((135, "msrpc", "Microsoft Windows RPC", 0.9), (445, "microsoft-ds", "", 0.9)),
    ),
    (
        0.2,
        ("Ubuntu Linux 22.04", "Debian Linux 12", "Red Hat Enterprise Linux 9"),
        "",
        "srv",
        (
            (22, "ssh", "OpenSSH", 0.97),
            (80, "http", "nginx", 0.5),
            (443, "https", "nginx", 0.5),
            (5432, "postgresql", "PostgreSQL", 0.05),
        ),
    ),
    (
        0.12,
        ("Windows Server 2022", "Windows Server 2019"),
        "",
        "dc",
        (
            (135, "msrpc", "Microsoft Windows RPC", 0.95),
            (445, "microsoft-ds", "", 0.95),
            (3389, "ms-wbt-server", "", 0.8),
            (443, "https", "Microsoft IIS httpd", 0.3),
        ),
    ),
    (
        0.1,
        ("HP LaserJet firmware", "Brother printer"),
        "printer",
        "prn",
        ((80, "http", "", 0.9), (631, "ipp", "CUPS", 0.7), (9100, "jetdirect", "", 0.95)),
    ),
    (
        0.08,
        ("Cisco IOS 15.2", "Juniper JUNOS 21"),
        "router",
        "sw",
        ((22, "ssh", "", 0.9), (161, "snmp", "", 0.0), (443, "https", "", 0.6)),
    ),
    (0.05, ("",), "", "", ((80, "http", "", 0.3),)),
)
ISSUERS = ("CN=Corp Issuing CA 1", "CN=Corp Issuing CA 2", "CN=R3,O=Let's Encrypt")


@dataclass
class Inventory:
    """What was loaded, and how long generating and writing it took."""

    assets: int = 0
    services: int = 0
    seconds: float = 0.0
    planted: dict[str, int] = field(default_factory=dict)


def _rows(
    organization_id: int, site_id: int, count: int, now: datetime, inventory: Inventory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """("assets" | "services", row) for `count` assets and their services, from one seed."""
    rng = random.Random(20_261_206)
    weights = [kind[0] for kind in KINDS]
    planted = inventory.planted
    service_id = 0
    for index in range(count):
        asset_id = index + 1
        _, oses, recorded, prefix, ports = rng.choices(KINDS, weights)[0]
        os_text = rng.choice(oses)
        address = f"127.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
        hostname = f"{prefix}-{rng.randrange(100_000):05d}.corp.example" if prefix else None
        if index % 99_991 == 17:
            hostname = "backup-old-DO-NOT-USE"
            planted["name"] = planted.get("name", 0) + 1
        opened: list[tuple[int, str, str]] = [
            (port, name, product) for port, name, product, share in ports if rng.random() < share
        ]
        if prefix == "srv" and index % 50_021 == 5:
            opened.append((23, "telnet", "BusyBox telnetd"))
            planted["telnet"] = planted.get("telnet", 0) + 1
        asset = {
            "id": asset_id,
            "organization_id": organization_id,
            "site_id": site_id,
            "address": address,
            "address_key": address_key(address),
            "addresses": json.dumps([address]),
            "hostname": hostname,
            "hostnames": json.dumps([hostname] if hostname else []),
            "os": os_text,
            "device_type": recorded,
            "alive": rng.random() > 0.1,
            "service_count": len(opened),
            "state_hash": "",
            "first_seen": now - timedelta(days=rng.random() * 60),
            "last_seen": now,
            "changed_at": now,
        }
        yield "assets", asset
        for port, name, product in opened:
            service_id += 1
            subject = issuer = ""
            if port == 443:
                subject = f"CN={hostname or address}"
                issuer = ISSUERS[0 if rng.random() < 0.7 else 1 if rng.random() < 0.9 else 2]
                if index % 70_001 == 9:
                    issuer = "CN=Unknown Private CA"
                    planted["issuer"] = planted.get("issuer", 0) + 1
                elif index % 1000 == 3:
                    issuer = subject  # self-signed
            yield (
                "services",
                {
                    "id": service_id,
                    "asset_id": asset_id,
                    "proto": "tcp",
                    "port": port,
                    "state": "open",
                    "name": name,
                    "product": product,
                    "tls_subject": subject,
                    "tls_issuer": issuer,
                    "first_seen": now,
                    "changed_at": now,
                },
            )
    inventory.assets = count
    inventory.services = service_id


def _columns(table: Table, provided: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """The columns to insert: those the generator provides plus every NOT NULL one without a
    server default (given its scalar default); the others get the database's default."""
    names = list(provided)
    constants: dict[str, Any] = {}
    for column in table.columns:
        if column.name in provided or column.nullable or column.server_default is not None:
            continue
        default = column.default
        if default is None or not default.is_scalar:
            raise RuntimeError(f"the generator does not know {table.name}.{column.name}")
        constants[column.name] = default.arg  # type: ignore[attr-defined]
        names.append(column.name)
    return names, constants


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # What the product's UTCDateTime binds on SQLite: naive UTC with microseconds.
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
    if isinstance(value, bool):
        return int(value)
    return value


def _table_rows(
    rows: Iterator[tuple[str, dict[str, Any]]], sqlite: bool
) -> tuple[dict[str, list[str]], Iterator[tuple[str, list[Any]]]]:
    first_asset: dict[str, Any] = {}
    first_service: dict[str, Any] = {}
    buffered: list[tuple[str, dict[str, Any]]] = []
    for table, row in rows:
        buffered.append((table, row))
        if table == "assets" and not first_asset:
            first_asset = row
        if table == "services":
            first_service = row
            break
    layouts = {
        "assets": _columns(assets, list(first_asset)),
        "services": _columns(services, list(first_service)),
    }

    def encoded() -> Iterator[tuple[str, list[Any]]]:
        for table, row in (*buffered, *rows):
            names, constants = layouts[table]
            values = [row[name] if name in row else constants[name] for name in names]
            yield table, [_sqlite_value(v) for v in values] if sqlite else values

    return {table: names for table, (names, _) in layouts.items()}, encoded()


def _load_sqlite(path: Path, rows: Iterator[tuple[str, dict[str, Any]]]) -> None:
    names, encoded = _table_rows(rows, sqlite=True)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-524288")
        dropped = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name IN ('assets', 'services') AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in dropped:
            con.execute(f'DROP INDEX "{name}"')
        statements = {
            table: f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
            for table, columns in names.items()
        }
        pending: dict[str, list[list[Any]]] = {table: [] for table in names}
        con.execute("BEGIN")
        for table, row in encoded:
            pending[table].append(row)
            if len(pending[table]) >= BATCH:
                con.executemany(statements[table], pending[table])
                pending[table] = []
        for table, left in pending.items():
            con.executemany(statements[table], left)
        con.execute("COMMIT")
        for _, sql in dropped:
            con.execute(sql)
        con.execute("ANALYZE")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _load_postgresql(db: Database, rows: Iterator[tuple[str, dict[str, Any]]]) -> None:
    names, encoded = _table_rows(rows, sqlite=False)
    raw = db.engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename IN ('assets', 'services') AND indexname NOT LIKE 'pk_%%' "
                "AND indexname NOT LIKE 'uq_%%'"
            )
            dropped = cur.fetchall()
            for name, _ in dropped:
                cur.execute(f'DROP INDEX "{name}"')
            # Assets first, whole, then their services: each COPY streams one table.
            spilled: list[list[Any]] = []
            with cur.copy(f"COPY assets ({', '.join(names['assets'])}) FROM STDIN") as copy:
                for table, row in encoded:
                    if table == "assets":
                        copy.write_row(row)
                    else:
                        spilled.append(row)
            with cur.copy(f"COPY services ({', '.join(names['services'])}) FROM STDIN") as copy:
                for row in spilled:
                    copy.write_row(row)
            del spilled
            for _, sql in dropped:
                cur.execute(sql)
            for table in ("assets", "services"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            cur.execute("SET session_replication_role = DEFAULT")
        pg.commit()
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        pg.autocommit = False
    finally:
        raw.close()


def prepare(url: str, data_dir: Path, count: int) -> tuple[int, int, Inventory]:
    """A migrated, bootstrapped database whose first site holds `count` generated assets:
    (organization id, site id, what was loaded)."""
    db = Database(make_engine(url))
    try:
        upgrade(db.engine)
        with bootstrap_environment():
            bootstrap_if_empty(db, data_dir, now=datetime.now(UTC))
        with db.read() as conn:
            organization_id = accounts.find_organization(conn, "Default")
            assert organization_id is not None
            site_id = accounts.default_site_id(conn, organization_id["id"])
            assert site_id is not None
        inventory = Inventory()
        started = time.perf_counter()
        rows = _rows(organization_id["id"], site_id, count, datetime.now(UTC), inventory)
        if db.is_sqlite:
            db.dispose()
            _load_sqlite(Path(db.engine.url.database or ""), rows)
        else:
            _load_postgresql(db, rows)
        inventory.seconds = time.perf_counter() - started
    finally:
        db.dispose()
    return organization_id["id"], site_id, inventory


# --- the two children ----------------------------------------------------------------------------


def _peak_mb() -> float:
    """This process's VmHWM: the peak of the program exec started, not of its parent."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _product_counts(db: Database, site_id: int) -> dict[str, dict[str, int]]:
    """The product's own counting (store pages, core profiles, their FeatureCounts), as
    JSON."""
    from surveyor.core.outliers import SiteProfiles
    from surveyor.processing.outliers import count_page
    from surveyor.store.outliers import site_asset_facts

    site = SiteProfiles()
    after = 0
    while True:
        with db.read() as conn:
            page = site_asset_facts(conn, site_id, after_id=after, limit=5000)
        if not page:
            break
        count_page(site, page)
        after = page[-1].id
    counts = site.counts()
    found = {
        name: {str(key): int(value) for key, value in getattr(counts, name).items()}
        for name in ("os", "device_type", "port", "port_set", "product", "tls_issuer")
    }
    found["name_pattern"] = {key: int(v) for key, v in counts.name_pattern.items() if key}
    found["os_port"] = {f"{os}|{port}": int(v) for (os, port), v in counts.os_port.items()}
    found["assets"] = {"": counts.assets}
    return found


def outlier_child(request: dict[str, Any]) -> dict[str, Any]:
    """Queue an Outlier calculation of the site and let a real worker run it."""
    from surveyor.core.tasks import TaskStatus
    from surveyor.processing.worker import Worker, WorkerSettings
    from surveyor.store import outliers as outlier_store
    from surveyor.store import tasks as task_store

    db = Database(make_engine(request["url"]))
    before = _rss_mb()
    started = time.perf_counter()
    cpu = time.process_time()
    with db.write() as conn:
        task = outlier_store.request_outlier_calculation(
            conn, request["organization_id"], request["site_id"], now=datetime.now(UTC)
        )
    assert task is not None, "an Outlier calculation of the site was already waiting"
    Worker(db, Path(request["data_dir"]), WorkerSettings(), name="bench-outliers").drain()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = _peak_mb()
    with db.read() as conn:
        done = task_store.get_task(conn, request["organization_id"], task.id)
    if done is None or done.status is not TaskStatus.PROCESSED:
        raise SystemExit(f"the Outlier calculation did not finish: {done}")
    answer: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": peak,
        "rss_before_mb": before,
        "stats": dict(done.stats),
    }
    if request["check"]:
        answer["counts"] = _product_counts(db, request["site_id"])
    db.dispose()
    return answer


def pandas_child(request: dict[str, Any]) -> dict[str, Any]:
    """The same per-feature frequencies with plain pandas, from the same database."""
    import pandas as pd

    from surveyor.core.outliers import SELF_SIGNED, device_type, os_family

    engine = make_engine(request["url"])
    site_id = int(request["site_id"])
    before = _rss_mb()
    started = time.perf_counter()
    cpu = time.process_time()
    with engine.connect() as conn:
        frame = pd.read_sql_query(
            text("SELECT id, os, hostname, device_type FROM assets WHERE site_id = :site"),
            conn,
            params={"site": site_id},
        )
        open_services = pd.read_sql_query(
            text(
                "SELECT s.asset_id, s.proto, s.port, s.product, s.tls_subject, s.tls_issuer "
                "FROM services s JOIN assets a ON a.id = s.asset_id "
                "WHERE a.site_id = :site AND s.state = 'open'"
            ),
            conn,
            params={"site": site_id},
        )
    read_seconds = time.perf_counter() - started
    os_text = frame["os"].fillna("")
    families = {value: os_family(value) for value in os_text.unique()}
    frame["family"] = os_text.map(families)
    pairs = frame[["os", "device_type"]].fillna("").drop_duplicates()
    kinds = {(o, d): device_type(o, d) for o, d in pairs.itertuples(index=False)}
    recorded = frame["device_type"].fillna("")
    frame["kind"] = [kinds[pair] for pair in zip(os_text, recorded, strict=True)]
    names = frame["hostname"].dropna().str.lower()
    names = names.str.replace(r"\b[0-9a-f]{8,}\b", "#", regex=True)
    names = names.str.replace(r"[0-9]+", "#", regex=True)
    names = names[names != ""]

    svc = open_services
    svc["label"] = svc["proto"] + "/" + svc["port"].astype(str)
    ports = svc.drop_duplicates(["asset_id", "label"]).merge(
        frame[["id", "family"]], left_on="asset_id", right_on="id"
    )
    ordered = ports.sort_values(["asset_id", "port", "proto"])
    sets = ordered.groupby("asset_id")["label"].agg(" ".join)
    port_sets = sets.value_counts()
    without = len(frame) - len(sets)
    products = svc.loc[svc["product"] != "", ["asset_id", "product"]]
    products = products.assign(product=products["product"].str.strip().str[:200])
    tls = svc.loc[svc["tls_issuer"] != ""]
    issuer = tls["tls_issuer"].str.strip().str[:300]
    issuer = issuer.where(tls["tls_subject"] != tls["tls_issuer"], SELF_SIGNED)
    issuers = pd.DataFrame({"asset_id": tls["asset_id"], "issuer": issuer})
    found: dict[str, Any] = {
        "os": frame["family"].value_counts(),
        "device_type": frame["kind"].value_counts(),
        "port": ports["label"].value_counts(),
        "os_port": ports.groupby(["family", "label"]).size(),
        "port_set": port_sets,
        "product": products.drop_duplicates()["product"].value_counts(),
        "tls_issuer": issuers.drop_duplicates()["issuer"].value_counts(),
        "name_pattern": names.value_counts(),
    }
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = _peak_mb()
    counts: dict[str, dict[str, int]] = {}
    for name, series in found.items():
        counts[name] = {
            ("|".join(map(str, key)) if isinstance(key, tuple) else str(key)): int(value)
            for key, value in series.items()
        }
    if without:
        counts["port_set"][""] = without
    counts["assets"] = {"": len(frame)}
    engine.dispose()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "read_seconds": read_seconds,
        "peak_mb": peak,
        "rss_before_mb": before,
        "counts": counts,
    }


def _child(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.system_tasks", "--child", kind, json.dumps(request)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=environment,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {kind} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    answer["load"] = _load()
    return answer


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _differences(ours: dict[str, dict[str, int]], theirs: dict[str, dict[str, int]]) -> list[str]:
    wrong = []
    for name in sorted(set(ours) | set(theirs)):
        mine, peer = ours.get(name, {}), theirs.get(name, {})
        if mine != peer:
            keys = sorted(k for k in set(mine) | set(peer) if mine.get(k) != peer.get(k))
            shown = ", ".join(f"{k!r}: {mine.get(k)} vs {peer.get(k)}" for k in keys[:5])
            wrong.append(f"{name}: {len(keys)} values differ ({shown})")
    return wrong


# --- one backend ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    backend: str
    assets: int
    services: int
    load_seconds: float
    outlier_seconds: list[float]
    outlier_peak_mb: float
    outlier_loads: list[str]
    pandas_seconds: list[float]
    pandas_read_seconds: list[float]
    pandas_peak_mb: float
    frequencies_agree: bool | None
    outlier_stats: dict[str, Any]
    overview: dict[str, Any] | None
    overview_load: str
    dashboard: dict[str, Any] | None
    dashboard_load: str
    #: Each run: {"kind", "seconds", "cpu_seconds", "peak_mb", "load"}, in the order run.
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.outlier_seconds) / statistics.median(self.pandas_seconds)


def clear_scores(url: str, site_id: int) -> None:
    """No outlier scores in the site, as before its first calculation (not timed)."""
    db = Database(make_engine(url))
    try:
        with db.write() as conn:
            in_site = select(assets.c.id).where(assets.c.site_id == site_id)
            conn.execute(delete(asset_outliers).where(asset_outliers.c.asset_id.in_(in_site)))
    finally:
        db.dispose()


def run_backend(url: str, data_dir: Path, args: argparse.Namespace, backend: str) -> Outcome:
    print(f"{backend}: loading {args.assets:,} assets...", file=sys.stderr, flush=True)
    organization_id, site_id, inventory = prepare(url, data_dir, args.assets)
    print(
        f"{backend}: {inventory.assets:,} assets, {inventory.services:,} services in "
        f"{inventory.seconds:.1f} s (load {_load()}); planted {inventory.planted}",
        file=sys.stderr,
        flush=True,
    )
    request = {
        "url": url,
        "organization_id": organization_id,
        "site_id": site_id,
        "data_dir": str(data_dir),
        "check": False,
    }
    ours: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for attempt in range(args.repeat):
        last = attempt == args.repeat - 1
        # Alternately first, so both see the same caches.
        order = ("pandas", "outlier") if attempt % 2 == 0 else ("outlier", "pandas")
        for kind in order:
            if kind == "outlier":
                if not args.keep_scores:
                    clear_scores(url, site_id)
                answer = _child("outlier", {**request, "check": args.check and last})
                ours.append(answer)
            else:
                answer = _child("pandas", request)
                peers.append(answer)
            runs.append(
                {
                    "kind": kind,
                    "attempt": attempt + 1,
                    "seconds": round(answer["seconds"], 2),
                    "cpu_seconds": round(answer["cpu_seconds"], 2),
                    "peak_mb": round(answer["peak_mb"], 1),
                    "load": answer["load"],
                }
            )
            written = ""
            if kind == "outlier":
                written = f", {answer['stats'].get('changed', '?')} scores written"
            print(
                f"{backend}: {kind} {answer['seconds']:.1f} s (cpu {answer['cpu_seconds']:.1f} s, "
                f"peak {answer['peak_mb']:.0f} MB{written}, load {answer['load']})",
                file=sys.stderr,
                flush=True,
            )
    agree: bool | None = None
    if args.check:
        wrong = _differences(ours[-1]["counts"], peers[-1]["counts"])
        if wrong:
            raise SystemExit(
                "pandas and the product count different frequencies:\n" + "\n".join(wrong)
            )
        agree = True

    overview: dict[str, Any] | None = None
    page: dict[str, Any] | None = None
    overview_load = dashboard_load = ""
    if not args.outliers_only:
        db = Database(make_engine(url))
        try:
            overview = reports.measure(db, data_dir, organization_id, args.report_repeat)
        finally:
            db.dispose()
        overview_load = _load()
        median = overview["overview_median"]
        print(f"{backend}: overview {median} s", file=sys.stderr, flush=True)

        def leave(_db: Database, _organization: int, _site: int, _count: int) -> None:
            return None

        shown = argparse.Namespace(assets=args.assets, repeat=args.dashboard_repeat, warmup=3)
        with bootstrap_environment():
            measured = asyncio.run(dashboard.measure(url, data_dir, shown, backend, fill=leave))
        page = asdict(measured)
        dashboard_load = _load()
    return Outcome(
        backend=backend,
        assets=inventory.assets,
        services=inventory.services,
        load_seconds=round(inventory.seconds, 1),
        outlier_seconds=[round(o["seconds"], 2) for o in ours],
        outlier_peak_mb=round(max(o["peak_mb"] for o in ours), 1),
        outlier_loads=[o["load"] for o in ours],
        pandas_seconds=[round(p["seconds"], 2) for p in peers],
        pandas_read_seconds=[round(p["read_seconds"], 2) for p in peers],
        pandas_peak_mb=round(max(p["peak_mb"] for p in peers), 1),
        frequencies_agree=agree,
        outlier_stats=ours[-1]["stats"],
        overview=overview,
        overview_load=overview_load,
        dashboard=page,
        dashboard_load=dashboard_load,
        runs=runs,
    )


def format_results(outcomes: list[Outcome]) -> str:
    lines = [
        "",
        "System tasks on one site (loads: 1, 5, 15 min on "
        f"{os.cpu_count()} CPUs, after each measurement)",
    ]
    lines.append(
        "| backend | assets | services | Outlier calculation s | pandas s (read) | ratio "
        "(≤ 1.5x) | outlier peak MB (≤ 1024) | pandas peak MB | same frequencies | load |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        ok_ratio = "✓" if o.ratio <= RATIO_GOAL else "✗"
        ok_peak = "✓" if o.outlier_peak_mb <= PEAK_GOAL_MB else "✗"
        same = {None: "not checked", True: "yes"}.get(o.frequencies_agree, "NO")
        lines.append(
            f"| {o.backend} | {o.assets:,} | {o.services:,} "
            f"| {statistics.median(o.outlier_seconds):.1f} "
            f"| {statistics.median(o.pandas_seconds):.1f} "
            f"({statistics.median(o.pandas_read_seconds):.1f}) | {o.ratio:.2f}x {ok_ratio} "
            f"| {o.outlier_peak_mb:.0f} {ok_peak} | {o.pandas_peak_mb:.0f} | {same} "
            f"| {o.outlier_loads[-1]} |"
        )
    lines.append("")
    lines.append(
        "| backend | run | Outlier calculation s (cpu s) | load | pandas s (cpu s) | load "
        "| ratio | outlier peak MB | pandas peak MB |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        ours = [run for run in o.runs if run["kind"] == "outlier"]
        peers = [run for run in o.runs if run["kind"] == "pandas"]
        for attempt, (mine, peer) in enumerate(zip(ours, peers, strict=True), start=1):
            lines.append(
                f"| {o.backend} | {attempt} | {mine['seconds']:.1f} ({mine['cpu_seconds']:.1f}) "
                f"| {mine['load']} | {peer['seconds']:.1f} ({peer['cpu_seconds']:.1f}) "
                f"| {peer['load']} | {mine['seconds'] / peer['seconds']:.2f}x "
                f"| {mine['peak_mb']:.0f} | {peer['peak_mb']:.0f} |"
            )
    shown = [o for o in outcomes if o.overview is not None and o.dashboard is not None]
    if not shown:
        return "\n".join(lines)
    lines.append("")
    lines.append(
        "| backend | Organization overview median s | worst s (≤ 10) | SQL peer s | load |"
    )
    lines.append("|---|---|---|---|---|")
    for o in shown:
        r = o.overview
        assert r is not None
        lines.append(
            f"| {o.backend} | {r['overview_median']:.2f} | {r['overview_worst']:.2f} "
            f"{'✓' if r['met'] else '✗'} | {r['sql_peer_median']:.2f} | {o.overview_load} |"
        )
    lines.append("")
    lines.append(
        "| backend | Dashboard (50 insights) p50 ms | p95 ms (≤ 100) | live SQL p95 ms "
        "| stored-read SQL p95 ms | load |"
    )
    lines.append("|---|---|---|---|---|---|")
    for o in shown:
        d = o.dashboard
        assert d is not None
        lines.append(
            f"| {o.backend} | {d['page_p50']:.1f} | {d['page_p95']:.1f} "
            f"{'✓' if d['met'] else '✗'} | {d['live_p95']:.1f} | {d['stored_p95']:.1f} "
            f"| {o.dashboard_load} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.system_tasks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--assets", type=int, default=DEFAULT_ASSETS)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Outlier calculations (and pandas runs) each"
    )
    parser.add_argument("--report-repeat", type=int, default=3, help="overview refreshes")
    parser.add_argument("--dashboard-repeat", type=int, default=50, help="page requests")
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip comparing pandas' frequencies with the product's first pass",
    )
    parser.add_argument(
        "--outliers-only",
        action="store_true",
        help="measure the Outlier calculation and pandas alone (no overview, no Dashboard)",
    )
    parser.add_argument(
        "--keep-scores",
        action="store_true",
        help="keep the scores a calculation wrote for the next (by default each starts with "
        "none, so it scores and writes every asset, as a site's first calculation does)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "REQUEST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and (args.assets < 1000 or min(args.repeat, args.report_repeat) < 1):
        parser.error("--assets must be at least 1000, the repeats at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        kind, request = args.child
        run = outlier_child if kind == "outlier" else pandas_child
        print(json.dumps(run(json.loads(request))))
        return
    names = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    outcomes = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="surveyor-bench-system-") as folder:
            data_dir = Path(folder)
            if name == "sqlite":
                url = f"sqlite:///{data_dir / 'surveyor.db'}"
                outcomes.append(run_backend(url, data_dir, args, name))
            else:
                with throwaway_postgres() as url:
                    outcomes.append(run_backend(url, data_dir, args, name))
    print(format_results(outcomes))
    if args.json_out is not None:
        document = [{**asdict(o), "ratio": round(o.ratio, 3)} for o in outcomes]
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
