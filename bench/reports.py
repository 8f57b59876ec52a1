"""The Organization overview report on a large inventory (goal: 10 s at 1,000,000 assets).

    .venv/bin/python -m bench.reports [--assets N] [--backend sqlite|postgresql|both]
                                      [--repeat R] [--json-out FILE]

One organization with one site of N generated assets (OS, device type, online or not, first
seen over the last 60 days) and about 2.5 open services each, written straight into a fresh
migrated database. Each repetition queues an Organization overview refresh and lets a real
processing worker claim and compute it (the `report` processor: grouped counts, the result
built and stored), timed from the queue to `processed`. Beside it, in the same run and on the
same data, the plain SQL peer: the two GROUP BY statements alone, their rows fetched (the
JSON output has each one's time).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from surveyor.core.reports import OVERVIEW
from surveyor.processing.worker import Worker, WorkerSettings
from surveyor.store import accounts
from surveyor.store import reports as report_store
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from surveyor.store.records import create_record
from surveyor.store.schema import assets, services, sites
from surveyor.testing.postgres import throwaway_postgres

GOAL_SECONDS = 10.0
BATCH = 10_000
OSES = (
    ("Ubuntu Linux 22.04", ""),
    ("Windows Server 2022", ""),
    ("Windows 11", ""),
    ("Debian Linux 12", ""),
    ("Cisco IOS 15.2", "router"),
    ("HP LaserJet firmware", "printer"),
    ("VMware ESXi 8", ""),
    ("", ""),
)
PORTS = ((22, "ssh"), (80, "http"), (443, "https"), (445, "microsoft-ds"), (3389, "ms-wbt-server"))


def _asset_rows(
    organization_id: int, site_id: int, count: int, now: datetime
) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(7)
    batch: list[dict[str, Any]] = []
    for index in range(count):
        os, kind = OSES[rng.randrange(len(OSES))]
        a, b, c = (index >> 16) & 255, (index >> 8) & 255, index & 255
        address = f"127.{a}.{b}.{c}"
        seen = now - timedelta(days=rng.random() * 60)
        batch.append(
            {
                "organization_id": organization_id,
                "site_id": site_id,
                "address": address,
                "address_key": f"4{index:032x}",
                "addresses": [address],
                "hostnames": [],
                "os": os,
                "device_type": kind,
                "alive": rng.random() > 0.1,
                "service_count": 0,
                "state_hash": "",
                "first_seen": seen,
                "last_seen": now,
                "changed_at": now,
            }
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fill(db: Database, count: int, now: datetime) -> int:
    with db.write() as conn:
        org = accounts.create_organization(conn, "Bench")
        site = create_record(conn, sites, org["id"], {"name": "Campus", "scope": "127.0.0.0/8"})
    rng = random.Random(11)
    for batch in _asset_rows(org["id"], site["id"], count, now):
        with db.write() as conn:
            first = conn.execute(insert(assets).returning(assets.c.id), batch).scalars().all()
            rows = []
            for asset_id in first:
                for port, name in PORTS:
                    if rng.random() < 0.5:
                        rows.append(
                            {
                                "asset_id": asset_id,
                                "proto": "tcp",
                                "port": port,
                                "state": "open",
                                "name": name,
                                "first_seen": now,
                                "changed_at": now,
                            }
                        )
            conn.execute(insert(services), rows)
    return int(org["id"])


def _peer(db: Database, organization_id: int) -> tuple[float, float]:
    """The plain SQL the overview needs, alone: the assets' GROUP BY and the services' (the
    organization is the only one, so all services are its own); each one's seconds."""
    with db.read() as conn:
        started = time.perf_counter()
        conn.execute(
            select(
                assets.c.site_id, assets.c.os, assets.c.device_type, assets.c.alive, func.count()
            )
            .where(assets.c.organization_id == organization_id)
            .group_by(assets.c.site_id, assets.c.os, assets.c.device_type, assets.c.alive)
        ).all()
        middle = time.perf_counter()
        conn.execute(
            select(services.c.proto, services.c.port, services.c.name, func.count())
            .where(services.c.state == "open")
            .group_by(services.c.proto, services.c.port, services.c.name)
        ).all()
        return middle - started, time.perf_counter() - middle


def _product(db: Database, data_dir: Path, organization_id: int) -> tuple[float, dict[str, Any]]:
    """Queue an overview refresh and let a real worker compute it; the wall time, the task."""
    started = time.perf_counter()
    with db.write() as conn:
        task = report_store.request_refresh(conn, organization_id, OVERVIEW, now=datetime.now(UTC))
    Worker(db, data_dir, WorkerSettings(), name="bench-worker").drain()
    elapsed = time.perf_counter() - started
    with db.read() as conn:
        done = task_store.get_task(conn, organization_id, task.id)
    if done is None or done.status.value != "processed":
        raise SystemExit(f"the overview task did not finish: {done}")
    return elapsed, dict(done.stats)


def run(url: str, count: int, repeat: int) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    db = Database(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    organization_id = _fill(db, count, now)
    load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="surveyor-bench-reports-") as data_dir:
        measured = measure(db, Path(data_dir), organization_id, repeat)
    engine.dispose()
    return {"assets": count, "load_seconds": round(load_seconds, 1), **measured}


def measure(db: Database, data_dir: Path, organization_id: int, repeat: int) -> dict[str, Any]:
    """The overview refreshed `repeat` times by a real worker, and its SQL peer, on the
    organization's inventory as it is (bench.system_tasks calls this on its own)."""
    # The first refresh initializes the report (and its daily template); it is timed too.
    product = []
    stats: dict[str, Any] = {}
    for _ in range(repeat):
        seconds, stats = _product(db, data_dir, organization_id)
        product.append(seconds)
    split = [_peer(db, organization_id) for _ in range(repeat)]
    peer = [assets_part + services_part for assets_part, services_part in split]
    worst = max(product)
    return {
        "backend": db.engine.dialect.name,
        "overview_seconds": [round(s, 3) for s in product],
        "overview_median": round(statistics.median(product), 3),
        "overview_worst": round(worst, 3),
        "sql_peer_median": round(statistics.median(peer), 3),
        "sql_assets_median": round(statistics.median(a for a, _s in split), 3),
        "sql_services_median": round(statistics.median(s for _a, s in split), 3),
        "goal_seconds": GOAL_SECONDS,
        "met": worst <= GOAL_SECONDS,
        "stats": stats,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="surveyor-bench-reports-db-") as folder:
            results.append(run(f"sqlite:///{folder}/bench.db", args.assets, args.repeat))
    if args.backend in ("postgresql", "both"):
        with throwaway_postgres() as url:
            results.append(run(url, args.assets, args.repeat))
    print(f"Organization overview report, {args.assets:,} assets, goal ≤ {GOAL_SECONDS:g} s")
    print(
        f"{'backend':<12}{'load s':>9}{'report median s':>17}{'worst s':>9}{'SQL peer s':>12}  met"
    )
    for result in results:
        print(
            f"{result['backend']:<12}{result['load_seconds']:>9}{result['overview_median']:>17}"
            f"{result['overview_worst']:>9}{result['sql_peer_median']:>12}  "
            f"{'yes' if result['met'] else 'NO'}"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
