"""What a notification rule is, what it may say, how a delivery is signed and retried.

Pure rules, no I/O: the triggers and channels, the checks of a rule's target and options, the
retry schedule of a delivery, and the signature a webhook carries (docs/notifications.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from surveyor.core.field_error import FieldError
from surveyor.core.rows import Row, from_columns
from surveyor.core.sealed import StoredSecret


class Trigger(StrEnum):
    """What a rule notifies of."""

    #: A task was canceled or stopped (the `scheduled_only` option: runs of templates only).
    TASK_CANCELED = "task_canceled"
    #: Processing of a task's data found new assets (its change summary's `new` above 0).
    NEW_ASSETS = "new_assets"
    #: An Outlier calculation scored an asset at or above the `threshold` option.
    OUTLIER_SCORE = "outlier_score"
    #: An explorer has not checked in for the `minutes` option.
    EXPLORER_OFFLINE = "explorer_offline"


TRIGGER_LABELS: dict[Trigger, str] = {
    Trigger.TASK_CANCELED: "A task is canceled or stopped",
    Trigger.NEW_ASSETS: "A task finds new assets",
    Trigger.OUTLIER_SCORE: "An asset's outlier score reaches a threshold",
    Trigger.EXPLORER_OFFLINE: "An explorer is offline for some minutes",
}


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


CHANNEL_LABELS: dict[Channel, str] = {Channel.WEBHOOK: "Webhook", Channel.EMAIL: "E-mail"}


class DeliveryStatus(StrEnum):
    #: Waiting for its next attempt.
    PENDING = "pending"
    #: The receiver acknowledged it (a 2xx answer, or the SMTP server accepted it): never
    #: sent again.
    DELIVERED = "delivered"
    #: Every attempt failed; it is kept, with its attempts, for the delivery log.
    FAILED = "failed"


#: Attempts of one delivery before it is given up as failed.
MAX_ATTEMPTS = 12
#: The wait after the first failed attempt; it doubles after each, up to `LONGEST_WAIT`.
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)

DEFAULT_THRESHOLD = 60
DEFAULT_MINUTES = 10
MAX_MINUTES = 7 * 24 * 60
DEFAULT_SMTP_PORT = 587
MAX_TARGET_LENGTH = 2000

#: The webhook's headers: the signature of the body, the time it was signed, the delivery.
SIGNATURE_HEADER = "X-Surveyor-Signature"
TIMESTAMP_HEADER = "X-Surveyor-Timestamp"
DELIVERY_HEADER = "X-Surveyor-Delivery"
EVENT_HEADER = "X-Surveyor-Event"

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


class RuleInvalid(FieldError):
    """A rule that cannot be kept: the field at fault and why, in words."""


@dataclass(frozen=True)
class NotificationRule:
    id: int
    organization_id: int
    name: str
    trigger: Trigger
    channel: Channel
    target: str
    options: Mapping[str, Any]
    secret: StoredSecret | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> NotificationRule:
        secret = row["secret"]
        return from_columns(
            cls,
            row,
            options=dict(row["options"] or {}),
            secret=StoredSecret.from_column(secret) if secret else None,
        )


@dataclass(frozen=True)
class Delivery:
    id: int
    organization_id: int
    rule_id: int
    event_key: str
    trigger: Trigger
    payload: Mapping[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        return from_columns(
            cls, row, payload=dict(row["payload"]), last_error=row["last_error"] or ""
        )


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery, for its log."""

    id: int
    delivery_id: int
    at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @classmethod
    def from_row(cls, row: Row) -> Attempt:
        return from_columns(cls, row, error=row["error"] or "")


# Checking a rule


