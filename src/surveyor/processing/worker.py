"""Processing workers: the loop that claims tasks and merges them, in the console or alone.

A worker requeues expired leases now and then, claims the next task, keeps its lease alive
from a heartbeat thread while it merges, and goes back to waiting when the queue is empty: a
short poll, cut short by the change bus when a task is queued (in this process, or on
PostgreSQL in any other), so a queued task starts at once. Stopping it (the
console shutting down, SIGTERM to `surveyor worker`) finishes the current batch and gives the
task back to the queue, where it resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.jsonl_limits import DEFAULT_LIMITS, JsonlLimits
from surveyor.core.tasks import IllegalTransition
from surveyor.processing import queue
from surveyor.processing.merge import DEFAULT_BATCH_SIZE
from surveyor.processing.processors import LeaseLost, ProcessingJob, StopRequested, process
from surveyor.processing.queue import Claim, Wakeup, wakes_workers
from surveyor.processing.records import TaskDataError
from surveyor.service.background import ServiceHost
from surveyor.store.change_bus import ChangeBus, Unsubscribe
from surveyor.store.engine import Database
from surveyor.store.tasks import StaleTask

log = logging.getLogger("surveyor.processing")

_worker_numbers = itertools.count(1)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class WorkerSettings:
    """How workers pace themselves; each has a `SURVEYOR_PROCESSING_*` variable. Task data
    is read within `limits` (see core/jsonl_limits.py for their settings)."""

    lease_seconds: float = queue.DEFAULT_LEASE_SECONDS
    poll_seconds: float = 2.0
    batch_size: int = DEFAULT_BATCH_SIZE
    max_attempts: int = queue.DEFAULT_MAX_ATTEMPTS
    retry_seconds: float = 10.0
    requeue_every_seconds: float = 5.0
    limits: JsonlLimits = DEFAULT_LIMITS

    @classmethod
    def from_environment(cls) -> WorkerSettings:
        return cls(
            lease_seconds=_env_number("SURVEYOR_PROCESSING_LEASE", queue.DEFAULT_LEASE_SECONDS),
            poll_seconds=_env_number("SURVEYOR_PROCESSING_POLL", 2.0),
            batch_size=int(_env_number("SURVEYOR_PROCESSING_BATCH", DEFAULT_BATCH_SIZE)),
            max_attempts=int(_env_number("SURVEYOR_PROCESSING_ATTEMPTS", 3)),
            retry_seconds=_env_number("SURVEYOR_PROCESSING_RETRY", 10.0),
            requeue_every_seconds=_env_number("SURVEYOR_PROCESSING_REQUEUE_EVERY", 5.0),
            limits=JsonlLimits.from_environment(os.environ),
        )


def worker_name() -> str:
    """`host:pid:n`, unique among the workers of every process."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{next(_worker_numbers)}"


