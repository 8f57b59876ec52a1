"""Benchmark of processing: a scan merged into a large inventory, against a raw bulk upsert.

    .venv/bin/python -m bench.processing [--hosts 65536] [--inventory 1000000]
                                         [--backend sqlite|postgresql|both] [--json-out FILE]

A 65,536-host scan (8 services per host) is merged by the product into a site of 1,000,000
assets: `surveyor worker` processes, measured from the task's claim to `processed` (reading
and checking the file, matching, comparing, writing, marking offline, the change report).
In the same run and database, the raw baseline upserts the same rows with hand-written SQL.
On PostgreSQL, one worker merges the scan into one site, then two workers merge it into two
sites at once. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench._processing_data import (
    SCAN_FINISHED,
    SEEN_BEFORE,
    expected_summary,
    make_plan,
    scan_file_lines,
    scan_records,
)
from bench._processing_load import (
    MAIN,
    ONE,
    RAW,
    TWO_A,
    TWO_B,
    World,
    load_postgresql,
    prepare_sqlite,
    raw_rows,
)
from bench._processing_raw import run_raw
from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database, make_engine
from surveyor.store.schema import asset_addresses, assets, services, tasks
from surveyor.store.taskdata import sha256_of, task_data_path
from surveyor.testing.postgres import throwaway_postgres

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
RAW_RATIO_GOAL = 0.3
TWO_WORKERS_GOAL = 1.6
WORKER_START_SECONDS = 60.0
PROCESSING_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Measurement:
    backend: str
    case: str
    hosts: int
    rows: int
    seconds: float
    cpu_seconds: float | None = None

    @property
    def hosts_per_second(self) -> float:
        return self.hosts / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def write_scan(data_dir: Path, task_ids: list[int], content: bytes) -> None:
    for task_id in task_ids:
        path = task_data_path(data_dir, task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def warm(db: Database, site_ids: list[int]) -> None:
    """Read what the runs will read, so that no measurement pays for a cold cache alone."""
    with db.read() as conn:
        for site_id in site_ids:
            conn.execute(
                select(func.count(), func.max(assets.c.state_hash)).where(
                    assets.c.site_id == site_id
                )
            ).one()
            conn.execute(
                select(func.count(), func.max(asset_addresses.c.address)).where(
                    asset_addresses.c.site_id == site_id
                )
            ).one()
            in_site = select(assets.c.id).where(assets.c.site_id == site_id)
            conn.execute(
                select(func.count(), func.max(services.c.banner)).where(
                    services.c.asset_id.in_(in_site)
                )
            ).one()


@contextmanager
def workers(url: str, data_dir: Path, count: int, log: Path) -> Iterator[None]:
    """`count` idle `surveyor worker` processes, stopped (SIGTERM) afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYOR_")} | {
        "SURVEYOR_DATABASE_URL": url,
        "SURVEYOR_DATA": str(data_dir),
        "SURVEYOR_LOG_LEVEL": "info",
        "SURVEYOR_PROCESSING_POLL": "0.2",
    }
    with log.open("ab") as output:
        processes = [
            subprocess.Popen([SURVEYOR, "worker"], env=env, stdout=output, stderr=subprocess.STDOUT)
            for _ in range(count)
        ]
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while log.read_text(errors="replace").count("processing worker") < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"workers did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)


