"""Retention (SPEC §10): every organization's daily Retention task deletes the data files of
tasks finished longer ago than its retention and keeps the younger ones, keeps every task row
and change summary, marks assets not seen for its period stale (hidden from the default asset
views, shown by `stale:true`), lists what it removed in its events, and is retried by the
next day's run when it fails; settings per organization through the API and the Settings
page, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from surveyor.core.clock import FakeClock
from surveyor.processing.worker import Worker, WorkerSettings
from surveyor.scheduler.tick import Scheduler
from surveyor.store.engine import Database
from surveyor.store.schema import tasks
from surveyor.store.taskdata import task_data_path
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.inventory_data import Place, host, queue_hosts, service

#: The console starts (and the organization gets its Retention task) at noon.
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Clocked:
    """A console on a test clock, with a scheduler and a worker on the same clock."""

    console: ConsoleUnderTest
    clock: FakeClock
    data_dir: Path
    place: Place
    scheduler: Scheduler

    @property
    def db(self) -> Database:
        return self.console.db

    def process(self, **settings: Any) -> int:
        worker = Worker(
            self.db, self.data_dir, WorkerSettings(**settings), name="test", clock=self.clock
        )
        return worker.drain()

    def scan(self, *hosts: dict[str, Any], seen: datetime) -> int:
        """A scan of these hosts (seen at `seen`), processed now: the task's id."""
        task_id = queue_hosts(
            self.db,
            self.data_dir,
            self.place,
            hosts,
            ports="22",
            finished_at=seen.isoformat().replace("+00:00", "Z"),
        )
        self.process()
        return task_id

    def template(self) -> dict[str, Any]:
        answer = self.console.admin.get(
            "/api/v1/tasks",
            params={"tab": "recurring", "search": "type:retention hidden:true"},
        )
        assert answer.status_code == 200, answer.text
        [template] = answer.json()["items"]
        return dict(template)

    def daily_run(self, at: datetime, **worker: Any) -> dict[str, Any]:
        """Move to `at` (within the grace period of that day's 03:00), let the scheduler fire
        the Retention task (earlier missed days are coalesced into this run), and process
        the run: the run as the API shows it."""
        self.clock.set(at)
        assert self.scheduler.tick(at).spawned == 1
        self.scheduler.tick(at)
        self.process(**worker)
        return self.latest_run()

    def latest_run(self) -> dict[str, Any]:
        answer = self.console.admin.get(
            "/api/v1/tasks", params={"tab": "all", "search": "type:retention", "limit": 1}
        )
        return dict(answer.json()["items"][0])

    def events(self, task_id: int) -> list[str]:
        answer = self.console.admin.get(f"/api/v1/tasks/{task_id}/events")
        assert answer.status_code == 200, answer.text
        return [event["message"] for event in answer.json()["items"]]

    def addresses(self, search: str | None = None) -> set[str]:
        params = {"limit": 500, **({"search": search} if search is not None else {})}
        answer = self.console.admin.get("/api/v1/assets", params=params)
        assert answer.status_code == 200, answer.text
        return {item["address"] for item in answer.json()["items"]}


@pytest.fixture
def clocked(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clocked]:
    clock = FakeClock(START)
    with running_console(db, tmp_path, monkeypatch, clock=clock) as console:
        site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
        scheduler = Scheduler(db, clock=clock)
        try:
            yield Clocked(
                console, clock, tmp_path, Place(console.organization_id, site_id), scheduler
            )
        finally:
            scheduler.close()


def ssh(address: str) -> dict[str, Any]:
    return host(address, services=[service(22)])


def test_every_organization_has_a_daily_retention_task_from_its_start(
    clocked: Clocked,
) -> None:
    template = clocked.template()
    assert template["name"] == "Retention"
    assert template["created_by"] == "system"
    assert template["recur_frequency"] == "daily"
    assert template["recur_next"].startswith("2026-01-02T03:00:00")
    settings = clocked.console.admin.get("/api/v1/settings/retention").json()
    assert settings == {
        "task_data_days": 90,
        "stale_after_days": 30,
        "task_id": template["id"],
        "next_run": template["recur_next"],
    }