class Heartbeat:
    """Renews a claim's lease every third of its length until stopped; notes if it was lost."""

    def __init__(
        self, db: Database, claim: Claim, lease_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.db = db
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{claim.task_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self.db.write() as conn:
                    renewed = queue.renew_lease(
                        conn,
                        self.claim.task_id,
                        self.claim.owner,
                        now=self.clock.now(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:  # a missed beat is not yet a lost lease
                log.warning("task %s: could not renew the lease", self.claim.task_id, exc_info=True)
                continue
            if not renewed:
                self.lost = True
                return


class Worker:
    """One processing worker: claims and merges one task at a time."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        settings: WorkerSettings | None = None,
        *,
        name: str | None = None,
        wakeup: Wakeup | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.clock = clock
        self.data_dir = data_dir
        self.settings = settings or WorkerSettings()
        self.name = name or worker_name()
        self.wakeup = wakeup
        self._next_requeue = datetime.min.replace(tzinfo=UTC)

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set."""
        wakeup = self.wakeup or Wakeup()
        log.info("processing worker %s started", self.name)
        try:
            while not stop.is_set():
                try:
                    worked = self.work_once(stop)
                except Exception:
                    log.exception("processing worker %s: unexpected failure", self.name)
                    worked = False
                if not worked and not stop.is_set():
                    wakeup.wait(self.settings.poll_seconds)
        finally:
            log.info("processing worker %s stopped", self.name)

    def work_once(self, stop: threading.Event | None = None) -> bool:
        """Requeue expired leases (now and then), then claim and process one task.

        Returns whether a task was claimed.
        """
        now = self.clock.now()
        if now >= self._next_requeue:
            self.requeue_expired(now)
            self._next_requeue = now + timedelta(seconds=self.settings.requeue_every_seconds)
        with self.db.write() as conn:
            claim = queue.claim_next_task(
                conn, self.name, now=now, lease_seconds=self.settings.lease_seconds
            )
        if claim is None:
            return False
        self.process(claim, stop or threading.Event())
        return True

    def drain(self) -> int:
        """Process until nothing is due; how many tasks were claimed (for tests and scripts)."""
        claimed = 0
        while self.work_once():
            claimed += 1
        return claimed

    def requeue_expired(self, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        with self.db.read() as conn:
            expired = queue.expired_leases(conn, now=now)
        for task_id in expired:
            try:
                with self.db.write() as conn:
                    outcome = queue.requeue_expired_lease(
                        conn,
                        task_id,
                        now=now,
                        actor=self.name,
                        max_attempts=self.settings.max_attempts,
                    )
            except Exception:
                log.warning("could not requeue task %s", task_id, exc_info=True)
                continue
            if outcome is not None:
                log.warning("task %s: its worker's lease expired; now %s", task_id, outcome)

    def process(self, claim: Claim, stop: threading.Event) -> None:
        """Process a claimed task with its kind's processor, and settle it whatever happens."""
        log.info("task %s: processing (attempt %s)", claim.task_id, claim.attempt)
        with Heartbeat(self.db, claim, self.settings.lease_seconds, self.clock) as heartbeat:
            try:
                task = process(
                    ProcessingJob(
                        self.db,
                        self.data_dir,
                        claim,
                        batch_size=self.settings.batch_size,
                        lease_seconds=self.settings.lease_seconds,
                        limits=self.settings.limits,
                        should_stop=lambda: stop.is_set() or heartbeat.lost,
                        clock=self.clock,
                    )
                )
            except LeaseLost:
                log.warning("task %s: lost its lease; another worker takes over", claim.task_id)
                return
            except StopRequested:
                if heartbeat.lost:
                    log.warning("task %s: lost its lease; another worker takes over", claim.task_id)
                    return
                self._settle(claim, reason="the worker stopped; resumes where it left off")
                return
            except TaskDataError as exc:
                log.warning("task %s: canceled, its data cannot be merged: %s", claim.task_id, exc)
                self._settle(claim, error=f"the task data cannot be merged: {exc}")
                return
            except Exception as exc:
                log.exception("task %s: processing failed", claim.task_id)
                self._settle(claim, reason=f"processing failed: {exc}", failed=True)
                return
        summary = task.change_summary or {}
        log.info("task %s: processed %s", claim.task_id, summary)

    def _settle(
        self, claim: Claim, *, reason: str = "", error: str | None = None, failed: bool = False
    ) -> None:
        now = self.clock.now()
        try:
            with self.db.write() as conn:
                if error is not None:
                    queue.cancel_task(conn, claim, error=error, now=now)
                    return
                queue.release_task(
                    conn,
                    claim,
                    reason=reason,
                    now=now,
                    retry_at=now + timedelta(seconds=self.settings.retry_seconds)
                    if failed
                    else None,
                    max_attempts=self.settings.max_attempts,
                    counts_as_attempt=failed,
                )
        except (IllegalTransition, StaleTask):
            log.warning("task %s: changed while being given back", claim.task_id)


def console_worker_count(db: Database) -> int:
    """In-console workers: `SURVEYOR_WORKERS` (default 1; 0 leaves processing to separate
    `surveyor worker` processes). SQLite has one writer, so one worker is all it uses."""
    count = int(_env_number("SURVEYOR_WORKERS", 1))
    if db.is_sqlite:
        return min(count, 1)
    return max(count, 0)


def run_in_threads(workers: list[Worker], stop: threading.Event) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"worker-{w.name}", daemon=True)
        for w in workers
    ]
    for thread in threads:
        thread.start()
    return threads


async def processing_workers(host: ServiceHost) -> None:
    """The console's background service: in-process workers until the console stops."""
    count = console_worker_count(host.db)
    if count == 0:
        return
    settings = WorkerSettings.from_environment()
    wakeups = [Wakeup() for _ in range(count)]
    unsubscribe = wake_on_queued(host.changes, wakeups)
    stop = threading.Event()
    workers = [
        Worker(host.db, host.data_dir, settings, wakeup=wakeup, clock=host.clock)
        for wakeup in wakeups
    ]
    threads = run_in_threads(workers, stop)
    try:
        await asyncio.Event().wait()
    finally:
        unsubscribe()
        stop.set()
        for wakeup in wakeups:
            wakeup.close()
        for thread in threads:
            await asyncio.to_thread(thread.join, settings.lease_seconds)


def wake_on_queued(changes: ChangeBus, wakeups: list[Wakeup]) -> Unsubscribe:
    """Wake these idle workers when the bus tells of a task queued for processing (or one
    leaving processing), until the returned function is called."""

    def wake(_changes: object) -> None:
        for wakeup in wakeups:
            wakeup.notify()

    return changes.subscribe(wake, where=wakes_workers)
