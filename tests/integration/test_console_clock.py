"""The console's one clock, end to end: with a fake clock injected into the console, the
times it stores are the fake clock's, the scheduler fires when the fake clock passes a
task's start, and the explorer supervisor forces a stop when the fake clock says the
explorer took too long to confirm it. Loops that sleep wake when the fake clock jumps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from surveyor.console.services import explorer_supervisor
from surveyor.core.clock import FakeClock
from surveyor.core.task import Task
from surveyor.scheduler.loop import scheduler_service
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from tests.integration.test_explorer_agent import wait_for
from tests.integration.test_scheduler_console import TickWatcher
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import create_scan, enroll, events, get_task

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
DUE = START + timedelta(minutes=10)
#: Far longer than the test runs: the scheduler and the supervisor look again this soon
#: only because the fake clock jumped.
HOUR = 3600.0


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def watcher() -> TickWatcher:
    return TickWatcher()


@pytest.fixture
def console_on_fake_time(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    watcher: TickWatcher,
) -> Iterator[ConsoleUnderTest]:
    scheduler = scheduler_service(on_tick=watcher, longest_sleep=HOUR)
    with running_console(
        db,
        tmp_path,
        monkeypatch,
        clock=clock,
        background=[scheduler, explorer_supervisor],
        explorer_sweep_seconds=HOUR,
    ) as console:
        watcher.wait_for(1)
        yield console


def stored_task(console: ConsoleUnderTest, task_id: int) -> Task:
    with console.db.read() as conn:
        task = task_store.get_task(conn, console.organization_id, task_id)
    assert task is not None
    return task


def test_the_console_keeps_the_fake_clocks_time_from_creation_to_a_forced_stop(
    console_on_fake_time: ConsoleUnderTest, clock: FakeClock, watcher: TickWatcher
) -> None:
    console = console_on_fake_time
    explorer = enroll(console)
    scan = create_scan(console, explorer_id=explorer.id, start_time=DUE.isoformat())
    assert at(scan["created_at"]) == START
    assert scan["wait_reason"] == "not_due"
    assert explorer.poll() is None, "not due on the fake clock"

    # The fake clock passes the start: the scheduler wakes at once and looks at that time
    # (it, or the supervisor woken too, notes that the scan no longer waits for its start).
    passed = clock.set(DUE + timedelta(seconds=1))
    watcher.wait_until(lambda report: report.now == passed)
    noted = events(console, scan["id"])
    assert at(noted[0]["at"]) == START
    assert len(noted) > 1
    assert {at(event["at"]) for event in noted[1:]} == {passed}

    launched = explorer.poll()
    assert launched is not None
    assert launched["id"] == scan["id"]
    assert at(get_task(console, scan["id"])["data_acquisition_started_at"]) == clock.now()

    # A stop's timestamps are the fake clock's.
    asked_at = clock.advance(timedelta(seconds=5))
    stopping = console.as_role("operator").post(f"/api/v1/tasks/{scan['id']}/stop")
    assert stopping.json()["status"] == "stopping"
    assert stored_task(console, scan["id"]).stop_requested_at == asked_at
    assert at(events(console, scan["id"])[-1]["at"]) == asked_at

    # The explorer never confirms: once the fake clock is past the confirmation timeout,
    # the supervisor (woken by the jump) forces the stop, at the fake time.
    forced_at = clock.advance(timedelta(seconds=31))
    stopped = wait_for(console, scan["id"], {"stopped"})
    assert at(stopped["finished_at"]) == forced_at
    last = events(console, scan["id"])[-1]
    assert (last["to_status"], at(last["at"])) == ("stopped", forced_at)
