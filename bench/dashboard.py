"""Benchmark of the Dashboard with 50 insights, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.dashboard [--assets N] [--backend sqlite|postgresql|both]
                                        [--repeat R] [--json-out FILE]

One organization holds N assets (default 200,000; two or three open services each) and 50
pinned insights (asset, service and task searches), each with 30 days of hourly counts behind
it (36,000 stored counts). A signed-in browser session asks for `/dashboard` in process (an
httpx2 client on an ASGI transport: session lookup, the reads, the template and the HTML all
count, without a network). In the same run, alternately, two raw SQL peers on the same
database: the same 50 counts counted live with hand-written `SELECT count(*)` statements (what
a page that searched on load would pay at least), and the stored numbers read with
hand-written statements (the floor of any page that shows them). The Query task's refresh of
the 50 insights (`store.queries.count_matches` for each) is timed once beside them.
Goal: the page's p95 within 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import insert, text

from bench._load import ADMIN_EMAIL, ADMIN_PASSWORD, BENCH_TOKEN
from bench._report import p95
from bench.pages import sign_in
from bench.tasks_list import _load_average
from surveyor.console.app import create_app
from surveyor.console.auth import SESSION_COOKIE
from surveyor.console.state import ConsoleSettings
from surveyor.core.fingerprint import address_key
from surveyor.core.queries import QueryKind
from surveyor.store import accounts
from surveyor.store import queries as query_store
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from surveyor.store.schema import asset_outliers, assets, query_counts, services
from surveyor.testing.postgres import throwaway_postgres

DEFAULT_ASSETS = 200_000
INSIGHTS = 50
HISTORY_HOURS = 30 * 24
PAGE_LIMIT_MS = 100.0
PORTS = (
    21,
    22,
    23,
    25,
    53,
    80,
    110,
    139,
    143,
    443,
    445,
    631,
    993,
    3306,
    3389,
    5432,
    5900,
    8080,
    8443,
    9100,
)
OSES = ("Ubuntu Linux", "Debian Linux", "Windows Server 2022", "FreeBSD", "Cisco IOS")
BATCH = 10_000


@dataclass(frozen=True)
class Insight:
    """A pinned search and the hand-written SQL that counts the same thing (`:org` bound)."""

    name: str
    kind: QueryKind
    search: str
    sql: str


def insights() -> list[Insight]:
    """50 searches: per port, its assets and its services; per OS, its assets; and a few task
    and combined searches."""
    found: list[Insight] = []
    for port in PORTS:
        found.append(
            Insight(
                f"assets with {port}",
                QueryKind.ASSET,
                f"port:{port}",
                "SELECT count(*) FROM assets a WHERE a.organization_id = :org AND a.id IN "
                f"(SELECT s.asset_id FROM services s WHERE s.port = {port})",
            )
        )
        found.append(
            Insight(
                f"services on {port}",
                QueryKind.SERVICE,
                f"port:{port}",
                "SELECT count(*) FROM services s JOIN assets a ON a.id = s.asset_id "
                f"WHERE a.organization_id = :org AND s.port = {port}",
            )
        )
    for name in OSES:
        word = name.split()[0]
        found.append(
            Insight(
                f"{word} hosts",
                QueryKind.ASSET,
                f"os:{word}",
                "SELECT count(*) FROM assets a WHERE a.organization_id = :org AND "
                f"lower(a.os) LIKE '%{word.lower()}%'",
            )
        )
    found.append(
        Insight(
            "offline assets",
            QueryKind.ASSET,
            "alive:false",
            "SELECT count(*) FROM assets a WHERE a.organization_id = :org AND a.alive = false",
        )
    )
    found.append(
        Insight(
            "unusual assets",
            QueryKind.ASSET,
            "outlier:>=60",
            "SELECT count(*) FROM asset_outliers o WHERE o.organization_id = :org "
            "AND o.score >= 60",
        )
    )
    found.append(
        Insight(
            "failed tasks",
            QueryKind.TASK,
            "status:canceled OR status:stopped",
            "SELECT count(*) FROM tasks t WHERE t.organization_id = :org AND t.tab IS NOT NULL "
            "AND t.hidden = false AND t.status IN ('canceled', 'stopped')",
        )
    )
    found.append(
        Insight(
            "query tasks",
            QueryKind.TASK,
            "type:query",
            "SELECT count(*) FROM tasks t WHERE t.organization_id = :org AND t.tab IS NOT NULL "
            "AND t.hidden = false AND t.type = 'query'",
        )
    )
    found.append(
        Insight(
            "Linux web servers",
            QueryKind.ASSET,
            "os:linux port:443",
            "SELECT count(*) FROM assets a WHERE a.organization_id = :org AND "
            "lower(a.os) LIKE '%linux%' AND a.id IN "
            "(SELECT s.asset_id FROM services s WHERE s.port = 443)",
        )
    )
    assert len(found) == INSIGHTS, len(found)
    return found


def load_inventory(db: Database, organization_id: int, site_id: int, count: int) -> None:
    """`count` assets with two or three open services each, in batches."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    next_id = 1
    for start in range(0, count, BATCH):
        asset_rows: list[dict[str, Any]] = []
        service_rows: list[dict[str, Any]] = []
        score_rows: list[dict[str, Any]] = []
        for index in range(start, min(count, start + BATCH)):
            address = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
            asset_rows.append(
                {
                    "id": next_id,
                    "organization_id": organization_id,
                    "site_id": site_id,
                    "address": address,
                    "address_key": address_key(address),
                    "addresses": [address],
                    "hostnames": [],
                    "os": rng.choice(OSES),
                    "alive": rng.random() > 0.1,
                    "service_count": 0,
                    "state_hash": "",
                    "first_seen": now,
                    "last_seen": now,
                    "changed_at": now,
                }
            )
            for port in rng.sample(PORTS, rng.choice((2, 3))):
                service_rows.append(
                    {
                        "asset_id": next_id,
                        "proto": "tcp",
                        "port": port,
                        "first_seen": now,
                        "changed_at": now,
                    }
                )
            score_rows.append(
                {
                    "asset_id": next_id,
                    "organization_id": organization_id,
                    "score": rng.randrange(101),
                    "reasons": [],
                }
            )
            next_id += 1
        with db.write() as conn:
            conn.execute(insert(assets), asset_rows)
            conn.execute(insert(services), service_rows)
            conn.execute(insert(asset_outliers), score_rows)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")


