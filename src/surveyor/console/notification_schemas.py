"""The shapes of notification rules and their deliveries in the API (and on the pages that
show them): what is sent, and what is shown, where a rule's secret is only ever
`{"set": ..., "set_at": ...}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from surveyor.console.schemas import Strict
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


def _name(**kwargs: Any) -> Any:
    return Field(min_length=1, max_length=200, pattern=r"\S", **kwargs)


class RuleIn(Strict):
    name: str = _name()
    trigger: Trigger
    channel: Channel
    target: str = Field(
        min_length=1, max_length=2000, description="the webhook's URL or the e-mail address"
    )
    options: dict[str, Any] = Field(default_factory=dict, description=_OPTIONS)
    secret: str | None = Field(default=None, max_length=1000, description=_WRITE_ONLY_KEY)
    enabled: bool = True


class RuleUpdate(Strict):
    name: str | None = _name(default=None)
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
        return cls(
            id=rule.id,
            organization_id=rule.organization_id,
            name=rule.name,
            trigger=rule.trigger,
            channel=rule.channel,
            target=rule.target,
            options=dict(rule.options),
            secret=SecretStateOut(
                set=rule.secret is not None,
                set_at=rule.secret.set_at if rule.secret is not None else None,
            ),
            enabled=rule.enabled,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str
    duration_ms: int

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


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
        return cls(
            id=delivery.id,
            rule_id=delivery.rule_id,
            event_key=delivery.event_key,
            trigger=delivery.trigger,
            status=delivery.status,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            next_attempt_at=(
                delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else None
            ),
            delivered_at=delivery.delivered_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            payload=dict(delivery.payload),
            log=[AttemptOut.of(attempt) for attempt in attempts],
        )
