"""The scheduler as a console service: started with the console, woken by changes, restartable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from surveyor.console.app import create_app
from surveyor.console.services import console_services
from surveyor.console.state import ConsoleSettings
from surveyor.core.clock import FakeClock
from surveyor.scheduler import loop
from surveyor.scheduler.leader import SoleScheduler
from surveyor.scheduler.loop import run_scheduler, scheduler_service
from surveyor.scheduler.tick import Scheduler, TickReport
from surveyor.store.engine import Database
from tests.support.asgi_client import InProcessClient
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, BOOTSTRAP_TOKEN, Api

DUE = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WAIT_SECONDS = 10.0
NIGHTLY = {
    "name": "nightly",
    "params": {"targets": "127.0.0.1"},
    "recur": {
        "frequency": "daily",
        "time": "03:00",
        "timezone": "UTC",
        "start": "2030-01-01T00:00:00Z",
    },
}


class TickWatcher:
    """Collects the reports of a running scheduler; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.reports: list[TickReport] = []
        self._ticked = threading.Condition()

    def __call__(self, report: TickReport) -> None:
        with self._ticked:
            self.reports.append(report)
            self._ticked.notify_all()

    def wait_for(self, count: int) -> None:
        with self._ticked:
            reached = self._ticked.wait_for(lambda: len(self.reports) >= count, WAIT_SECONDS)
        assert reached, f"the scheduler ticked {len(self.reports)} times, expected {count}"

    def wait_until(self, reached: Callable[[TickReport], bool]) -> None:
        """Wait for a tick whose report is `reached`."""
        with self._ticked:
            found = self._ticked.wait_for(
                lambda: any(reached(report) for report in self.reports), WAIT_SECONDS
            )
        assert found, f"no such tick among {len(self.reports)}"

    def wait_for_one_more(self) -> None:
        self.wait_for(len(self.reports) + 1)


@contextmanager
def console_with_scheduler(
    db: Database,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    watcher: TickWatcher,
    *,
    longest_sleep: float = 1.0,
) -> Iterator[Api]:
    """A console whose scheduler runs on `clock`; leaving the block stops the console."""
    monkeypatch.setenv("SURVEYOR_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("SURVEYOR_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("SURVEYOR_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN)
    settings = ConsoleSettings(data_dir=data_dir, database_url=str(db.engine.url))
    service = scheduler_service(on_tick=watcher, longest_sleep=longest_sleep)
    app = create_app(settings, database=db, background=[service], clock=clock)
    with InProcessClient(app, raise_server_exceptions=True) as client:
        watcher.wait_for_one_more()
        yield Api(client, BOOTSTRAP_TOKEN, email=ADMIN_EMAIL)


def runs_of(api: Api, task_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/tasks/{task_id}/runs")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_console_restart_inside_a_due_window_neither_loses_nor_duplicates_a_run(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(DUE - 10 * MINUTE)
    watcher = TickWatcher()
    with console_with_scheduler(db, tmp_path, monkeypatch, clock, watcher) as api:
        created = api.post("/api/v1/tasks", json=NIGHTLY)
        assert created.status_code == 201, created.text
        template = created.json()
        assert template["recur_next"].startswith("2030-01-01T03:00:00")
        watcher.wait_for_one_more()
        assert runs_of(api, template["id"]) == []

    clock.set(DUE + 20 * MINUTE)  # the console was down at 03:00 and is back within the grace
    with console_with_scheduler(db, tmp_path, monkeypatch, clock, watcher) as api:
        [run] = runs_of(api, template["id"])
        assert run["start_time"].startswith("2030-01-01T03:00:00")

    clock.set(DUE + 25 * MINUTE)  # restarted again, still inside the same due window
    with console_with_scheduler(db, tmp_path, monkeypatch, clock, watcher) as api:
        assert [again["id"] for again in runs_of(api, template["id"])] == [run["id"]]
        shown = api.get(f"/api/v1/tasks/{template['id']}").json()
        assert shown["recur_last_task_id"] == run["id"]
        assert shown["recur_next"].startswith("2030-01-02T03:00:00")


def test_a_console_down_for_longer_than_the_grace_period_records_the_skip(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(DUE - 10 * MINUTE)
    watcher = TickWatcher()
    with console_with_scheduler(db, tmp_path, monkeypatch, clock, watcher) as api:
        template = api.post("/api/v1/tasks", json=NIGHTLY).json()

    clock.set(DUE + 3 * 60 * MINUTE)
    with console_with_scheduler(db, tmp_path, monkeypatch, clock, watcher) as api:
        assert runs_of(api, template["id"]) == []
        events = api.get(f"/api/v1/tasks/{template['id']}/events").json()["items"]
        assert [e["message"] for e in events if e["kind"] == "skipped"] == [
            "skipped the run of 2030-01-01 03:00 UTC: it was 3 hours late, "
            "more than its 1 hour grace period"
        ]


def test_creating_a_schedule_wakes_the_consoles_scheduler_at_once(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(DUE - 10 * MINUTE)
    watcher = TickWatcher()
    # Without a wake-up the scheduler would not look again for a minute.
    with console_with_scheduler(
        db, tmp_path, monkeypatch, clock, watcher, longest_sleep=60.0
    ) as api:
        ticks = len(watcher.reports)
        created = api.post("/api/v1/tasks", json=NIGHTLY)
        assert created.status_code == 201

        watcher.wait_for(ticks + 1)
        assert watcher.reports[-1].next_due == DUE


def test_surveyor_up_and_surveyor_console_both_run_the_scheduler() -> None:
    for embedded in (True, False):
        names = [service.__name__ for service in console_services(embedded=embedded)]
        assert "scheduler" in names


def test_the_scheduler_sleeps_until_the_next_due_moment_but_never_longer_than_its_limit(
    db: Database,
) -> None:
    clock = FakeClock(DUE)
    scheduler = Scheduler(db, clock=clock, leadership=SoleScheduler())

    def sleep_for(next_due: datetime | None) -> float:
        report = TickReport(now=DUE, next_due=next_due)
        return scheduler.seconds_until_next(report, longest=1.0)

    assert sleep_for(DUE + timedelta(milliseconds=300)) == pytest.approx(0.3)
    assert sleep_for(DUE + MINUTE) == 1.0
    assert sleep_for(None) == 1.0
    assert sleep_for(DUE - MINUTE) == 0.0


class FlakyScheduler:
    """Fails its first tick, as a scheduler does when the database is briefly unreachable."""

    def __init__(self) -> None:
        self.calls = 0
        self.clock = FakeClock(DUE)

    def tick(self) -> TickReport:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("the database went away")
        return TickReport(now=DUE)

    def seconds_until_next(self, report: TickReport, *, longest: float) -> float:
        return longest


def test_a_failed_tick_is_logged_and_the_scheduler_carries_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loop, "RETRY_AFTER_ERROR", 0.0)
    flaky = FlakyScheduler()

    async def run_until_a_tick_succeeds() -> None:
        succeeded = asyncio.Event()
        running = asyncio.create_task(
            run_scheduler(flaky, on_tick=lambda _report: succeeded.set())  # type: ignore[arg-type]
        )
        await asyncio.wait_for(succeeded.wait(), WAIT_SECONDS)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    with caplog.at_level(logging.ERROR, logger="surveyor.scheduler"):
        asyncio.run(run_until_a_tick_succeeds())

    assert flaky.calls == 2
    assert "a scheduler tick failed" in caplog.text