def save_insights(db: Database, organization_id: int, found: list[Insight]) -> list[int]:
    """Pin the 50 searches, each with 30 days of hourly counts ending in its real count."""
    now = datetime.now(UTC)
    rng = random.Random(11)
    ids = []
    with db.write() as conn:
        for insight in found:
            saved = query_store.create_query(
                conn,
                organization_id,
                {
                    "name": insight.name,
                    "kind": insight.kind.value,
                    "search": insight.search,
                    "pinned": True,
                    "threshold": rng.choice((None, 100, 10_000)),
                },
                now=now,
            )
            ids.append(saved.id)
    refreshed_at = now
    with db.write() as conn:
        for query_id, insight in zip(ids, found, strict=True):
            real = query_store.count_matches(
                conn, organization_id, insight.kind, insight.search, now=now
            )
            conn.execute(
                insert(query_counts),
                [
                    {
                        "query_id": query_id,
                        "counted_at": refreshed_at - timedelta(hours=hours),
                        "count": max(0, real + rng.randint(-50, 50)),
                        "task_id": None,
                    }
                    for hours in range(HISTORY_HOURS, 0, -1)
                ],
            )
            query_store.record_count(conn, query_id, real, counted_at=refreshed_at, task_id=None)
        conn.exec_driver_sql("ANALYZE")
    return ids


def time_refresh(db: Database, organization_id: int, found: list[Insight]) -> float:
    """Seconds the Query task's counting of the 50 insights takes (count_matches each)."""
    started = time.perf_counter()
    with db.read() as conn:
        for insight in found:
            query_store.count_matches(
                conn, organization_id, insight.kind, insight.search, now=datetime.now(UTC)
            )
    return time.perf_counter() - started


def live_counts(db: Database, organization_id: int, found: list[Insight]) -> Callable[[], Any]:
    statements = [text(insight.sql) for insight in found]

    def run() -> list[int]:
        with db.read() as conn:
            return [
                int(conn.execute(statement, {"org": organization_id}).scalar_one())
                for statement in statements
            ]

    return run


def stored_counts(db: Database, organization_id: int, ids: list[int]) -> Callable[[], Any]:
    listing = text(
        "SELECT id, name, threshold, last_count, last_counted_at FROM saved_queries "
        "WHERE organization_id = :org AND pinned = true ORDER BY id"
    )
    trend = text(
        "SELECT count FROM query_counts WHERE query_id = :id ORDER BY counted_at DESC LIMIT 24"
    )
    day_ago = text(
        "SELECT count FROM query_counts WHERE query_id = :id AND counted_at <= :day "
        "ORDER BY counted_at DESC LIMIT 1"
    )

    def run() -> int:
        day = datetime.now(UTC) - timedelta(days=1)
        with db.read() as conn:
            rows = conn.execute(listing, {"org": organization_id}).all()
            read = 0
            for row in rows:
                read += len(conn.execute(trend, {"id": row.id}).all())
                conn.execute(day_ago, {"id": row.id, "day": day}).first()
            return read

    return run


@dataclass(frozen=True)
class Result:
    backend: str
    assets: int
    insights: int
    page_bytes: int
    page_p50: float
    page_p95: float
    live_p50: float
    live_p95: float
    stored_p50: float
    stored_p95: float
    refresh_s: float
    met: bool