def check_target(channel: Channel, target: str) -> str:
    """The target as kept: an http(s) URL for a webhook, one address for an e-mail."""
    target = target.strip()
    if not target or len(target) > MAX_TARGET_LENGTH:
        raise RuleInvalid("target", f"give a target of at most {MAX_TARGET_LENGTH} characters")
    if channel is Channel.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RuleInvalid("target", "a webhook's target is an http:// or https:// URL")
        if any(c.isspace() for c in target):
            raise RuleInvalid("target", "a webhook's URL has no spaces")
    elif not _ADDRESS.match(target):
        raise RuleInvalid("target", "an e-mail's target is one address, such as ops@example.com")
    return target


def _whole(options: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleInvalid(name, f"{name} is a whole number from {low} to {high}")
    return value


def _flag(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise RuleInvalid(name, f"{name} is true or false")
    return value


def _text(options: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = options.get(name, "")
    if not isinstance(value, str) or len(value) > 320 or (required and not value.strip()):
        needed = "required, " if required else ""
        raise RuleInvalid(name, f"{name} is {needed}text of at most 320 characters")
    return value.strip()


#: The options each trigger and each channel takes.
TRIGGER_OPTIONS: dict[Trigger, tuple[str, ...]] = {
    Trigger.TASK_CANCELED: ("scheduled_only",),
    Trigger.NEW_ASSETS: (),
    Trigger.OUTLIER_SCORE: ("threshold",),
    Trigger.EXPLORER_OFFLINE: ("minutes",),
}
CHANNEL_OPTIONS: dict[Channel, tuple[str, ...]] = {
    Channel.WEBHOOK: (),
    Channel.EMAIL: ("smtp_host", "smtp_port", "starttls", "smtp_username", "sender"),
}


def check_options(trigger: Trigger, channel: Channel, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as kept, every one of the trigger and channel present (defaults filled
    in); an option neither takes is refused."""
    known = set(TRIGGER_OPTIONS[trigger]) | set(CHANNEL_OPTIONS[channel])
    unknown = sorted(set(options) - known)
    if unknown:
        raise RuleInvalid(unknown[0], f"{unknown[0]} is no option of this trigger and channel")
    checked: dict[str, Any] = {}
    if trigger is Trigger.TASK_CANCELED:
        checked["scheduled_only"] = _flag(options, "scheduled_only", False)
    elif trigger is Trigger.OUTLIER_SCORE:
        checked["threshold"] = _whole(options, "threshold", DEFAULT_THRESHOLD, 1, 100)
    elif trigger is Trigger.EXPLORER_OFFLINE:
        checked["minutes"] = _whole(options, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES)
    if channel is Channel.EMAIL:
        host = _text(options, "smtp_host", required=True)
        if not _HOST.match(host):
            raise RuleInvalid("smtp_host", "smtp_host is a host name or address")
        checked["smtp_host"] = host
        checked["smtp_port"] = _whole(options, "smtp_port", DEFAULT_SMTP_PORT, 1, 65535)
        checked["starttls"] = _flag(options, "starttls", True)
        checked["smtp_username"] = _text(options, "smtp_username")
        sender = _text(options, "sender")
        if sender and not _ADDRESS.match(sender):
            raise RuleInvalid("sender", "sender is one address, such as surveyor@example.com")
        checked["sender"] = sender
    return checked


# Retrying


def retry_wait(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 30 s, doubling, at most an
    hour."""
    doublings = min(max(0, attempts - 1), 20)
    wait: timedelta = FIRST_WAIT * (2**doublings)
    return min(wait, LONGEST_WAIT)


def acknowledged(status_code: int | None) -> bool:
    """A webhook receiver acknowledged a delivery: it answered 2xx."""
    return status_code is not None and 200 <= status_code < 300


# Signing


def secret_aad(rule_id: int) -> bytes:
    """What a rule's sealed secret is bound to: that rule (copied elsewhere, it does not open)."""
    return f"surveyor notification rule {rule_id} secret".encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Surveyor-Signature` value: HMAC-SHA256, keyed with the rule's secret, of the
    timestamp header's value, a dot and the body."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_matches(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of this body and timestamp (compared in constant
    time): what a receiver checks."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
