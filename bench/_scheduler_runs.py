"""The scheduler benchmark's contestants: Surveyor's scheduler (one or two consoles) and
APScheduler with a memory job store, each firing the same templates due at one instant.

A run's lateness is the moment its row is committed (so visible to every other connection)
minus its occurrence's due time. Surveyor's scheduler reports each committed batch with the
time its commit returned, read on the scheduler's own clock (the machine's clock shifted so
that the due instant comes when wanted); every run of the batch gets that time. APScheduler's
jobs read the clock when their own transaction has committed (APScheduler + spawn) or when the
job ends (APScheduler alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bench._scheduler_setup import DUE
from surveyor.core.clock import SYSTEM_CLOCK, OffsetClock
from surveyor.core.task import Task
from surveyor.scheduler.loop import run_scheduler
from surveyor.scheduler.tick import Scheduler, TickReport
from surveyor.service.tasks import spawn_run
from surveyor.store.engine import Database, make_engine
from surveyor.store.schema import tasks

#: Seconds between starting a scheduler and the due instant: a console runs long before its
#: templates come due and prepares those due within two minutes while idle.
LEAD_SECONDS = 15.0
#: A console (re)started right at the due instant: nothing prepared.
COLD_LEAD_SECONDS = 0.0
#: APScheduler needs its jobs added before it starts; adding 10,000 takes a moment.
APSCHEDULER_LEAD_SECONDS = 5.0
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Result:
    scheduler: str
    backend: str
    fired: int
    all_fired_s: float
    p50_s: float
    p99_s: float
    duplicates: int
    missed: int
    #: The machine's 1-minute load average when the measurement ended.
    load: float


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _result(
    scheduler: str, backend: str, expected: int, lateness: list[float], duplicates: int
) -> Result:
    return Result(
        scheduler=scheduler,
        backend=backend,
        fired=len(lateness),
        all_fired_s=max(lateness) if len(lateness) >= expected else math.inf,
        p50_s=percentile(lateness, 0.50),
        p99_s=percentile(lateness, 0.99),
        duplicates=duplicates,
        missed=max(0, expected - len(lateness)),
        load=os.getloadavg()[0],
    )


def stored_duplicates(db: Database) -> tuple[int, int]:
    """(runs stored at DUE, runs beyond one per template and occurrence)."""
    with db.read() as conn:
        total, distinct = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(tasks.c.parent_id)),
            ).where(tasks.c.parent_id.is_not(None), tasks.c.occurrence_at == DUE)
        ).one()
    return int(total), int(total) - int(distinct)


def _clock_due_in(seconds: float) -> tuple[OffsetClock, float]:
    """A clock on which DUE comes `seconds` from now, and that moment as a Unix time."""
    due_at = time.time() + seconds
    offset = DUE - datetime.fromtimestamp(due_at, UTC)
    return OffsetClock(offset), due_at


async def _tick_until(scheduler: Scheduler, expected: int, deadline: float) -> list[TickReport]:
    reports: list[TickReport] = []
    spawned = 0
    done = asyncio.Event()

    def seen(report: TickReport) -> None:
        nonlocal spawned
        reports.append(report)
        spawned += report.spawned
        if spawned >= expected:
            done.set()

    running = asyncio.create_task(run_scheduler(scheduler, on_tick=seen))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), max(0.1, deadline - time.time()))
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    return reports


def console_process(
    url: str, offset_seconds: float | None, lead: float, expected: int, results: Any
) -> None:
    """A console process running only its scheduler service, until it has spawned `expected`
    runs or TIMEOUT_SECONDS after the due instant. Its clock reaches DUE `lead` seconds after
    it is ready, or is shifted by `offset_seconds` (several consoles sharing one instant)."""
    engine = make_engine(url)
    if offset_seconds is None:
        clock, due_at = _clock_due_in(lead)
    else:
        clock = OffsetClock(timedelta(seconds=offset_seconds))
        due_at = DUE.timestamp() - offset_seconds
    scheduler = Scheduler(Database(engine), clock=clock)
    try:
        reports = asyncio.run(_tick_until(scheduler, expected, due_at + TIMEOUT_SECONDS))
    finally:
        scheduler.close()
        engine.dispose()
    results.put([(b.committed_at.timestamp(), b.spawned) for r in reports for b in r.batches])


def run_surveyor(
    db: Database,
    expected: int,
    backend: str,
    *,
    consoles: int = 1,
    lead: float = LEAD_SECONDS,
    name: str = "Surveyor",
) -> Result:
    """Surveyor's scheduler in fresh console processes (nothing computed or cached before
    they start), started `lead` seconds before the due instant; with several consoles on one
    PostgreSQL, the leader fires and the others stand by."""
    url = db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    offset = None
    if consoles > 1:  # one instant for all; child processes take a moment to start
        clock, _ = _clock_due_in(lead + 3.0)
        offset = clock.offset.total_seconds()
    processes = [
        context.Process(target=console_process, args=(url, offset, lead, expected, results))
        for _ in range(consoles)
    ]
    for process in processes:
        process.start()
    batches: list[tuple[float, int]] = []
    try:
        while sum(spawned for _, spawned in batches) < expected:
            batches.extend(results.get(timeout=TIMEOUT_SECONDS + lead + 10))
    finally:
        for process in processes:  # the consoles that stood by are still waiting
            process.join(timeout=1)
            if process.is_alive():
                process.terminate()
                process.join()
    due = DUE.timestamp()
    lateness = [committed - due for committed, spawned in batches for _ in range(spawned)]
    _, duplicates = stored_duplicates(db)
    return _result(name, backend, expected, lateness, duplicates)


def run_apscheduler(
    expected: int,
    backend: str,
    *,
    db: Database | None = None,
    templates: list[Task] | None = None,
) -> Result:
    """APScheduler 3 (BackgroundScheduler, memory job store, its default thread pool): one
    cron job per template, all due at the same second. With a database, each job spawns its
    template's run through the service layer, in its own transaction."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    due_at = math.ceil(time.time() + APSCHEDULER_LEAD_SECONDS)
    due = datetime.fromtimestamp(due_at, UTC)
    finished: list[float] = []
    refused: list[int] = []
    failed: list[int] = []
    all_done = threading.Event()

    def fire(index: int) -> None:
        try:
            if db is not None and templates is not None:
                with db.write() as conn:
                    spawn_run(
                        conn,
                        templates[index],
                        occurrence=DUE,
                        actor="apscheduler",
                        now=SYSTEM_CLOCK.now(),
                    )
        except IntegrityError:
            refused.append(index)
        except OperationalError:  # SQLite's busy timeout ran out: this run is lost
            failed.append(index)
        else:
            finished.append(time.time() - due_at)
        if len(finished) + len(failed) + len(refused) >= expected:
            all_done.set()

    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"misfire_grace_time": None, "coalesce": True}
    )
    trigger = CronTrigger(hour=due.hour, minute=due.minute, second=due.second, timezone=UTC)
    for index in range(expected):
        scheduler.add_job(fire, trigger, args=(index,), id=str(index))
    if time.time() >= due_at:
        raise RuntimeError("adding the APScheduler jobs took longer than the lead; raise it")
    scheduler.start()
    all_done.wait(due_at - time.time() + TIMEOUT_SECONDS)
    scheduler.shutdown(wait=True)
    name = "APScheduler + spawn_run" if db is not None else "APScheduler, no-op jobs"
    duplicates = len(refused)
    if db is not None:
        _, duplicates = stored_duplicates(db)
    return _result(name, backend, expected, finished, duplicates)
