"""Two scheduler processes on one database, started together: every occurrence fires once.

Each process is a real OS process with its own engine and test clock; both walk the same
hours as fast as they can, finishing the runs they see (as explorers would) between ticks.
Every occurrence must end up as exactly one run, or be recorded on its template as skipped or
coalesced, never both and never twice.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.core.clock import FakeClock
from surveyor.core.tasks import IllegalTransition, TaskStatus
from surveyor.scheduler.leader import SoleScheduler, leadership_for
from surveyor.scheduler.tick import Scheduler
from surveyor.service import tasks as task_service
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database, make_engine
from surveyor.store.records import create_record
from surveyor.store.schema import sites, task_events, tasks

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
HOURS = 24
TEMPLATES = 8
PROCESS_SECONDS = 120


def scheduler_process(
    url: str, leaderless: bool, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """Tick every hour of the window, finishing waiting runs after each tick."""
    engine = make_engine(url)
    db = Database(engine)
    leadership = SoleScheduler() if leaderless else leadership_for(engine)
    scheduler = Scheduler(db, clock=FakeClock(FIRST), leadership=leadership, batch_size=3)
    totals: Counter[str] = Counter()
    start.wait(timeout=PROCESS_SECONDS)
    try:
        for hour in range(HOURS):
            report = scheduler.tick(FIRST + timedelta(hours=hour))
            totals.update(
                spawned=report.spawned,
                skipped=report.skipped,
                coalesced=report.coalesced,
                adopted=report.adopted,
                led=int(report.leader),
            )
            finish_waiting_runs(db)
    finally:
        scheduler.close()
        engine.dispose()
    results.put(dict(totals))


def finish_waiting_runs(db: Database) -> None:
    """Stop every run still waiting, in id order (so two processes never deadlock)."""
    with db.write() as conn:
        waiting = conn.execute(
            select(tasks.c.id, tasks.c.organization_id)
            .where(tasks.c.parent_id.is_not(None), tasks.c.status == TaskStatus.NEW.value)
            .order_by(tasks.c.id)
        ).all()
        for run in waiting:
            try:
                with conn.begin_nested():
                    task_store.transition(
                        conn,
                        run.organization_id,
                        run.id,
                        TaskStatus.STOPPED,
                        actor="explorer",
                        expected=[TaskStatus.NEW],
                    )
            except (IllegalTransition, task_store.StaleTask):
                pass  # the other process finished it first


def create_templates(db: Database) -> list[int]:
    with db.write() as conn:
        org = accounts.create_organization(conn, "Acme")
        create_record(conn, sites, org["id"], {"name": "HQ", "scope": "127.0.0.1"})
        user = accounts.create_user(conn, "operator@example.test", password=None)
        principal = accounts.Principal(
            user["id"], user["email"], org["id"], accounts.Role.OPERATOR, False
        )
        body = {
            "params": {"targets": "127.0.0.1"},
            "recur": {"frequency": "hourly", "start": FIRST},
        }
        return [
            task_service.create_task(
                conn, principal, {"name": f"sweep {n}", **body}, now=CREATED
            ).id
            for n in range(TEMPLATES)
        ]


def run_two_schedulers(db: Database, *, leaderless: bool) -> list[dict[str, int]]:
    url = db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=scheduler_process, args=(url, leaderless, start, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    totals = [results.get(timeout=PROCESS_SECONDS) for _ in processes]
    for process in processes:
        process.join(timeout=PROCESS_SECONDS)
        assert process.exitcode == 0
    return totals


def _count(message: str) -> int:
    """How many occurrences a skipped or coalesced event accounts for."""
    match = re.match(r"(?:skipped )?(\d+) runs", message)
    return int(match.group(1)) if match else 1


def accounting(db: Database, template_id: int) -> dict[str, Any]:
    with db.read() as conn:
        runs = conn.execute(
            select(tasks.c.occurrence_at).where(tasks.c.parent_id == template_id)
        ).scalars()
        occurrences = list(runs)
        events = conn.execute(
            select(task_events.c.kind, task_events.c.message).where(
                task_events.c.task_id == template_id
            )
        ).all()
        template = conn.execute(select(tasks).where(tasks.c.id == template_id)).mappings().one()
    by_kind: Counter[str] = Counter()
    for kind, message in events:
        by_kind[kind] += _count(message) if kind in ("skipped", "coalesced") else 1
    return {
        "runs": occurrences,
        "spawned_events": by_kind["spawned"],
        "not_run": by_kind["skipped"] + by_kind["coalesced"],
        "recur_next": template["recur_next"],
    }


EXPECTED = {FIRST + timedelta(hours=hour) for hour in range(HOURS)}


@pytest.mark.parametrize("leaderless", [False, True], ids=["with-leader", "both-lead"])
def test_two_scheduler_processes_never_fire_an_occurrence_twice(
    db: Database, leaderless: bool
) -> None:
    template_ids = create_templates(db)

    totals = run_two_schedulers(db, leaderless=leaderless)

    spawned = 0
    for template_id in template_ids:
        account = accounting(db, template_id)
        runs = account["runs"]
        assert len(set(runs)) == len(runs)
        assert set(runs) <= EXPECTED
        assert len(runs) + account["not_run"] == HOURS
        assert account["spawned_events"] == len(runs)
        assert account["recur_next"] == FIRST + timedelta(hours=HOURS)
        spawned += len(runs)
    assert sum(total.get("spawned", 0) for total in totals) == spawned
    if not leaderless:
        # One leader at a time walks every hour and finishes each run before the next.
        assert spawned == TEMPLATES * HOURS
        assert sum(total.get("adopted", 0) for total in totals) == 0
