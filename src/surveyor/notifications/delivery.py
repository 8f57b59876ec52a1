"""The delivery service: watch, then send what is due, retry with backoff, log every attempt.

Each pass runs the watcher (`notifications/watcher.py`) and then sends the due deliveries of
the outbox. A sender takes a delivery's lease before sending it, so two consoles never send
one at once; it writes the attempt and the delivery's new state after the receiver answered.
A delivery acknowledged (2xx, or accepted by the SMTP server) is never sent again; one that
failed waits `retry_wait(attempts)` and is tried again, up to `MAX_ATTEMPTS`. A receiver
that was down is sent everything that waited, once each. Should the console die between a
receiver's acknowledgement and the write, the delivery is sent again after its lease ran
out: receivers tell a repeat by its `X-Surveyor-Delivery` id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection

from surveyor.core.clock import Clock
from surveyor.core.notifications import (
    MAX_ATTEMPTS,
    Channel,
    DeliveryStatus,
    NotificationRule,
    retry_wait,
    secret_aad,
)
from surveyor.notifications.senders import (
    EmailSender,
    Outgoing,
    Sender,
    SendOutcome,
    WebhookSender,
)
from surveyor.notifications.watcher import LOOKBACK, STREAM, WATCHED_CHANGES, watch
from surveyor.security.secretbox import SecretBox, SecretDamaged, WrongSecretKey
from surveyor.service.background import (
    BackgroundService,
    ServiceHost,
    finish_in_thread,
    run_passes,
)
from surveyor.store import notifications as store
from surveyor.store.change_bus import ChangeBus
from surveyor.store.changes import TaskChange
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.notifications")

#: How long a sender holds a delivery it is sending (a receiver answers within seconds).
LEASE = timedelta(minutes=2)
#: The longest the service sleeps between two passes (explorers' silences are noticed then).
LONGEST_SLEEP = 5.0
RETRY_AFTER_ERROR = 2.0
SENDS_PER_PASS = 20


def default_senders() -> dict[Channel, Sender]:
    return {Channel.WEBHOOK: WebhookSender(), Channel.EMAIL: EmailSender()}


def _open_secret(rule: NotificationRule, box: SecretBox) -> str:
    if rule.secret is None:
        return ""
    return box.open(rule.secret.sealed, aad=secret_aad(rule.id))


@dataclass
class Deliverer:
    """Sends the outbox's due deliveries on `db`, as `owner`."""

    db: Database
    box: SecretBox
    clock: Clock
    senders: Mapping[Channel, Sender] = field(default_factory=default_senders)
    owner: str = field(default_factory=lambda: f"notifier-{secrets.token_hex(6)}")

    def watch(self) -> int:
        """Queue the deliveries of what happened since the last pass."""
        with self.db.read() as conn:
            if not store.any_enabled_rule(conn) and not self._watermark_behind(conn):
                return 0  # no write transaction every few seconds for nothing
        with self.db.write() as conn:
            return watch(conn, now=self.clock.now())

    @staticmethod
    def _watermark_behind(conn: Connection) -> bool:
        """Whether task events came since the watermark (while no rule was enabled): it is
        moved on, so that a rule enabled later is not told of them."""
        position = store.watermark(conn, STREAM)
        return position is not None and store.latest_task_event_id(conn) > position + LOOKBACK

    def send_due(self, *, limit: int = SENDS_PER_PASS) -> int:
        """Send up to `limit` due deliveries; how many were attempted."""
        now = self.clock.now()
        with self.db.read() as conn:
            due = store.next_due_at(conn)
        if due is None or due > now:
            return 0
        with self.db.write() as conn:
            claimed = store.claim_due(
                conn, self.owner, now=now, lease_until=now + LEASE, limit=limit
            )
            rules = store.rules_by_id(conn, {delivery.rule_id for delivery in claimed})
        for delivery in claimed:
            rule = rules[delivery.rule_id]
            started = self.clock.monotonic()
            outcome = self._attempt(rule, delivery.id, delivery.payload)
            duration_ms = max(0, round((self.clock.monotonic() - started) * 1000))
            at = self.clock.now()
            attempts = delivery.attempts + 1
            if outcome.delivered:
                status, next_at = DeliveryStatus.DELIVERED, at
            elif attempts >= MAX_ATTEMPTS:
                status, next_at = DeliveryStatus.FAILED, at
            else:
                status, next_at = DeliveryStatus.PENDING, at + retry_wait(attempts)
            with self.db.write() as conn:
                store.record_attempt(
                    conn,
                    delivery.id,
                    self.owner,
                    at=at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=duration_ms,
                    status=status,
                    next_attempt_at=next_at,
                )
        return len(claimed)

    def _attempt(
        self, rule: NotificationRule, delivery_id: int, payload: Mapping[str, Any]
    ) -> SendOutcome:
        try:
            secret = _open_secret(rule, self.box)
        except WrongSecretKey as exc:
            return SendOutcome(False, None, f"the rule's secret was encrypted with {exc}")
        except SecretDamaged:
            return SendOutcome(False, None, "the rule's secret does not decrypt: set it again")
        timestamp = int(self.clock.now().timestamp())
        try:
            outgoing = Outgoing(rule, delivery_id, payload, secret, timestamp)
            return self.senders[rule.channel].send(outgoing)
        except Exception as exc:  # a sender's bug must not stop the service
            log.exception("sending notification %d failed unexpectedly", delivery_id)
            return SendOutcome(False, None, f"sending failed unexpectedly ({type(exc).__name__})")

    def seconds_until_due(self, longest: float) -> float:
        with self.db.read() as conn:
            due = store.next_due_at(conn)
        if due is None:
            return longest
        return max(0.0, min(longest, (due - self.clock.now()).total_seconds()))

    def run_pass(self, longest: float) -> float:
        """Watch, send what is due; the seconds to sleep before the next pass."""
        self.watch()
        if self.send_due() >= SENDS_PER_PASS:
            return 0.0
        return self.seconds_until_due(longest)

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()


def _wakes(change: TaskChange) -> bool:
    return change.status in WATCHED_CHANGES


async def run_deliverer(
    deliverer: Deliverer,
    *,
    changes: ChangeBus | None = None,
    longest_sleep: float = LONGEST_SLEEP,
) -> None:
    """Pass after pass until cancelled; a task reaching a watched status (on the change bus
    `changes`) and the clock jumping (a test's) cut a sleep short. A pass in progress is let
    finish before cancellation completes."""

    async def one_pass() -> float:
        try:
            return await finish_in_thread(partial(deliverer.run_pass, longest_sleep))
        except Exception:
            log.exception("a notification pass failed; trying again in %s s", RETRY_AFTER_ERROR)
            return RETRY_AFTER_ERROR

    try:
        await run_passes(one_pass, clock=deliverer.clock, changes=changes, wakes=_wakes)
    finally:
        deliverer.close()


class NotificationHost(ServiceHost, Protocol):
    """A service host that also holds the key of the rules' secrets (the console)."""

    @property
    def secret_box(self) -> SecretBox: ...


def notification_service(
    *,
    senders: Mapping[Channel, Sender] | None = None,
    longest_sleep: float = LONGEST_SLEEP,
) -> BackgroundService[NotificationHost]:
    """The background service sending its host's notifications."""

    async def notifications(host: NotificationHost) -> None:
        deliverer = Deliverer(
            host.db,
            host.secret_box,
            host.clock,
            senders=dict(senders) if senders is not None else default_senders(),
        )
        await run_deliverer(deliverer, changes=host.changes, longest_sleep=longest_sleep)

    return notifications
