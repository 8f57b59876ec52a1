"""Notifications end to end on each backend, with real receivers on 127.0.0.1: rules watch
task events and explorers, the outbox holds each delivery once, the delivery service signs,
sends, retries with backoff and logs every attempt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from surveyor.core.clock import FakeClock
from surveyor.core.notifications import (
    MAX_ATTEMPTS,
    Channel,
    DeliveryStatus,
    Trigger,
    retry_wait,
)
from surveyor.core.tasks import TaskStatus
from surveyor.notifications.delivery import Deliverer
from surveyor.notifications.senders import EmailSender, WebhookSender
from surveyor.security.secretbox import SecretBox, new_key
from surveyor.service import notifications as rules
from surveyor.store import accounts
from surveyor.store import notifications as store
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal, Role
from surveyor.store.engine import Database
from surveyor.store.explorers import create_explorer
from surveyor.store.schema import notification_attempts
from tests.support.inventory_data import Place, host, make_place, process_all, queue_hosts, service
from tests.support.receivers import (
    free_port,
    self_signed,
    smtp_receiver,
    trusting,
    webhook_receiver,
)

SECRET = "a shared webhook secret"
START = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Setting:
    db: Database
    place: Place
    admin: Principal
    box: SecretBox
    clock: FakeClock
    deliverer: Deliverer

    def rule(self, trigger: Trigger, channel: Channel, target: str, **extra: Any) -> int:
        with self.db.write() as conn:
            return rules.create_rule(
                conn,
                self.admin,
                self.box,
                name=f"{trigger.value} to {target}",
                trigger=trigger,
                channel=channel,
                target=target,
                options=extra.pop("options", {}),
                secret=extra.pop("secret", SECRET),
                now=self.clock.now(),
            ).id

    def task(
        self, name: str, *, parent_id: int | None = None, starts_in: timedelta = timedelta(days=1)
    ) -> int:
        with self.db.write() as conn:
            return task_store.create_task(
                conn,
                {
                    "organization_id": self.place.organization_id,
                    "site_id": self.place.site_id,
                    "name": name,
                    "type": "scan",
                    "params": {"targets": "127.0.0.1"},
                    "start_time": self.clock.now() + starts_in,
                    **({"parent_id": parent_id} if parent_id else {}),
                },
                actor="test",
                now=self.clock.now(),
            ).id

    def end(self, task_id: int, status: TaskStatus, error: str = "") -> None:
        with self.db.write() as conn:
            task_store.transition(
                conn,
                self.place.organization_id,
                task_id,
                status,
                actor="scheduler",
                message=error or "stopped",
                changes={"error": error} if error else None,
                now=self.clock.now(),
            )

    def deliveries(self) -> list[Any]:
        with self.db.read() as conn:
            return store.deliveries_of_organization(conn, self.place.organization_id)

    def attempts(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(notification_attempts)).scalar_one()
            )

    def run_pass(self) -> None:
        self.deliverer.watch()
        self.deliverer.send_due()


@pytest.fixture
def setting(db: Database, tmp_path: Path) -> Iterator[Setting]:
    place = make_place(db)
    with db.write() as conn:
        user = accounts.create_user(conn, "ops@example.test", password=None)
        accounts.set_membership(conn, place.organization_id, user["id"], Role.ADMIN)
    admin = Principal(user["id"], "ops@example.test", place.organization_id, Role.ADMIN, False)
    box = SecretBox(new_key())
    clock = FakeClock(START)
    deliverer = Deliverer(
        db,
        box,
        clock,
        senders={
            Channel.WEBHOOK: WebhookSender(),
            Channel.EMAIL: EmailSender(tls_context=trusting(self_signed(tmp_path)[0])),
        },
    )
    yield Setting(db, place, admin, box, clock, deliverer)
    deliverer.close()


def test_a_canceled_scheduled_run_posts_a_signed_webhook_the_receiver_verifies(
    setting: Setting,
) -> None:
    with webhook_receiver(SECRET) as receiver:
        rule_id = setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, receiver.url)
        template = setting.task("nightly")
        run = setting.task("nightly", parent_id=template)
        setting.end(run, TaskStatus.CANCELED, "its explorer was offline")
        setting.run_pass()
        [got] = receiver.wait_for(1)
    assert receiver.refused == 0
    assert got.body["event"] == "task_canceled"
    assert got.body["task"]["id"] == run
    assert got.body["task"]["scheduled"] is True
    assert got.body["task"]["error"] == "its explorer was offline"
    assert got.body["rule"] == {"id": rule_id, "name": f"task_canceled to {receiver.url}"}
    assert "was canceled: its explorer was offline" in got.body["summary"]
    [delivery] = setting.deliveries()
    assert got.delivery_id == str(delivery.id) == str(got.body["delivery_id"])
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 204


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried_not_lost(setting: Setting) -> None:
    with webhook_receiver("the receiver's other secret") as receiver:
        setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, receiver.url)
        setting.end(setting.task("one-off"), TaskStatus.STOPPED)
        setting.run_pass()
        with setting.db.read() as conn:
            [delivery] = store.deliveries_of_organization(conn, setting.place.organization_id)
            log = store.attempts_of(conn, [delivery.id])[delivery.id]
    assert receiver.received == []
    assert receiver.refused == 1
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.next_attempt_at == setting.clock.now() + retry_wait(1)
    assert [(a.status_code, a.error.startswith("HTTP 401")) for a in log] == [(401, True)]


def test_a_receiver_down_for_a_while_gets_everything_once_when_it_comes_back(
    setting: Setting,
) -> None:
    with webhook_receiver(SECRET, started=False) as receiver:
        setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, receiver.url)
        tasks = [setting.task(f"scan {n}") for n in range(3)]
        for task_id in tasks:
            setting.end(task_id, TaskStatus.CANCELED, "canceled by hand")
        # Down: every attempt is refused at the door, logged, and waits longer each time.
        for attempt in (1, 2, 3):
            setting.run_pass()
            assert [d.attempts for d in setting.deliveries()] == [attempt] * 3
            setting.deliverer.send_due()  # not yet due again: nothing is sent
            assert setting.attempts() == 3 * attempt
            setting.clock.advance(retry_wait(attempt))
        assert all(d.status is DeliveryStatus.PENDING for d in setting.deliveries())
        assert all(d.last_status_code is None and d.last_error for d in setting.deliveries())

        receiver.start()
        setting.run_pass()
        got = receiver.wait_for(3)
        # Acknowledged deliveries are never sent again, however long the service runs.
        for _ in range(3):
            setting.clock.advance(timedelta(hours=2))
            setting.run_pass()
    assert sorted(r.body["task"]["id"] for r in receiver.received) == tasks
    assert len(got) == len(receiver.received) == 3
    assert all(d.status is DeliveryStatus.DELIVERED for d in setting.deliveries())
    assert setting.attempts() == 3 * 4


def test_a_delivery_is_given_up_after_its_last_attempt_and_kept_with_its_log(
    setting: Setting,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, url)
    setting.end(setting.task("scan"), TaskStatus.CANCELED)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        setting.run_pass()
        setting.clock.advance(retry_wait(attempt))
    setting.run_pass()
    [delivery] = setting.deliveries()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == MAX_ATTEMPTS == setting.attempts()


def test_reading_the_same_events_again_never_queues_a_second_delivery(setting: Setting) -> None:
    with webhook_receiver(SECRET) as receiver:
        setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, receiver.url)
        setting.end(setting.task("scan"), TaskStatus.CANCELED)
        other = Deliverer(setting.db, setting.box, setting.clock)  # a second console
        assert setting.deliverer.watch() == 1
        assert other.watch() == 0
        with setting.db.write() as conn:  # its watermark lost: it reads everything again
            store.set_watermark(conn, "task_events", 0)
        assert setting.deliverer.watch() == 0
        other.send_due()
        setting.deliverer.send_due()
        receiver.wait_for(1)
        other.close()
    assert len(setting.deliveries()) == len(receiver.received) == 1


def test_only_scheduled_runs_when_the_rule_says_so_and_only_what_came_after_the_rule(
    setting: Setting,
) -> None:
    before = setting.task("canceled before the rule existed")
    setting.end(before, TaskStatus.CANCELED)
    setting.clock.advance(timedelta(seconds=1))
    setting.rule(
        Trigger.TASK_CANCELED,
        Channel.WEBHOOK,
        "http://127.0.0.1:9/unused",
        options={"scheduled_only": True},
    )
    template = setting.task("nightly")
    setting.end(setting.task("right away", starts_in=timedelta(0)), TaskStatus.CANCELED)
    later = setting.task("one-off, set to start tomorrow")
    setting.end(later, TaskStatus.CANCELED)
    run = setting.task("nightly", parent_id=template)
    setting.end(run, TaskStatus.STOPPED)
    setting.deliverer.watch()
    # A task started now is not scheduled; a one-off set to start later, and a run, are.
    assert [d.payload["task"]["id"] for d in setting.deliveries()] == [later, run]


def test_new_assets_and_outlier_scores_are_told_of_after_processing(
    setting: Setting, tmp_path: Path
) -> None:
    with webhook_receiver(SECRET) as receiver:
        setting.rule(Trigger.NEW_ASSETS, Channel.WEBHOOK, receiver.url)
        setting.rule(
            Trigger.OUTLIER_SCORE, Channel.WEBHOOK, receiver.url, options={"threshold": 30}
        )
        alike = [host(f"127.0.0.{n}", services=[service(22), service(80)]) for n in range(1, 9)]
        odd = host("127.0.0.50", hostnames=["odd.lab"], services=[service(23), service(6667)])
        task_id = queue_hosts(setting.db, tmp_path, setting.place, [*alike, odd])
        process_all(setting.db, tmp_path)  # the scan, then the Outlier calculation it queued
        setting.run_pass()
        got = receiver.wait_for(2)
    new = [r.body for r in got if r.body["event"] == "new_assets"]
    outliers = [r.body for r in got if r.body["event"] == "outlier_score"]
    assert [(b["task"]["id"], b["new_assets"]) for b in new] == [(task_id, 9)]
    assert "found 9 new assets" in new[0]["summary"]
    assert outliers
    assert outliers[0]["asset"]["address"] == "127.0.0.50"
    assert outliers[0]["asset"]["outlier"] >= 30
    assert outliers[0]["asset"]["reasons"]
    assert all(b["asset"]["outlier"] >= 30 for b in outliers)


def test_an_explorer_silent_for_the_rules_minutes_is_told_of_once_per_silence(
    setting: Setting,
) -> None:
    setting.rule(
        Trigger.EXPLORER_OFFLINE,
        Channel.WEBHOOK,
        "http://127.0.0.1:9/unused",
        options={"minutes": 15},
    )
    with setting.db.write() as conn:
        explorer, _secret = create_explorer(
            conn,
            setting.place.organization_id,
            {"name": "branch", "last_checkin_at": setting.clock.now()},
            now=setting.clock.now(),
        )
    setting.clock.advance(timedelta(minutes=14))
    setting.deliverer.watch()
    assert setting.deliveries() == []
    setting.clock.advance(timedelta(minutes=2))
    setting.deliverer.watch()
    setting.deliverer.watch()
    [told] = setting.deliveries()
    assert told.payload["explorer"]["id"] == explorer.id
    assert "'branch' has been offline for 15 minutes" in told.payload["summary"]


def test_an_email_goes_through_a_real_smtp_server_over_starttls(
    setting: Setting, tmp_path: Path
) -> None:
    with smtp_receiver(tls=self_signed(tmp_path)) as smtp:
        setting.rule(
            Trigger.TASK_CANCELED,
            Channel.EMAIL,
            "oncall@example.test",
            secret=None,
            options={
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "sender": "surveyor@example.test",
            },
        )
        setting.end(setting.task("nightly scan"), TaskStatus.CANCELED, "its explorer was busy")
        setting.run_pass()
        [(envelope, message, over_tls)] = smtp.wait_for(1)
    assert over_tls
    assert envelope.rcpt_tos == ["oncall@example.test"]
    assert message["From"] == "surveyor@example.test"
    assert "'nightly scan' was canceled: its explorer was busy" in message["Subject"]
    [delivery] = setting.deliveries()
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 250


def test_an_email_without_starttls_when_the_rule_says_so(setting: Setting) -> None:
    with smtp_receiver() as smtp:
        setting.rule(
            Trigger.TASK_CANCELED,
            Channel.EMAIL,
            "oncall@example.test",
            secret=None,
            options={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "starttls": False},
        )
        setting.end(setting.task("scan"), TaskStatus.STOPPED)
        setting.run_pass()
        [(_envelope, message, over_tls)] = smtp.wait_for(1)
    assert not over_tls
    assert "was stopped" in message["Subject"]


def test_after_a_key_rotation_deliveries_are_still_signed_with_the_rules_secret(
    setting: Setting,
) -> None:
    with webhook_receiver(SECRET) as receiver:
        setting.rule(Trigger.TASK_CANCELED, Channel.WEBHOOK, receiver.url)
        rotated = SecretBox(new_key())
        with setting.db.write() as conn:
            assert rules.rotate_rule_secrets(conn, setting.box, rotated) == 1
            assert rules.rotate_rule_secrets(conn, setting.box, rotated) == 0  # done already
        on_new_key = Deliverer(setting.db, rotated, setting.clock)
        setting.end(setting.task("scan"), TaskStatus.CANCELED)
        on_new_key.watch()
        on_new_key.send_due()
        on_new_key.close()
        receiver.wait_for(1)
    assert receiver.refused == 0