@contextmanager
def _bench_environment() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in _BOOTSTRAP}
    os.environ.update(_BOOTSTRAP)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_BOOTSTRAP = {
    "SURVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
    "SURVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "SURVEYOR_BOOTSTRAP_TOKEN": BENCH_TOKEN,
}


def _ms(samples: list[float]) -> tuple[float, float]:
    return round(statistics.median(samples) * 1000, 2), round(p95(samples) * 1000, 2)


#: What puts the inventory into the organization's default site: (db, organization, site, N).
Fill = Callable[[Database, int, int, int], None]


async def measure(
    url: str,
    data_dir: Path,
    args: argparse.Namespace,
    backend: str,
    fill: Fill | None = None,
) -> Result:
    """Load the inventory (`fill`, default `load_inventory`; bench.system_tasks passes one
    that leaves its own in place), pin the 50 insights and time the page."""
    engine = make_engine(url)
    upgrade(engine)
    db = Database(engine)
    found = insights()
    try:
        settings = ConsoleSettings(data_dir=data_dir, database_url=url)
        app = create_app(settings, database=db)
        transport = httpx2.ASGITransport(app=app)
        base = "http://surveyor.bench"
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(transport=transport, base_url=base) as anonymous,
        ):
            with db.read() as conn:
                user = accounts.find_user_by_email(conn, ADMIN_EMAIL)
                assert user is not None
                organization_id = accounts.first_membership(conn, user["id"])
                assert organization_id is not None
                site_id = accounts.default_site_id(conn, organization_id)
                assert site_id is not None
            print(f"{backend}: loading {args.assets:,} assets...", file=sys.stderr, flush=True)
            (fill or load_inventory)(db, organization_id, site_id, args.assets)
            ids = save_insights(db, organization_id, found)
            refresh = time_refresh(db, organization_id, found)
            session = await sign_in(anonymous)
            async with httpx2.AsyncClient(
                transport=transport,
                base_url=base,
                headers={"Cookie": f"{SESSION_COOKIE}={session}"},
            ) as pages:
                live = live_counts(db, organization_id, found)
                stored = stored_counts(db, organization_id, ids)
                page_s: list[float] = []
                live_s: list[float] = []
                stored_s: list[float] = []
                size = 0
                gc.collect()
                for attempt in range(args.warmup + args.repeat):
                    started = time.perf_counter()
                    answer = await pages.get("/dashboard")
                    page_elapsed = time.perf_counter() - started
                    if answer.status_code != 200 or answer.text.count("data-insight=") != INSIGHTS:
                        raise SystemExit(f"/dashboard: {answer.status_code} {answer.text[:300]}")
                    size = len(answer.content)
                    started = time.perf_counter()
                    live()
                    live_elapsed = time.perf_counter() - started
                    started = time.perf_counter()
                    stored()
                    stored_elapsed = time.perf_counter() - started
                    if attempt >= args.warmup:
                        page_s.append(page_elapsed)
                        live_s.append(live_elapsed)
                        stored_s.append(stored_elapsed)
    finally:
        db.dispose()
    page50, page95 = _ms(page_s)
    live50, live95 = _ms(live_s)
    stored50, stored95 = _ms(stored_s)
    return Result(
        backend,
        args.assets,
        INSIGHTS,
        size,
        page50,
        page95,
        live50,
        live95,
        stored50,
        stored95,
        round(refresh, 3),
        page95 <= PAGE_LIMIT_MS,
    )


def run_backend(name: str, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="surveyor-bench-dashboard-") as data_dir:
        if name == "sqlite":
            url = f"sqlite:///{Path(data_dir) / 'surveyor.db'}"
            with _bench_environment():
                return asyncio.run(measure(url, Path(data_dir), args, name))
        with throwaway_postgres() as url, _bench_environment():
            return asyncio.run(measure(url, Path(data_dir), args, name))


def format_results(results: list[Result], repeat: int) -> str:
    lines = [
        f"\nThe Dashboard with {INSIGHTS} insights, {repeat} repetitions, ms ({_load_average()})",
        "| backend | assets | KiB | page p50 | page p95 | live SQL counts p50 | p95 "
        "| page/live p95 | stored-read SQL p50 | p95 | page/stored p95 | refresh of 50 (s) "
        "| ≤100 ms p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.assets:,} | {r.page_bytes / 1024:.0f} | {r.page_p50:.1f} "
            f"| {r.page_p95:.1f} | {r.live_p50:.1f} | {r.live_p95:.1f} "
            f"| {r.page_p95 / r.live_p95:.3f}x | {r.stored_p50:.1f} | {r.stored_p95:.1f} "
            f"| {r.page_p95 / r.stored_p95:.1f}x | {r.refresh_s:.2f} | {'yes' if r.met else 'NO'} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--assets", type=int, default=DEFAULT_ASSETS)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=50, help="timed repetitions")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.assets < 100 or args.repeat < 1 or args.warmup < 0:
        parser.error("--assets must be at least 100, --repeat at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    names = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [run_backend(name, args) for name in names]
    print(format_results(results, args.repeat))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
