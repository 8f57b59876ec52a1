"""`/api/v1/notifications`: an organization's notification rules and their delivery log, for
admins only; a rule's secret is write-only (reads say whether it is set, and since when)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from surveyor.console.auth import Admin
from surveyor.console.errors import ApiError, error_responses
from surveyor.console.schemas import MAX_ID, IdPath, Strict
from surveyor.console.state import ConsoleState, State
from surveyor.notifications.rules import (
    Attempt,
    Channel,
    Delivery,
    DeliveryStatus,
    NotificationRule,
    Trigger,
)
from surveyor.service import notifications as rules
from surveyor.service.notifications import NotificationRefused, Reason
from surveyor.store import notifications as store

router = APIRouter(prefix="/api/v1", tags=["notifications"])
_ERRORS = error_responses(400, 401, 403, 404, 409, 422)
Limit = Annotated[int, Query(ge=1, le=1000)]
After = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="the last id of the previous page")
]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="the last id of the previous (newer) page")
]
STATUS = {Reason.NOT_FOUND: 404, Reason.INVALID: 400, Reason.CONFLICT: 409}
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


def api_error(exc: NotificationRefused) -> ApiError:
    return ApiError(STATUS[exc.reason], exc.code, exc.message, exc.details)


@contextmanager
def notification_rules(state: ConsoleState) -> Iterator[Connection]:
    """One write transaction of the notification rules; a refusal becomes the API's answer."""
    try:
        with state.db.write() as conn:
            yield conn
    except NotificationRefused as exc:
        raise api_error(exc) from exc


@router.get("/notifications", response_model=list[RuleOut], responses=_ERRORS)
def list_notification_rules(
    principal: Admin, state: State, limit: Limit = 100, after: After = None
) -> Any:
    with state.db.read() as conn:
        found = store.list_rules(conn, principal.organization_id, limit=limit, after_id=after)
    return [RuleOut.of(rule) for rule in found]


@router.post("/notifications", status_code=201, response_model=RuleOut, responses=_ERRORS)
def create_notification_rule(body: RuleIn, principal: Admin, state: State) -> Any:
    """Create a rule; its secret is encrypted and never shown again."""
    with notification_rules(state) as conn:
        created = rules.create_rule(
            conn,
            principal,
            state.secret_box,
            name=body.name,
            trigger=body.trigger,
            channel=body.channel,
            target=body.target,
            options=body.options,
            secret=body.secret,
            enabled=body.enabled,
            now=state.clock.now(),
        )
    return RuleOut.of(created)


@router.get("/notifications/{rule_id}", response_model=RuleOut, responses=_ERRORS)
def get_notification_rule(rule_id: IdPath, principal: Admin, state: State) -> Any:
    try:
        with state.db.read() as conn:
            return RuleOut.of(rules.get_rule(conn, principal, rule_id))
    except NotificationRefused as exc:
        raise api_error(exc) from exc


@router.patch("/notifications/{rule_id}", response_model=RuleOut, responses=_ERRORS)
def update_notification_rule(
    rule_id: IdPath, body: RuleUpdate, principal: Admin, state: State
) -> Any:
    """Change a rule; its trigger and channel never change."""
    with notification_rules(state) as conn:
        updated = rules.update_rule(
            conn,
            principal,
            state.secret_box,
            rule_id,
            name=body.name,
            target=body.target,
            options=body.options,
            enabled=body.enabled,
            secret=body.secret,
            now=state.clock.now(),
        )
    return RuleOut.of(updated)


@router.delete("/notifications/{rule_id}", status_code=204, responses=_ERRORS)
def delete_notification_rule(rule_id: IdPath, principal: Admin, state: State) -> Response:
    with notification_rules(state) as conn:
        rules.delete_rule(conn, principal, rule_id, now=state.clock.now())
    return Response(status_code=204)


@router.get(
    "/notifications/{rule_id}/deliveries", response_model=list[DeliveryOut], responses=_ERRORS
)
def list_notification_deliveries(
    rule_id: IdPath, principal: Admin, state: State, limit: Limit = 50, before: Before = None
) -> Any:
    """The rule's deliveries, newest first, each with its attempts: when, the receiver's
    status code (HTTP, or the SMTP reply), and what went wrong."""
    try:
        with state.db.read() as conn:
            found = rules.deliveries(conn, principal, rule_id, limit=limit, before_id=before)
    except NotificationRefused as exc:
        raise api_error(exc) from exc
    return [DeliveryOut.of(delivery, attempts) for delivery, attempts in found]
