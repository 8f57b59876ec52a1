"""The processing queue on a real database: order, per-site exclusion, leases, resumption."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from surveyor.core.clock import FakeClock
from surveyor.core.tasks import TaskStatus
from surveyor.processing import queue
from surveyor.processing.merge import LeaseLost, StopRequested, process_claimed_task
from surveyor.processing.worker import Heartbeat, Worker, WorkerSettings, wake_on_queued
from surveyor.store import tasks as task_store
from surveyor.store.change_bus import ChangeBus
from surveyor.store.engine import Database, make_engine
from surveyor.store.schema import processing_runs, task_events, tasks
from tests.support.inventory_data import (
    Place,
    comparable,
    host,
    make_place,
    process_all,
    queue_hosts,
    service,
    task,
)
from tests.support.inventory_data import inventory as site_inventory

LEASE = 30.0


@pytest.fixture
def place(db: Database) -> Place:
    return make_place(db)


def claim(db: Database, owner: str = "w1", now: datetime | None = None) -> queue.Claim | None:
    with db.write() as conn:
        return queue.claim_next_task(conn, owner, now=now or datetime.now(UTC), lease_seconds=LEASE)


def hosts(count: int, *, prefix: str = "127.0.0") -> list[dict[str, object]]:
    return [host(f"{prefix}.{n}", services=[service(22)]) for n in range(1, count + 1)]


def test_tasks_of_one_site_are_claimed_in_queue_order_one_at_a_time(
    db: Database, place: Place, tmp_path: Path
) -> None:
    first = queue_hosts(db, tmp_path, place, hosts(1))
    second = queue_hosts(db, tmp_path, place, hosts(1))
    taken = claim(db)
    assert taken is not None
    assert taken.task_id == first
    assert claim(db, "w2") is None, "the site is busy until its first task is done"
    assert task(db, place, first).status == TaskStatus.PROCESSING
    Worker(db, tmp_path, WorkerSettings()).process(taken, threading.Event())
    after = claim(db, "w2")
    assert after is not None
    assert after.task_id == second


def test_different_sites_are_processed_in_parallel(
    db: Database, place: Place, tmp_path: Path
) -> None:
    branch = make_place(db, site="Branch")
    here = queue_hosts(db, tmp_path, place, hosts(1))
    queue_hosts(db, tmp_path, place, hosts(1))
    there = queue_hosts(db, tmp_path, branch, hosts(1))
    taken = [claim(db, "w1"), claim(db, "w2"), claim(db, "w3")]
    assert [c.task_id if c else None for c in taken] == [here, there, None]


def test_a_claim_is_a_lease_recorded_on_the_task(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    taken = claim(db, "worker-a", now)
    assert taken is not None
    held = task(db, place, task_id)
    assert held.lease_owner == "worker-a"
    assert held.lease_expires_at == now + timedelta(seconds=LEASE)
    assert held.processing_attempts == 1
    with db.write() as conn:
        assert not queue.renew_lease(conn, task_id, "worker-b", now=now)
        assert queue.renew_lease(conn, task_id, "worker-a", now=now + timedelta(seconds=10))
    assert task(db, place, task_id).lease_expires_at == now + timedelta(seconds=10 + LEASE)


def test_an_expired_lease_is_requeued_and_the_task_completes(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(3))
    now = datetime.now(UTC)
    assert claim(db, "dead-worker", now) is not None
    later = now + timedelta(seconds=LEASE + 1)
    with db.write() as conn:
        assert queue.expired_leases(conn, now=now) == []
        assert queue.expired_leases(conn, now=later) == [task_id]
        assert queue.requeue_expired_lease(conn, task_id, now=later, actor="w2") == (
            TaskStatus.PROCESSING_QUEUED
        )
    requeued = task(db, place, task_id)
    assert requeued.status == TaskStatus.PROCESSING_QUEUED
    assert requeued.lease_owner is None
    second = claim(db, "w2", later)
    assert second is not None
    assert second.attempt == 2
    Worker(db, tmp_path, WorkerSettings()).process(second, threading.Event())
    assert task(db, place, task_id).change_summary["new"] == 3


def test_after_too_many_lost_leases_the_task_is_canceled_with_the_reason(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    for attempt in range(1, 4):
        taken = claim(db, f"w{attempt}", now)
        assert taken is not None
        assert taken.attempt == attempt
        now += timedelta(seconds=LEASE + 1)
        with db.write() as conn:
            queue.requeue_expired_lease(conn, task_id, now=now, actor="sweeper", max_attempts=3)
    canceled = task(db, place, task_id)
    assert canceled.status == TaskStatus.CANCELED
    assert "interrupted 3 times" in canceled.error


def test_a_reprocessed_task_starts_counting_attempts_again(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    for _ in range(3):
        assert claim(db, "w", now) is not None
        now += timedelta(seconds=LEASE + 1)
        with db.write() as conn:
            queue.requeue_expired_lease(conn, task_id, now=now, actor="sweeper", max_attempts=3)
    with db.write() as conn:
        task_store.transition(
            conn, place.organization_id, task_id, TaskStatus.PROCESSING_QUEUED, actor="ops"
        )
    taken = claim(db, "w", now)
    assert taken is not None
    assert taken.attempt == 1


def test_a_worker_that_lost_its_lease_writes_nothing_more(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(5))
    now = datetime.now(UTC)
    stale = claim(db, "slow-worker", now)
    assert stale is not None
    later = now + timedelta(seconds=LEASE + 1)
    with db.write() as conn:
        queue.requeue_expired_lease(conn, task_id, now=later, actor="sweeper")
    with pytest.raises(LeaseLost):
        process_claimed_task(db, tmp_path, stale, lease_seconds=LEASE)
    assert site_inventory(db, place) == []
    assert task(db, place, task_id).status == TaskStatus.PROCESSING_QUEUED


def test_an_interrupted_merge_resumes_from_its_checkpoint_with_a_true_summary(
    db: Database, place: Place, tmp_path: Path
) -> None:
    reference = make_place(db, site="Reference")
    known = hosts(12)
    queue_hosts(db, tmp_path, place, known[:6], targets="127.0.0.0/24")
    queue_hosts(db, tmp_path, reference, known[:6], targets="127.0.0.0/24")
    process_all(db, tmp_path)
    scan = [*known[3:], host("127.0.0.99", mac="00:11:22:33:44:55")]
    later = "2026-03-02T12:00:00Z"
    interrupted = queue_hosts(db, tmp_path, place, scan, finished_at=later)
    clean = queue_hosts(db, tmp_path, reference, scan, finished_at=later)

    taken = claim(db, "doomed")
    assert taken is not None
    assert taken.task_id == interrupted
    batches: list[int] = []
    with pytest.raises(StopRequested):
        process_claimed_task(
            db,
            tmp_path,
            taken,
            batch_size=4,
            lease_seconds=LEASE,
            should_stop=lambda: batches.append(1) or len(batches) >= 2,
        )
    with db.read() as conn:
        run = conn.execute(
            select(processing_runs).where(processing_runs.c.task_id == interrupted)
        ).one()
    assert run.records_done == 8
    midway = task(db, place, interrupted)
    assert midway.progress_process == pytest.approx(8 / 10)
    assert midway.stats["processing"] == {"records_done": 8, "records_total": 10}
    with db.write() as conn:
        queue.release_task(conn, taken, reason="stopped", now=datetime.now(UTC))
    process_all(db, tmp_path, batch_size=4)

    resumed, whole = task(db, place, interrupted), task(db, reference, clean)
    assert resumed.change_summary == whole.change_summary
    assert resumed.change_summary["new"] == 7
    assert resumed.change_summary["offline"] == 3
    assert comparable(site_inventory(db, place)) == comparable(site_inventory(db, reference))


def test_a_failed_attempt_waits_before_it_is_retried(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    taken = claim(db, "w", now)
    assert taken is not None
    with db.write() as conn:
        status = queue.release_task(
            conn,
            taken,
            reason="processing failed: database went away",
            now=now,
            retry_at=now + timedelta(seconds=10),
        )
    assert status is TaskStatus.PROCESSING_QUEUED
    assert claim(db, "w", now + timedelta(seconds=5)) is None
    again = claim(db, "w", now + timedelta(seconds=11))
    assert again is not None
    assert again.task_id == task_id
    assert again.attempt == 2


def test_a_worker_gives_a_task_back_when_it_is_stopped(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(10))
    taken = claim(db, "w")
    assert taken is not None
    stop = threading.Event()
    stop.set()
    Worker(db, tmp_path, WorkerSettings(batch_size=3)).process(taken, stop)
    back = task(db, place, task_id)
    assert back.status == TaskStatus.PROCESSING_QUEUED
    assert back.processing_attempts == 0, "a shutdown is not a failed attempt"
    with db.read() as conn:
        messages = conn.execute(
            select(task_events.c.message).where(task_events.c.task_id == task_id)
        ).scalars()
        assert any("worker stopped" in m for m in messages)
    assert process_all(db, tmp_path) == 2  # the scan, and the Outlier calculation it queued
    assert task(db, place, task_id).change_summary["new"] == 10


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_concurrent_claimers_on_postgresql_never_share_a_task_or_a_site(
    db: Database, tmp_path: Path
) -> None:
    places = [make_place(db, site=f"Site {n}") for n in range(4)]
    for place in places:
        for _ in range(6):
            queue_hosts(db, tmp_path, place, hosts(1))
    claimed: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def processing_in_site(site_id: int) -> list[int]:
        with db.read() as conn:
            return list(
                conn.execute(
                    select(tasks.c.id).where(
                        tasks.c.site_id == site_id,
                        tasks.c.status == TaskStatus.PROCESSING.value,
                    )
                ).scalars()
            )

    def work(name: str) -> None:
        idle = 0
        while idle < 20:
            taken = claim(db, name)
            if taken is None:
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            with lock:
                claimed.append(taken.task_id)
            for _ in range(3):  # while we hold it, it is the only one of its site
                busy = processing_in_site(taken.task.site_id)
                if busy != [taken.task_id]:
                    errors.append(f"{name} holds {taken.task_id} while {busy} process")
                time.sleep(0.002)
            with db.write() as conn:
                task_store.transition(
                    conn,
                    taken.organization_id,
                    taken.task_id,
                    TaskStatus.PROCESSED,
                    actor=name,
                    expected=[TaskStatus.PROCESSING],
                )

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(claimed) == len(set(claimed)) == 24


def test_a_task_that_keeps_failing_is_canceled_with_its_last_error(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    outcomes = []
    for attempt in range(1, 4):
        taken = claim(db, "w", now)
        assert taken is not None
        assert taken.attempt == attempt
        with db.write() as conn:
            outcomes.append(
                queue.release_task(
                    conn,
                    taken,
                    reason=f"processing failed: disk full ({attempt})",
                    now=now,
                    retry_at=now + timedelta(seconds=10),
                    max_attempts=3,
                )
            )
        now += timedelta(seconds=11)
    assert outcomes == [
        TaskStatus.PROCESSING_QUEUED,
        TaskStatus.PROCESSING_QUEUED,
        TaskStatus.CANCELED,
    ]
    canceled = task(db, place, task_id)
    assert canceled.status == TaskStatus.CANCELED
    assert "failed 3 times" in canceled.error
    assert "disk full (3)" in canceled.error
    assert "Reprocess" in canceled.error
    assert canceled.lease_owner is None
    assert claim(db, "w", now) is None, "a canceled task is not claimed again"


def test_a_task_waiting_for_its_retry_keeps_its_sites_later_tasks_waiting(
    db: Database, place: Place, tmp_path: Path
) -> None:
    branch = make_place(db, site="Branch")
    first = queue_hosts(db, tmp_path, place, hosts(1))
    second = queue_hosts(db, tmp_path, place, hosts(1))
    elsewhere = queue_hosts(db, tmp_path, branch, hosts(1))
    now = datetime.now(UTC)
    taken = claim(db, "w", now)
    assert taken is not None
    assert taken.task_id == first
    with db.write() as conn:
        queue.release_task(
            conn, taken, reason="failed", now=now, retry_at=now + timedelta(seconds=10)
        )
    waiting = claim(db, "w", now + timedelta(seconds=1))
    assert waiting is not None
    assert waiting.task_id == elsewhere, "another site goes on meanwhile"
    assert claim(db, "w", now + timedelta(seconds=2)) is None, "the site keeps its order"
    retried = claim(db, "w", now + timedelta(seconds=11))
    assert retried is not None
    assert retried.task_id == first
    Worker(db, tmp_path, WorkerSettings()).process(retried, threading.Event())
    after = claim(db, "w", now + timedelta(seconds=12))
    assert after is not None
    assert after.task_id == second


def test_processing_reports_records_done_of_total_while_it_runs(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(10))
    taken = claim(db, "w")
    assert taken is not None
    seen: list[tuple[float, dict[str, int]]] = []

    def look() -> bool:
        # Another connection reads the task between batches, as the API would.
        found = task(db, place, task_id)
        assert found.status == TaskStatus.PROCESSING
        seen.append((found.progress_process, found.stats["processing"]))
        return False

    finished = process_claimed_task(
        db, tmp_path, taken, batch_size=4, lease_seconds=LEASE, should_stop=look
    )
    assert seen == [
        (pytest.approx(4 / 10), {"records_done": 4, "records_total": 10}),
        (pytest.approx(8 / 10), {"records_done": 8, "records_total": 10}),
    ]
    assert finished.status == TaskStatus.PROCESSED
    assert finished.progress_process == 1.0
    assert finished.stats["processing"] == {"records_done": 10, "records_total": 10}


def test_a_canceled_task_with_data_is_reprocessed_and_its_interrupted_run_completes(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(10))
    # The runs renew their lease on this clock: each attempt's lease then runs out at a
    # known moment, however long the run took.
    clock = FakeClock(datetime.now(UTC))
    for _ in range(3):
        taken = claim(db, "w", clock.now())
        assert taken is not None
        with pytest.raises(StopRequested):
            process_claimed_task(
                db,
                tmp_path,
                taken,
                batch_size=2,
                lease_seconds=LEASE,
                should_stop=lambda: True,
                clock=clock,
            )
        now = clock.advance(timedelta(seconds=LEASE + 1))
        with db.write() as conn:
            queue.requeue_expired_lease(conn, task_id, now=now, actor="sweeper", max_attempts=3)
    canceled = task(db, place, task_id)
    assert canceled.status == TaskStatus.CANCELED
    assert len(site_inventory(db, place)) == 6, "each attempt merged a batch before it stopped"
    with db.write() as conn:
        task_store.transition(
            conn, place.organization_id, task_id, TaskStatus.PROCESSING_QUEUED, actor="ops"
        )
    requeued = task(db, place, task_id)
    assert requeued.error is None
    assert requeued.progress_process == 0.0
    assert (
        process_all(db, tmp_path, batch_size=2) == 2
    )  # the task, and the Outlier calculation it queued
    done = task(db, place, task_id)
    assert done.status == TaskStatus.PROCESSED
    assert done.processing_attempts == 1
    assert done.change_summary["new"] == 10, "the summary counts the earlier attempts too"
    assert done.change_summary["total"] == 10
    assert len(site_inventory(db, place)) == 10
    with db.read() as conn:
        runs = conn.execute(
            select(processing_runs.c.phase).where(processing_runs.c.task_id == task_id)
        ).scalars()
        assert list(runs) == ["done"], "one run, resumed where the last attempt stopped"


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_the_heartbeat_renews_the_lease_and_notices_when_it_is_taken_away(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, hosts(1))
    now = datetime.now(UTC)
    with db.write() as conn:
        taken = queue.claim_next_task(conn, "w", now=now, lease_seconds=0.3)
    assert taken is not None
    with Heartbeat(db, taken, lease_seconds=0.3) as heartbeat:
        wait_until(
            lambda: task(db, place, task_id).lease_expires_at > taken.expires_at,
            "a renewal",
        )
        assert not heartbeat.lost
        with db.write() as conn:
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(lease_owner="other"))
        wait_until(lambda: heartbeat.lost, "the heartbeat to notice the lost lease")
    assert task(db, place, task_id).lease_owner == "other"


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_an_idle_worker_of_another_process_is_woken_when_a_task_is_queued(
    db: Database, place: Place, tmp_path: Path, postgres_url: str
) -> None:
    # The worker's process, as `surveyor worker` runs it: an engine and a change bus of its own.
    worker_db = Database(make_engine(postgres_url))
    worker_bus = ChangeBus()
    worker_bus.open(worker_db)
    wakeup = queue.Wakeup()
    wake_on_queued(worker_bus, [wakeup])
    # The console's process queues the task.
    console_bus = ChangeBus()
    console_bus.open(db)
    try:
        assert not wakeup.wait(0), "nothing was queued yet"
        queue_hosts(db, tmp_path, place, hosts(1))
        assert wakeup.wait(60), "the queued task woke the worker of the other process"
    finally:
        console_bus.close()
        worker_bus.close()
        worker_db.dispose()
