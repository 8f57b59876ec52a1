"""`/api/v1/notifications`: an organization's notification rules and their delivery log, for
admins only; a rule's secret is write-only (reads say whether it is set, and since when)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from surveyor.console.auth import Admin
from surveyor.console.errors import error_responses
from surveyor.console.notification_schemas import DeliveryOut, RuleIn, RuleOut, RuleUpdate
from surveyor.console.refusals import deleted, reading, writing
from surveyor.console.schemas import MAX_ID, After, IdPath, Limit
from surveyor.console.state import State
from surveyor.service import notifications as rules
from surveyor.store import notifications as store

router = APIRouter(
    prefix="/api/v1",
    tags=["notifications"],
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="the last id of the previous (newer) page")
]


@router.get("/notifications", response_model=list[RuleOut])
def list_notification_rules(
    principal: Admin, state: State, limit: Limit = 100, after: After = None
) -> Any:
    with state.db.read() as conn:
        found = store.list_rules(conn, principal.organization_id, limit=limit, after_id=after)
    return [RuleOut.of(rule) for rule in found]


@router.post("/notifications", status_code=201, response_model=RuleOut)
def create_notification_rule(body: RuleIn, principal: Admin, state: State) -> Any:
    """Create a rule; its secret is encrypted and never shown again."""
    with writing(state) as conn:
        created = rules.create_rule(
            conn,
            principal,
            state.secret_box,
            **body.model_dump(),
            now=state.clock.now(),
        )
    return RuleOut.of(created)


@router.get("/notifications/{rule_id}", response_model=RuleOut)
def get_notification_rule(rule_id: IdPath, principal: Admin, state: State) -> Any:
    with reading(state) as conn:
        return RuleOut.of(rules.get_rule(conn, principal, rule_id))


@router.patch("/notifications/{rule_id}", response_model=RuleOut)
def update_notification_rule(
    rule_id: IdPath, body: RuleUpdate, principal: Admin, state: State
) -> Any:
    """Change a rule; its trigger and channel never change."""
    with writing(state) as conn:
        updated = rules.update_rule(
            conn,
            principal,
            state.secret_box,
            rule_id,
            **body.model_dump(),
            now=state.clock.now(),
        )
    return RuleOut.of(updated)


@router.delete("/notifications/{rule_id}", status_code=204)
def delete_notification_rule(rule_id: IdPath, principal: Admin, state: State) -> Response:
    return deleted(state, principal, rules.delete_rule, rule_id)


@router.get("/notifications/{rule_id}/deliveries", response_model=list[DeliveryOut])
def list_notification_deliveries(
    rule_id: IdPath, principal: Admin, state: State, limit: Limit = 50, before: Before = None
) -> Any:
    """The rule's deliveries, newest first, each with its attempts: when, the receiver's
    status code (HTTP, or the SMTP reply), and what went wrong."""
    with reading(state) as conn:
        found = rules.deliveries(conn, principal, rule_id, limit=limit, before_id=before)
    return [DeliveryOut.of(delivery, attempts) for delivery, attempts in found]