def test_a_new_organization_gets_one_and_a_restart_adds_none(
    clocked: Clocked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = clocked.console.admin.post(
        "/api/v1/organizations", json={"name": "Branch office", "join": True}
    )
    assert created.status_code == 201, created.text
    with running_console(clocked.db, tmp_path, monkeypatch, clock=clocked.clock) as again:
        again_templates = again.admin.get(
            "/api/v1/tasks", params={"tab": "recurring", "search": "type:retention hidden:true"}
        ).json()["items"]
    assert len(again_templates) == 1
    with clocked.db.read() as conn:
        per_org = conn.execute(
            select(tasks.c.organization_id, func.count())
            .where(tasks.c.type == "retention", tasks.c.recur.is_(True))
            .group_by(tasks.c.organization_id)
        ).all()
    assert sorted(count for _org, count in per_org) == [1, 1]


def test_old_data_files_go_young_ones_stay_and_history_is_kept(clocked: Clocked) -> None:
    old = clocked.scan(ssh("127.0.0.10"), ssh("127.0.0.11"), seen=START)
    clocked.clock.set(START + 60 * DAY)
    young = clocked.scan(ssh("127.0.0.11"), ssh("127.0.0.12"), seen=START + 60 * DAY)
    old_summary = clocked.console.admin.get(f"/api/v1/tasks/{old}").json()["change_summary"]
    assert old_summary["new"] == 2

    run = clocked.daily_run(START + 100 * DAY)

    assert run["status"] == "processed", run
    assert run["created_by"] == "system"
    assert run["stats"]["data_files_deleted"] == 1
    assert not task_data_path(clocked.data_dir, old).exists()
    assert task_data_path(clocked.data_dir, young).exists()
    kept = clocked.console.admin.get(f"/api/v1/tasks/{old}").json()
    assert kept["status"] == "processed"
    assert kept["change_summary"] == old_summary
    assert kept["size_data"] == 0
    changes = clocked.console.admin.get(f"/api/v1/tasks/{old}/changes")
    assert changes.status_code == 200
    assert {item["address"] for item in changes.json()["items"]} == {"127.0.0.10", "127.0.0.11"}
    assert clocked.console.admin.get(f"/api/v1/tasks/{old}/data").status_code == 404
    assert any(
        f"deleted by Retention (task {run['id']})" in message for message in clocked.events(old)
    )
    refused = clocked.console.admin.post(f"/api/v1/tasks/{old}/reprocess")
    assert refused.status_code == 409
    assert clocked.console.admin.get(f"/api/v1/tasks/{young}/data").status_code == 200


def test_its_events_list_the_tasks_whose_data_it_deleted(clocked: Clocked) -> None:
    first = clocked.scan(ssh("127.0.0.10"), seen=START)
    second = clocked.scan(ssh("127.0.0.11"), seen=START)
    run = clocked.daily_run(START + 91 * DAY)
    messages = clocked.events(run["id"])
    assert (
        "deleted the data files of 2 tasks finished more than 90 days ago: "
        f"{first}, {second}" in messages
    )
    marked = "marked 2 assets not seen for 30 days stale"
    assert any(message.startswith(marked) for message in messages)
    assert run["stats"] == {
        "data_files_deleted": 2,
        "bytes_freed": run["stats"]["bytes_freed"],
        "assets_marked_stale": 2,
        "assets_no_longer_stale": 0,
    }
    assert run["stats"]["bytes_freed"] > 0


def test_unseen_assets_are_stale_and_hidden_until_seen_again(clocked: Clocked) -> None:
    answer = clocked.console.admin.patch(
        "/api/v1/settings/retention", json={"stale_after_days": 45}
    )
    assert answer.status_code == 200, answer.text
    clocked.scan(ssh("127.0.0.10"), ssh("127.0.0.11"), seen=START)
    clocked.clock.set(START + 60 * DAY)
    clocked.scan(ssh("127.0.0.11"), ssh("127.0.0.12"), seen=START + 60 * DAY)

    run = clocked.daily_run(START + 100 * DAY)

    assert run["stats"]["assets_marked_stale"] == 1
    assert clocked.addresses() == {"127.0.0.11", "127.0.0.12"}
    assert clocked.addresses("stale:true") == {"127.0.0.10"}
    assert clocked.addresses("stale:false OR stale:true") == {
        "127.0.0.10",
        "127.0.0.11",
        "127.0.0.12",
    }
    [stale] = clocked.console.admin.get("/api/v1/assets", params={"search": "stale:true"}).json()[
        "items"
    ]
    assert stale["stale"] is True
    assert stale["stale_since"] is not None
    client, _ = signed_in(clocked.console, "viewer")
    page = client.get("/assets")
    assert "127.0.0.11" in page.text
    assert "127.0.0.10" not in page.text
    assert "127.0.0.10" in client.get("/assets", params={"search": "stale:true"}).text
    asset_page = client.get(f"/assets/{stale['id']}")
    assert asset_page.status_code == 200
    assert "not seen for the" in asset_page.text

    clocked.scan(ssh("127.0.0.10"), seen=START + 101 * DAY)
    assert clocked.addresses() == {"127.0.0.10", "127.0.0.11", "127.0.0.12"}


def test_a_failing_run_is_canceled_in_plain_words_and_the_next_day_retries(
    clocked: Clocked,
) -> None:
    old = clocked.scan(ssh("127.0.0.10"), seen=START)
    path = task_data_path(clocked.data_dir, old)
    # Something Retention may not delete where the data file was.
    path.unlink()
    path.mkdir()
    (path / "keep").write_text("x")

    failed = clocked.daily_run(START + 100 * DAY, max_attempts=1)

    assert failed["status"] == "canceled"
    assert failed["error"].startswith("processing failed 1 times; the last error:")
    assert str(path) in failed["error"]
    (path / "keep").unlink()
    path.rmdir()
    path.write_bytes(b"data")

    retried = clocked.daily_run(START + 101 * DAY)

    assert retried["id"] != failed["id"]
    assert retried["status"] == "processed"
    assert retried["stats"]["data_files_deleted"] == 1
    assert not path.exists()


def test_admins_set_retention_and_others_read_it(clocked: Clocked) -> None:
    console = clocked.console
    viewer = console.as_role("viewer")
    assert viewer.get("/api/v1/settings/retention").json()["task_data_days"] == 90
    assert viewer.patch("/api/v1/settings/retention", json={"task_data_days": 5}).status_code == 403
    refused = console.admin.patch("/api/v1/settings/retention", json={"task_data_days": 0})
    assert refused.status_code == 422
    changed = console.admin.patch("/api/v1/settings/retention", json={"task_data_days": 7})
    assert changed.json()["task_data_days"] == 7
    assert changed.json()["stale_after_days"] == 30
    trail = console.admin.get("/api/v1/audit", params={"object_type": "retention_settings"})
    assert [entry["details"]["task_data_days"] for entry in trail.json()["items"]] == [7]
    _other, other_admin = console.other_organization()
    assert other_admin.get("/api/v1/settings/retention").json()["task_data_days"] == 90


def test_the_settings_page_shows_and_saves_retention(clocked: Clocked) -> None:
    client, csrf = signed_in(clocked.console, "admin")
    page = client.get("/settings/retention")
    assert page.status_code == 200
    assert 'value="90"' in page.text
    assert f"task {clocked.template()['id']}" in page.text
    bad = client.post(
        "/settings/retention",
        data={"csrf_token": csrf, "task_data_days": "0", "stale_after_days": "30"},
    )
    assert bad.status_code == 400
    assert "A whole number of days from 1 to 3,650." in bad.text
    saved = client.post(
        "/settings/retention",
        data={"csrf_token": csrf, "task_data_days": "30", "stale_after_days": "14"},
        follow_redirects=True,
    )
    assert saved.status_code == 200
    assert "Saved." in saved.text
    settings = clocked.console.admin.get("/api/v1/settings/retention").json()
    assert (settings["task_data_days"], settings["stale_after_days"]) == (30, 14)
    viewer, _ = signed_in(clocked.console, "viewer")
    assert viewer.get("/settings/retention").status_code == 403
