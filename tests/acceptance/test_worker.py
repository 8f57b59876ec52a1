"""`surveyor worker` processes on a real PostgreSQL: killed mid-merge, and side by side."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from surveyor.core.tasks import TaskStatus
from surveyor.store.change_bus import ChangeBus
from surveyor.store.engine import Database
from surveyor.store.schema import processing_runs, task_events, tasks
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.inventory_data import (
    comparable,
    host,
    inventory,
    make_place,
    process_all,
    queue_hosts,
    service,
    task,
)

pytestmark = pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)

DEADLINE_SECONDS = 60.0
STARTED = re.compile(r"processing worker \S+ started")


@contextmanager
def worker_process(
    postgres_url: str, data_dir: Path, log: Path, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = clean_environment() | {
        "SURVEYOR_DATABASE_URL": postgres_url,
        "SURVEYOR_DATA": str(data_dir),
        "SURVEYOR_LOG_LEVEL": "info",
        **{f"SURVEYOR_PROCESSING_{key.upper()}": value for key, value in settings.items()},
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [SURVEYOR, "worker"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition: Callable[[], bool], what: str, log: Path, interval: float = 0.02) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text(errors='replace')}")


def records_done(db: Database, task_id: int) -> int:
    with db.read() as conn:
        done = conn.execute(
            select(processing_runs.c.records_done).where(processing_runs.c.task_id == task_id)
        ).scalar_one_or_none()
    return int(done or 0)


def status_of(db: Database, task_id: int) -> str:
    with db.read() as conn:
        return str(conn.execute(select(tasks.c.status).where(tasks.c.id == task_id)).scalar_one())


def test_a_worker_killed_mid_merge_is_replaced_and_the_inventory_comes_out_right(
    db: Database, postgres_url: str, tmp_path: Path
) -> None:
    place, reference = make_place(db), make_place(db, site="Reference")
    hosts = [
        host(f"127.0.{n // 250}.{n % 250 + 1}", services=[service(22), service(80)])
        for n in range(3000)
    ]
    task_id = queue_hosts(db, tmp_path, place, hosts, targets="127.0.0.0/16")
    log = tmp_path / "workers.log"

    with worker_process(postgres_url, tmp_path, log, batch="50", lease="2") as doomed:
        wait_for(lambda: records_done(db, task_id) >= 300, "the first batches", log)
        doomed.kill()  # SIGKILL: no chance to give the task back
        doomed.wait()
    done_at_kill = records_done(db, task_id)
    assert done_at_kill < len(hosts), "the kill should land mid-merge"
    assert status_of(db, task_id) == TaskStatus.PROCESSING

    with worker_process(postgres_url, tmp_path, log, batch="100", lease="2", requeue_every="0.5"):
        wait_for(lambda: status_of(db, task_id) == TaskStatus.PROCESSED, "the takeover", log, 0.1)

    finished = task(db, place, task_id)
    assert finished.change_summary["new"] == len(hosts)
    assert finished.processing_attempts == 2
    with db.read() as conn:
        messages = list(
            conn.execute(
                select(task_events.c.message)
                .where(task_events.c.task_id == task_id)
                .order_by(task_events.c.id)
            ).scalars()
        )
    assert any("lease expired" in message for message in messages)

    queue_hosts(db, tmp_path, reference, hosts, targets="127.0.0.0/16")
    process_all(db, tmp_path)
    assert comparable(inventory(db, place)) == comparable(inventory(db, reference))


def test_two_workers_never_process_the_same_task_or_the_same_site_at_once(
    db: Database, postgres_url: str, tmp_path: Path
) -> None:
    places = [make_place(db, site=f"Site {n}") for n in range(3)]
    queued: dict[int, list[int]] = {}
    for index, place in enumerate(places):
        for run in range(4):
            hosts = [host(f"127.{index}.{run}.{n}", services=[service(22)]) for n in range(1, 101)]
            queued.setdefault(place.site_id, []).append(
                queue_hosts(db, tmp_path, place, hosts, targets=f"127.{index}.{run}.0/24")
            )
    every_task = [task_id for ids in queued.values() for task_id in ids]
    log = tmp_path / "workers.log"

    def all_processed() -> bool:
        with db.read() as conn:
            count = conn.execute(
                select(func.count()).where(
                    tasks.c.id.in_(every_task), tasks.c.status == TaskStatus.PROCESSED.value
                )
            ).scalar_one()
        return int(count) == len(every_task)

    with (
        worker_process(postgres_url, tmp_path, log, batch="20"),
        worker_process(postgres_url, tmp_path, log, batch="20"),
    ):
        wait_for(all_processed, "every task to be processed", log, 0.1)

    with db.read() as conn:
        runs = (
            conn.execute(select(processing_runs).order_by(processing_runs.c.started_at))
            .mappings()
            .all()
        )
        claims = conn.execute(
            select(task_events.c.task_id, func.count())
            .where(
                task_events.c.to_status == TaskStatus.PROCESSING.value,
                # Not the Outlier calculations the scans queued: the workers may stop in one.
                task_events.c.task_id.in_(every_task),
            )
            .group_by(task_events.c.task_id)
        ).all()
        moves = conn.execute(
            select(tasks.c.site_id, task_events.c.task_id, task_events.c.to_status)
            .join(tasks, tasks.c.id == task_events.c.task_id)
            .where(
                or_(
                    task_events.c.to_status == TaskStatus.PROCESSING.value,
                    task_events.c.from_status == TaskStatus.PROCESSING.value,
                )
            )
            .order_by(task_events.c.id)
        ).all()
    assert dict(claims) == dict.fromkeys(every_task, 1)
    for site_id in queued:
        # In the order the database recorded them, a site's claims and releases alternate:
        # no task of the site was claimed while another one was processing.
        in_site = [(task_id, to) for site, task_id, to in moves if site == site_id]
        claimed = in_site[0::2]
        released = in_site[1::2]
        assert [to for _, to in claimed] == [TaskStatus.PROCESSING.value] * len(claimed)
        assert TaskStatus.PROCESSING.value not in [to for _, to in released]
        assert [task_id for task_id, _ in claimed] == [task_id for task_id, _ in released]
    assert len({run["worker"] for run in runs}) == 2, "both workers took part"
    for site_id, ids in queued.items():
        in_site = [run for run in runs if run["site_id"] == site_id]
        assert [run["task_id"] for run in in_site] == ids, "a site's tasks go in queue order"
        for earlier, later in itertools.pairwise(in_site):
            assert earlier["ended_at"] <= later["started_at"], "one task of a site at a time"


def test_a_stopped_worker_gives_its_task_back_for_another_to_finish(
    db: Database, postgres_url: str, tmp_path: Path
) -> None:
    place = make_place(db)
    hosts = [host(f"127.0.{n // 250}.{n % 250 + 1}") for n in range(2000)]
    task_id = queue_hosts(db, tmp_path, place, hosts, targets="127.0.0.0/16")
    log = tmp_path / "workers.log"
    with worker_process(postgres_url, tmp_path, log, batch="25") as first:
        wait_for(lambda: records_done(db, task_id) >= 100, "the first batches", log)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    assert status_of(db, task_id) == TaskStatus.PROCESSING_QUEUED
    assert 0 < records_done(db, task_id) < len(hosts)
    with worker_process(postgres_url, tmp_path, log, batch="500"):
        wait_for(lambda: status_of(db, task_id) == TaskStatus.PROCESSED, "the second worker", log)
    finished = task(db, place, task_id)
    assert finished.change_summary["new"] == len(hosts)
    assert finished.processing_attempts == 1
    assert os.path.exists(tmp_path / "tasks" / f"{task_id}.jsonl.gz")


def test_a_worker_process_starts_what_another_process_queues_without_waiting_to_poll(
    db: Database, postgres_url: str, tmp_path: Path
) -> None:
    place = make_place(db)
    log = tmp_path / "workers.log"
    # This process publishes its task changes on the change bus, as a console does.
    changes = ChangeBus()
    changes.open(db)
    try:
        # Left to polling, the worker would look at the queue again in ten minutes.
        with worker_process(postgres_url, tmp_path, log, poll="600"):
            wait_for(lambda: STARTED.search(log.read_text()) is not None, "the worker", log)
            task_id = queue_hosts(db, tmp_path, place, [host("127.0.0.1")])
            wait_for(lambda: status_of(db, task_id) == TaskStatus.PROCESSED, "the processing", log)
    finally:
        changes.close()