def run_product(
    db: Database,
    url: str,
    data_dir: Path,
    world: World,
    sites: list[str],
    content: bytes,
    log: Path,
) -> tuple[float, float, list[dict[str, Any]]]:
    """Queue the scan for `sites` at once with one idle worker each; wall seconds from the
    first claim to the last `processed`, the workers' CPU seconds, and the tasks."""
    task_ids = [world.task_ids[name] for name in sites]
    sha256 = sha256_of(task_data_path(data_dir, task_ids[0]))
    # The scope is the one the console stored for the task, as for a scan's: the import
    # task is held to the targets of its scan, so that silent assets in them go offline.
    config = json.loads(gzip.decompress(content).split(b"\n", 1)[0])
    scope = {"targets": config["targets"], "excludes": config.get("excludes") or ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with workers(url, data_dir, len(sites), log):
        with db.write() as conn:
            for task_id in task_ids:
                task_store.transition(
                    conn,
                    world.organization_id,
                    task_id,
                    TaskStatus.PROCESSING_QUEUED,
                    actor="bench",
                    changes={"size_data": len(content), "data_sha256": sha256, "params": scope},
                )
        deadline = time.monotonic() + PROCESSING_TIMEOUT_SECONDS
        while True:
            with db.read() as conn:
                rows = [
                    dict(row)
                    for row in conn.execute(select(tasks).where(tasks.c.id.in_(task_ids)))
                    .mappings()
                    .all()
                ]
            if all(row["status"] in (TaskStatus.PROCESSED, TaskStatus.CANCELED) for row in rows):
                break
            if time.monotonic() > deadline:
                raise SystemExit("processing did not finish in time")
            time.sleep(0.2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for row in rows:
        if row["status"] != TaskStatus.PROCESSED:
            raise SystemExit(f"task {row['id']} ended {row['status']}: {row['error']}")
    started = min(row["data_processing_started_at"] for row in rows)
    ended = max(row["data_processing_ended_at"] for row in rows)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return (ended - started).total_seconds(), cpu, rows


def scan_rows(content: bytes) -> int:
    """Rows a scan's answers make: an asset, its addresses, its names, its services."""
    rows = 0
    for line in gzip.decompress(content).splitlines():
        record = json.loads(line)
        if record["type"] == "host":
            rows += 1 + len(record["addresses"]) + len(record["hostnames"])
            rows += len(record["services"])
    return rows


def measure(
    backend: str, db: Database, url: str, data_dir: Path, world: World, plan: Any
) -> list[Measurement]:
    content = gzip.compress(b"".join(scan_file_lines(plan)), compresslevel=6)
    sites = [MAIN] + ([ONE, TWO_A, TWO_B] if backend == "postgresql" else [])
    write_scan(data_dir, [world.task_ids[name] for name in sites], content)
    rows = scan_rows(content)
    log = data_dir / "workers.log"
    warm(db, [world.site_ids[name] for name in (MAIN, RAW, ONE, TWO_A, TWO_B)])
    results = []

    seconds, cpu, done = run_product(db, url, data_dir, world, [MAIN], content, log)
    summary = done[0]["change_summary"]
    expected = expected_summary(plan)
    if summary != expected:
        raise SystemExit(f"the product's change summary {summary} is not the expected {expected}")
    results.append(Measurement(backend, "product, 1 worker", plan.hosts, rows, seconds, cpu))
    print(f"  product: {seconds:.1f} s, summary {summary}", file=sys.stderr)

    with db.read() as conn:
        known = conn.execute(
            select(assets.c.id, assets.c.address, assets.c.mac).where(
                assets.c.site_id == world.site_ids[RAW]
            )
        ).all()
    asset_ids = {row.address: row.id for row in known}
    asset_ids.update({f"mac:{row.mac}": row.id for row in known if row.mac})
    upserts = raw_rows(
        scan_records(plan),
        asset_ids,
        organization_id=world.organization_id,
        site_id=world.site_ids[RAW],
        first_new_id=world.max_asset_id + 10_000_000,
        seen=SCAN_FINISHED,
        first_seen=SEEN_BEFORE,
    )
    assert upserts.count == rows, (upserts.count, rows)
    raw_seconds = run_raw(db, upserts)
    results.append(
        Measurement(backend, "raw upsert, hand-written SQL", plan.hosts, rows, raw_seconds)
    )
    print(f"  raw: {raw_seconds:.1f} s", file=sys.stderr)

    if backend == "postgresql":
        seconds, cpu, _ = run_product(db, url, data_dir, world, [ONE], content, log)
        results.append(Measurement(backend, "1 worker, 1 site", plan.hosts, rows, seconds, cpu))
        print(f"  one worker: {seconds:.1f} s", file=sys.stderr)
        seconds, cpu, _ = run_product(db, url, data_dir, world, [TWO_A, TWO_B], content, log)
        results.append(
            Measurement(backend, "2 workers, 2 sites", 2 * plan.hosts, 2 * rows, seconds, cpu)
        )
        print(f"  two workers: {seconds:.1f} s", file=sys.stderr)
    return results


def format_table(results: list[Measurement], title: str) -> str:
    header = (
        f"{'backend':<11} {'case':<30} {'hosts':>8} {'rows':>9} {'seconds':>8} "
        f"{'hosts/s':>8} {'rows/s':>9} {'CPU s':>7}"
    )
    lines = [title, header, "-" * len(header)]
    for m in results:
        cpu = f"{m.cpu_seconds:>7.1f}" if m.cpu_seconds is not None else f"{'':>7}"
        lines.append(
            f"{m.backend:<11} {m.case:<30} {m.hosts:>8,} {m.rows:>9,} {m.seconds:>8.1f} "
            f"{m.hosts_per_second:>8,.0f} {m.rows_per_second:>9,.0f} {cpu}"
        )
    lines.append("")
    for backend in dict.fromkeys(m.backend for m in results):
        mine = {m.case: m for m in results if m.backend == backend}
        product = mine["product, 1 worker"]
        raw = mine["raw upsert, hand-written SQL"]
        ratio = product.rows_per_second / raw.rows_per_second
        mark = "✓" if ratio >= RAW_RATIO_GOAL else "✗"
        lines.append(
            f"{backend}: product / raw rows/s = {ratio:.2f}x  {mark} goal >= {RAW_RATIO_GOAL}x"
        )
        if "2 workers, 2 sites" in mine:
            scale = (
                mine["2 workers, 2 sites"].hosts_per_second
                / mine["1 worker, 1 site"].hosts_per_second
            )
            mark = "✓" if scale >= TWO_WORKERS_GOAL else "✗"
            lines.append(
                f"{backend}: 2 workers / 1 worker hosts/s = {scale:.2f}x  {mark} "
                f"goal >= {TWO_WORKERS_GOAL}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=65_536)
    parser.add_argument("--inventory", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached database")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    plan = make_plan(args.inventory, args.hosts)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[Measurement] = []
    notes = []
    with tempfile.TemporaryDirectory(prefix="surveyor-bench-processing-") as temporary:
        work = Path(temporary)
        print(f"preparing the inventory ({args.inventory:,} assets)...", file=sys.stderr)
        pristine, world = prepare_sqlite(plan, rebuild=args.rebuild)
        notes.append(
            "inventory "
            + ("from cache" if world.cached else f"built in {world.build_seconds:.0f} s")
        )
        for backend in backends:
            data_dir = work / f"data-{backend}"
            data_dir.mkdir()
            print(f"{backend}:", file=sys.stderr)
            if backend == "sqlite":
                copy = work / "surveyor.db"
                shutil.copyfile(pristine, copy)
                url = f"sqlite:///{copy}"
                db = Database(make_engine(url))
                results += measure(backend, db, url, data_dir, world, plan)
                db.dispose()
                continue
            with throwaway_postgres() as url:
                started = time.perf_counter()
                load_postgresql(url, pristine)
                notes.append(f"PostgreSQL loaded in {time.perf_counter() - started:.0f} s")
                db = Database(make_engine(url))
                results += measure(backend, db, url, data_dir, world, plan)
                db.dispose()
    load = os.getloadavg()[0]
    title = (
        f"Processing: a {args.hosts:,}-host scan (8 services per host) into a "
        f"{args.inventory:,}-asset site; {', '.join(notes)}; load average {load:.1f} "
        f"on {os.cpu_count()} CPUs; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(format_table(results, title))
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {"title": title, "results": [asdict(m) for m in results]}, indent=2, default=str
            )
        )


if __name__ == "__main__":
    main()
