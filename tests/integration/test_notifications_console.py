"""Notifications through a running console: `/api/v1/notifications` (admins' rules, secrets
write-only, every change audited, the delivery log), and the console's own services: a
scheduled scan that could not launch is canceled by the scheduler, and the webhook arrives,
verified, at a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from surveyor.console.services import console_services
from surveyor.core.clock import FakeClock
from surveyor.notifications.delivery import notification_service
from surveyor.scheduler.loop import scheduler_service
from surveyor.store.engine import Database
from tests.integration.test_credentials_write_only import database_text, files_under
from tests.integration.test_scheduler_console import TickWatcher
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.receivers import WAIT_SECONDS, webhook_receiver

SECRET = "the receiver's shared secret"
DUE = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOOK = {
    "name": "on-call hook",
    "trigger": "task_canceled",
    "channel": "webhook",
    "target": "http://127.0.0.1:9/hook",
    "secret": SECRET,
}


def test_a_canceled_scheduled_scan_sends_a_webhook_the_receiver_verifies(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(DUE - 10 * MINUTE)
    ticks = TickWatcher()
    services = [
        scheduler_service(on_tick=ticks, longest_sleep=0.2),
        notification_service(longest_sleep=0.2),
    ]
    with (
        webhook_receiver(SECRET) as receiver,
        running_console(db, tmp_path, monkeypatch, clock=clock, background=services) as console,
    ):
        rule = console.admin.post(
            "/api/v1/notifications",
            json={**HOOK, "target": receiver.url, "options": {"scheduled_only": True}},
        )
        assert rule.status_code == 201, rule.text
        template = console.admin.post(
            "/api/v1/tasks",
            json={
                "name": "nightly",
                "params": {"targets": "127.0.0.1"},
                "grace_period": 60,
                "recur": {"frequency": "daily", "time": "03:00", "timezone": "UTC"},
            },
        ).json()
        clock.set(DUE + MINUTE / 2)  # the run is spawned; no explorer can take it
        ticks.wait_until(lambda report: report.spawned >= 1)
        clock.set(DUE + 5 * MINUTE)  # its grace period is over: the scheduler cancels it
        ticks.wait_until(lambda report: report.canceled >= 1)
        [got] = receiver.wait_for(1)
        [run] = console.admin.get(f"/api/v1/tasks/{template['id']}/runs").json()["items"]
        # The console records the answer just after the receiver gave it.
        log = delivered(console, rule.json()["id"])

    assert receiver.refused == 0
    assert got.body["event"] == "task_canceled"
    assert got.body["task"]["id"] == run["id"]
    assert got.body["task"]["status"] == run["status"] == "canceled"
    assert got.body["task"]["scheduled"] is True
    assert got.body["task"]["template_id"] == template["id"]
    assert got.body["task"]["error"] == run["error"]
    assert f"scheduled run 'nightly' was canceled: {run['error']}" == got.body["summary"]
    [delivery] = log
    assert delivery["status"] == "delivered"
    assert [attempt["status_code"] for attempt in delivery["log"]] == [204]


def test_a_stopped_one_off_scan_set_to_start_later_is_a_scheduled_task(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(DUE - 10 * MINUTE)
    services = [notification_service(longest_sleep=0.2)]
    with (
        webhook_receiver(SECRET) as receiver,
        running_console(db, tmp_path, monkeypatch, clock=clock, background=services) as console,
    ):
        rule = console.admin.post(
            "/api/v1/notifications",
            json={**HOOK, "target": receiver.url, "options": {"scheduled_only": True}},
        )
        assert rule.status_code == 201, rule.text
        now = console.admin.post(
            "/api/v1/tasks", json={"name": "right away", "params": {"targets": "127.0.0.1"}}
        ).json()
        later = console.admin.post(
            "/api/v1/tasks",
            json={
                "name": "tomorrow's sweep",
                "params": {"targets": "127.0.0.1"},
                "start_time": DUE.isoformat(),
            },
        ).json()
        for task in (now, later):
            stopped = console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
            assert stopped.status_code == 200, stopped.text
        [got] = receiver.wait_for(1)
        log = delivered(console, rule.json()["id"])

    # Only the scan set to start later counts under `scheduled_only`.
    assert receiver.refused == 0
    assert got.body["task"]["id"] == later["id"]
    assert got.body["task"]["scheduled"] is True
    assert got.body["task"]["template_id"] is None
    assert got.body["summary"] == 'scheduled task "tomorrow\'s sweep" was stopped'
    assert len(log) == 1


def delivered(console: ConsoleUnderTest, rule_id: int) -> list[dict[str, Any]]:
    """The rule's delivery log once its newest delivery is recorded as delivered (polled
    with a generous deadline: the console's service writes it)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        log: list[dict[str, Any]] = console.admin.get(
            f"/api/v1/notifications/{rule_id}/deliveries"
        ).json()
        if log and log[0]["status"] == "delivered":
            return log
        assert time.monotonic() < deadline, f"never delivered: {log}"
        time.sleep(0.05)


def test_consoles_run_the_notification_service() -> None:
    for embedded in (True, False):
        names = [service.__name__ for service in console_services(embedded=embedded)]
        assert "notifications" in names


@pytest.fixture
def console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleUnderTest]:
    with running_console(db, tmp_path, monkeypatch) as running:
        yield running


