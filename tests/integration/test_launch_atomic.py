"""Assignment is atomic: explorers claiming work at the same time, each in its own thread
with its own database connection (as several consoles would), never get one task twice,
and a hosted zone never runs more scans than its slots."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.service import launch
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from tests.support.explorers import new_explorer, new_scan, new_site, new_zone, utcnow

CLAIMERS = 6
TASKS = 60


def run_together(work: Callable[[int], None], count: int) -> None:
    """Start `count` threads at the same moment and wait for all; re-raise any failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures


def test_concurrent_claimers_never_hand_out_one_task_twice(db: Database) -> None:
    with db.write() as conn:
        org = accounts.create_organization(conn, "Race")
        site = new_site(conn, org["id"])
        explorers = [new_explorer(conn, org["id"]) for _ in range(CLAIMERS)]
        for _ in range(TASKS):
            new_scan(conn, org["id"], site["id"])
    handed_out: list[tuple[int, int]] = []
    lock = threading.Lock()

    def claim_until_empty(index: int) -> None:
        explorer_id = explorers[index]["id"]
        while True:
            with db.write() as conn:
                task = launch.claim_task(conn, explorer_id, now=utcnow())
            if task is None:
                return
            with lock:
                handed_out.append((task.id, explorer_id))
            with db.write() as conn:  # done: the explorer is idle again
                task_store.transition(conn, org["id"], task.id, TaskStatus.CANCELED, actor="test")

    run_together(claim_until_empty, CLAIMERS)

    times = Counter(task_id for task_id, _ in handed_out)
    assert len(times) == TASKS
    assert set(times.values()) == {1}


def test_a_zone_never_runs_more_scans_than_its_slots_under_concurrent_claims(
    db: Database,
) -> None:
    with db.write() as conn:
        org = accounts.create_organization(conn, "Zone race")
        site = new_site(conn, org["id"])
        zone = new_zone(conn, org["id"], max_concurrent=2)
        members = [new_explorer(conn, org["id"], zone_id=zone["id"]) for _ in range(CLAIMERS)]
        for _ in range(10):
            new_scan(conn, org["id"], site["id"], zone_id=zone["id"])
    launched: list[Task] = []
    lock = threading.Lock()

    def claim_once(index: int) -> None:
        with db.write() as conn:
            task = launch.claim_task(conn, members[index]["id"], now=utcnow())
        if task is not None:
            with lock:
                launched.append(task)

    run_together(claim_once, CLAIMERS)

    assert len(launched) == 2
    assert len({task.explorer_id for task in launched}) == 2
