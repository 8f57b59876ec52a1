"""Issue 5's acceptance, against a real `surveyor console` process and the real CLI.

A daily recurring scan created through the CLI shows its next five runs, spawns runs on time
under a test clock (a scheduler on the console's database, ticked at explicit times), and its
past runs are listed at GET /api/v1/tasks/{id}/runs. The console's own scheduler runs on the
real clock beside it and brings a task due on its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest

from surveyor.core.clock import FakeClock
from surveyor.scheduler.leader import SoleScheduler
from surveyor.scheduler.tick import Scheduler
from surveyor.store.engine import Database, make_engine
from tests.acceptance.conftest import ConsoleProcess, clean_environment
from tests.support.cli_in_process import run_surveyor

DUE_WITHIN_SECONDS = 15.0
GRACE = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def run_cli(console: ConsoleProcess, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, against the console (in this process)."""
    env = clean_environment() | {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "SURVEYOR_URL": console.url,
        "SURVEYOR_TOKEN": console.token,
        "NO_COLOR": "1",
        "COLUMNS": "120",
    }
    return run_surveyor(args, env)


def surveyor(console: ConsoleProcess, home: Path, *args: str) -> Any:
    """Run the CLI with --json and return what it printed."""
    result = run_cli(console, home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def surveyor_says(console: ConsoleProcess, home: Path, *args: str) -> str:
    """Run the CLI for a person to read and return what it printed."""
    result = run_cli(console, home, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


#: A run as the CLI lists it: "  Mon 2026-03-02 03:00 CET  in 2 hours".
LISTED_RUN = re.compile(r"^  (\w{3}) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) (\S+)  ", re.MULTILINE)


def listed_runs(output: str, zone: str) -> list[datetime]:
    """The runs the CLI listed under "Next N runs (zone):", as aware UTC times."""
    assert f"runs ({zone}):" in output, output
    found = []
    for weekday, moment, _abbreviation in LISTED_RUN.findall(output):
        local = datetime.strptime(moment, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
        assert f"{local:%a}" == weekday
        found.append(local.astimezone(UTC))
    return found


def api(console: ConsoleProcess, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx2.request(
        method,
        f"{console.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {console.token}"},
        timeout=30.0,
        **kwargs,
    )
    assert response.status_code < 300, response.text
    return response.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def test_clock_scheduler(console_process: ConsoleProcess) -> Iterator[Scheduler]:
    """A second scheduler on the console's SQLite file, on a clock the test moves."""
    engine = make_engine(f"sqlite:///{console_process.data_dir / 'surveyor.db'}")
    scheduler = Scheduler(
        Database(engine),
        clock=FakeClock(datetime.now(UTC)),
        leadership=SoleScheduler(),
        grace_sweep_every=timedelta(0),
    )
    try:
        yield scheduler
    finally:
        scheduler.close()
        engine.dispose()


def test_a_daily_scan_from_the_cli_previews_its_runs_fires_them_on_time_and_lists_them(
    console_process: ConsoleProcess, test_clock_scheduler: Scheduler, tmp_path: Path
) -> None:
    schedule = ["--every", "daily", "--time", "03:00", "--tz", "UTC"]
    template = surveyor(
        console_process, tmp_path, "task", "create", "nightly", "--targets", "127.0.0.1", *schedule
    )
    preview = api(
        console_process,
        "POST",
        "/tasks/preview",
        json={"frequency": "daily", "time": "03:00", "timezone": "UTC"},
    )
    next_five = [instant(moment) for moment in preview["occurrences"]]

    assert len(next_five) == 5
    assert all((moment.hour, moment.minute) == (3, 0) for moment in next_five)
    assert [later - earlier for earlier, later in pairwise(next_five)] == [timedelta(days=1)] * 4
    # The same schedule as previewed (the preview is a moment later: 03:00 may have passed).
    first = next_five.index(instant(template["recur_next"]))
    assert first in (0, 1)
    upcoming = next_five[first:]
    # The CLI shows the template's next five runs, starting at its next run.
    shown_runs = listed_runs(
        surveyor_says(console_process, tmp_path, "task", "show", str(template["id"])), "UTC"
    )
    assert shown_runs[: len(upcoming)] == upcoming
    assert len(shown_runs) == 5
    assert [later - earlier for earlier, later in pairwise(shown_runs)] == [timedelta(days=1)] * 4

    for occurrence in upcoming[:3]:
        assert test_clock_scheduler.tick(occurrence - SECOND).spawned == 0
        ticked = test_clock_scheduler.tick(occurrence)
        # Retention's daily run is due at 03:00 UTC too (skipped while its last one waits:
        # nothing processes here).
        at_three = (occurrence.astimezone(UTC).hour, occurrence.minute) == (3, 0)
        assert ticked.spawned >= 1
        assert ticked.spawned + ticked.skipped == (2 if at_three else 1)
        # Nothing launches it (no explorer here): after its grace period it is canceled.
        assert test_clock_scheduler.tick(occurrence + GRACE + SECOND).canceled == 1

    runs = api(console_process, "GET", f"/tasks/{template['id']}/runs")["items"]
    assert [instant(run["start_time"]) for run in runs] == list(reversed(upcoming[:3]))
    assert {run["parent_id"] for run in runs} == {template["id"]}
    assert {run["status"] for run in runs} == {"canceled"}
    assert {run["error"] for run in runs} == {
        "could not launch within its 1 hour grace period: no explorer picked it up"
    }
    from_cli = surveyor(console_process, tmp_path, "task", "runs", str(template["id"]))
    assert [run["id"] for run in from_cli] == [run["id"] for run in runs]
    shown = surveyor(console_process, tmp_path, "task", "show", str(template["id"]))
    assert instant(shown["recur_last"]) == upcoming[2]
    assert shown["recur_last_task_id"] == runs[0]["id"]
    assert instant(shown["recur_next"]) == upcoming[3]


def test_the_consoles_own_scheduler_brings_a_scan_due_at_its_start_time(
    console_process: ConsoleProcess,
) -> None:
    start = datetime.now(UTC) + timedelta(seconds=2)
    task = api(
        console_process,
        "POST",
        "/tasks",
        json={
            "name": "in two seconds",
            "params": {"targets": "127.0.0.1"},
            "start_time": start.isoformat(),
        },
    )
    assert task["wait_reason"] == "not_due"

    deadline = time.monotonic() + DUE_WITHIN_SECONDS
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(e["kind"] == "due" for e in events):
        time.sleep(0.1)
        events = api(console_process, "GET", f"/tasks/{task['id']}/events")["items"]

    due = [event for event in events if event["kind"] == "due"]
    assert due, f"not due within {DUE_WITHIN_SECONDS} s: {events}"
    assert instant(due[0]["at"]) >= start
    assert api(console_process, "GET", f"/tasks/{task['id']}")["wait_reason"] != "not_due"


def test_the_cli_previews_a_schedule_and_shows_the_next_five_runs_of_what_it_creates(
    console_process: ConsoleProcess, tmp_path: Path
) -> None:
    schedule = ["--every", "daily", "--time", "03:00", "--tz", "Europe/Paris"]

    previewed = listed_runs(
        surveyor_says(console_process, tmp_path, "task", "preview", *schedule), "Europe/Paris"
    )
    as_json = surveyor(console_process, tmp_path, "task", "preview", *schedule)
    created = surveyor_says(
        console_process, tmp_path, "task", "create", "paris", "--targets", "127.0.0.1", *schedule
    )

    assert len(previewed) == 5
    paris = ZoneInfo("Europe/Paris")
    assert all(f"{moment.astimezone(paris):%H:%M}" == "03:00" for moment in previewed)
    assert [instant(moment) for moment in as_json["occurrences"]] == previewed
    assert as_json["description"] == "every day at 03:00 Europe/Paris"
    assert "Created task" in created
    listed = listed_runs(created, "Europe/Paris")
    assert len(listed) == 5
    # The same runs as previewed (created a moment later: 03:00 may have passed meanwhile).
    start = previewed.index(listed[0])
    assert start in (0, 1)
    assert listed[: 5 - start] == previewed[start:]
    [template] = [
        task
        for task in surveyor(console_process, tmp_path, "task", "list", "--tab", "recurring")
        if task["name"] == "paris"
    ]
    assert instant(template["recur_next"]) == listed[0]


def test_the_cli_refuses_a_schedule_it_cannot_preview_naming_the_option(
    console_process: ConsoleProcess, tmp_path: Path
) -> None:
    late = run_cli(
        console_process, tmp_path, "task", "preview", "--every", "daily", "--time", "25:00"
    )
    nowhere = run_cli(
        console_process, tmp_path, "task", "preview", "--every", "daily", "--tz", "Mars/Olympus"
    )
    unsaid = run_cli(console_process, tmp_path, "task", "preview", "--time", "03:00")
    refused = run_cli(
        console_process,
        tmp_path,
        "task",
        "create",
        "bad",
        "--targets",
        "127.0.0.1",
        "--every",
        "weekly",
        "--weekdays",
        "someday",
    )

    assert late.returncode != 0
    assert "--time" in late.stderr
    assert "'25:00' is not a time of day" in late.stderr
    assert nowhere.returncode != 0
    assert "--tz" in nowhere.stderr
    assert "Mars/Olympus" in nowhere.stderr
    assert unsaid.returncode == 2
    assert "--every, --rrule or --cron" in unsaid.stderr
    assert refused.returncode != 0
    assert "--weekdays" in refused.stderr
    assert "someday" in refused.stderr
    names = [task["name"] for task in surveyor(console_process, tmp_path, "task", "list")]
    assert "bad" not in names
