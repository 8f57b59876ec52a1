"""The shapes of notification rules and their deliveries in the API (and on the pages that
show them): what is sent, and what is shown, where a rule's secret is only ever
`{"set": ..., "set_at": ...}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from surveyor.console.schemas import Strict, from_attributes, name_field
from surveyor.core.notifications import (
    Attempt,
    Channel,
    Delivery,
    DeliveryStatus,
    NotificationRule,
    Trigger,
)

_OPTIONS = (
    "by trigger: `scheduled_only` (task_canceled), `threshold` 1-100 (outlier_score), "
    "`minutes` (explorer_offline); for e-mail: `smtp_host`, `smtp_port`, `starttls`, "
    "`smtp_username`, `sender` (docs/notifications.md)"
)
_WRITE_ONLY_KEY = (
    "a webhook's signing key (required for a webhook), or the SMTP password; write-only"
)


class RuleIn(Strict):
    name: str = name_field()
    trigger: Trigger
    channel: Channel
    target: str = Field(
        min_length=1, max_length=2000, description="the webhook's URL or the e-mail address"
    )
    options: dict[str, Any] = Field(default_factory=dict, description=_OPTIONS)
    secret: str | None = Field(default=None, max_length=1000, description=_WRITE_ONLY_KEY)
    enabled: bool = True


class RuleUpdate(Strict):
    name: str | None = name_field(default=None)
    target: str | None = Field(default=None, min_length=1, max_length=2000)
    options: dict[str, Any] | None = Field(
        default=None, description="replaces the stored options as a whole"
    )
    secret: str | None = Field(
        default=None, max_length=1000, description="a new secret; absent keeps the stored one"
    )
    enabled: bool | None = None


class SecretStateOut(BaseModel):
    set: bool
    set_at: datetime | None


class RuleOut(BaseModel):
    id: int
    organization_id: int
    name: str
    trigger: Trigger
    channel: Channel
    target: str
    options: dict[str, Any]
    secret: SecretStateOut
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, rule: NotificationRule) -> RuleOut:
        return from_attributes(
            cls,
            rule,
            options=dict(rule.options),
            secret=SecretStateOut(
                set=rule.secret is not None,
                set_at=rule.secret.set_at if rule.secret is not None else None,
            ),
        )


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return from_attributes(cls, attempt)


class DeliveryOut(BaseModel):
    id: int
    rule_id: int
    event_key: str
    trigger: Trigger
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str
    payload: dict[str, Any]
    log: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Delivery, attempts: list[Attempt]) -> DeliveryOut:
        return from_attributes(
            cls,
            delivery,
            next_attempt_at=(
                delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else None
            ),
            payload=dict(delivery.payload),
            log=[AttemptOut.of(attempt) for attempt in attempts],
        )