def test_an_admin_creates_edits_and_deletes_a_rule_and_the_secret_is_never_shown(
    console: ConsoleUnderTest,
) -> None:
    created = console.admin.post("/api/v1/notifications", json=HOOK)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["secret"]["set"] is True
    assert rule["options"] == {"scheduled_only": False}
    rule_id = rule["id"]

    edited = console.admin.patch(
        f"/api/v1/notifications/{rule_id}",
        json={"name": "renamed", "enabled": False, "secret": "a new secret"},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "renamed"
    assert edited.json()["enabled"] is False
    listed = console.admin.get("/api/v1/notifications").json()
    assert [r["id"] for r in listed] == [rule_id]
    assert console.admin.get(f"/api/v1/notifications/{rule_id}/deliveries").json() == []
    trail = console.admin.get("/api/v1/audit").json()
    audited = [
        (e["action"], e["details"])
        for e in trail["items"]
        if e["object_type"] == "notification_rule"
    ]
    assert [action for action, _ in audited] == ["edit", "create"]
    assert audited[0][1]["secret"] == "set"
    assert audited[0][1]["changed"] == ["enabled", "name"]

    assert console.admin.delete(f"/api/v1/notifications/{rule_id}").status_code == 204
    assert console.admin.get(f"/api/v1/notifications/{rule_id}").status_code == 404
    everything = json.dumps(
        [listed, edited.json(), console.admin.get("/api/v1/audit").json()], default=str
    )
    assert SECRET not in everything
    assert "a new secret" not in everything


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HOOK, "target": "ftp://example.test/"}, "target"),
        ({**HOOK, "secret": None}, "secret"),
        ({**HOOK, "trigger": "outlier_score", "options": {"threshold": 101}}, "threshold"),
        ({**HOOK, "options": {"minutes": 5}}, "minutes"),
        ({**HOOK, "channel": "email", "target": "ops@example.test", "options": {}}, "smtp_host"),
        ({**HOOK, "channel": "email", "target": "not an address"}, "target"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_naming_the_field(
    console: ConsoleUnderTest, body: dict[str, object], field: str
) -> None:
    refused = console.admin.post("/api/v1/notifications", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"]["field"] == field


class _Inputs(HTMLParser):
    """Each input's attributes as sent (a repeated attribute stays repeated), and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, list[tuple[str, str | None]]] = {}
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.add(str(named["id"]))
        if tag == "input" and named.get("name"):
            self.inputs[str(named["name"])] = attrs


def test_a_refused_field_with_a_hint_is_described_by_both_in_one_attribute(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console)
    form = client.post(
        "/notifications",
        data={
            "csrf_token": csrf,
            "name": "hinted",
            "trigger": "new_assets",
            "channel": "webhook",
            "target": "ftp://refused.example",
            "secret": "",
        },
    )
    assert form.status_code == 400
    page = _Inputs()
    page.feed(form.text)
    target = page.inputs["target"]
    described = [value for name, value in target if name == "aria-describedby"]
    # A second aria-describedby would be dropped by the browser, and the error never read.
    assert described == ["rule-target-hint target-error"]
    assert ("aria-invalid", "true") in target
    assert {"rule-target-hint", "target-error"} <= page.ids
    secret = [value for name, value in page.inputs["secret"] if name == "aria-describedby"]
    assert secret in (["rule-secret-hint"], ["rule-secret-hint secret-error"])


def test_names_are_unique_in_an_organization_and_rules_are_its_own(
    console: ConsoleUnderTest,
) -> None:
    mine = console.admin.post("/api/v1/notifications", json=HOOK).json()
    again = console.admin.post("/api/v1/notifications", json=HOOK)
    assert again.status_code == 409
    _other_org, other_admin = console.other_organization()
    assert other_admin.get(f"/api/v1/notifications/{mine['id']}").status_code == 404
    assert other_admin.get("/api/v1/notifications").json() == []
    theirs = other_admin.post("/api/v1/notifications", json=HOOK)
    assert theirs.status_code == 201


def test_a_rules_secret_is_stored_only_sealed_and_shown_nowhere(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api_secret, page_secret = "planted-api-secret-6c1e", "planted-page-secret-90ab"
    answers: list[str] = []
    caplog.set_level(logging.DEBUG)
    services = [notification_service(longest_sleep=0.2)]
    with (
        webhook_receiver(api_secret) as receiver,
        running_console(db, tmp_path, monkeypatch, background=services) as console,
    ):
        created = console.admin.post(
            "/api/v1/notifications", json={**HOOK, "target": receiver.url, "secret": api_secret}
        )
        rule_id = created.json()["id"]
        client, csrf = signed_in(console)
        form = client.post(
            "/notifications",
            data={
                "csrf_token": csrf,
                "name": "from the page",
                "trigger": "new_assets",
                "channel": "webhook",
                "target": "ftp://refused.example",
                "secret": page_secret,
            },
        )
        assert form.status_code == 400  # sent back with an error: the secret is not in it
        task = console.admin.post(
            "/api/v1/tasks", json={"name": "later", "start_time": "2099-01-01T00:00:00Z"}
        ).json()
        console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
        receiver.wait_for(1)
        delivered(console, rule_id)
        for response in (
            created,
            form,
            client.get(f"/notifications/{rule_id}"),
            client.get("/notifications"),
            console.admin.get(f"/api/v1/notifications/{rule_id}/deliveries"),
            console.admin.get("/api/v1/audit"),
        ):
            answers.append(response.text)
    stored = database_text(db) + "".join(
        path.read_bytes().decode("latin-1") for path in files_under(tmp_path)
    )
    for secret in (api_secret, page_secret):
        assert all(secret not in answer for answer in answers)
        assert secret not in stored
        assert secret not in caplog.text
    assert receiver.refused == 0  # yet the receiver verified the signature made with it
