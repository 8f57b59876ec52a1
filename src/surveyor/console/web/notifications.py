"""The Notifications pages (admins only): the organization's notification rules, creating,
editing and deleting them, and each rule's delivery log, through the same rules as
`/api/v1/notifications`.

A rule's secret input is a password field that is never filled in: a page shows only whether
a secret is set and since when, and on an edit a secret left blank keeps the stored one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response

from surveyor.console.notification_schemas import DeliveryOut, RuleOut
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import sentence
from surveyor.console.web.pages import ResourcePages
from surveyor.console.web.refusals import missing_is_404, owned_row
from surveyor.console.web.secret_forms import SecretForms
from surveyor.console.web.session import CheckedPrincipal, require_role
from surveyor.core.notifications import (
    CHANNEL_LABELS,
    CHANNEL_OPTIONS,
    DEFAULT_MINUTES,
    DEFAULT_SMTP_PORT,
    DEFAULT_THRESHOLD,
    TRIGGER_LABELS,
    TRIGGER_OPTIONS,
    Channel,
    Trigger,
)
from surveyor.service import notifications as rules
from surveyor.service.notifications import NotificationRefused
from surveyor.store import notifications as store
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/notifications", "rule_id", Role.ADMIN)
#: The delivery log a rule's page shows.
LOG_LENGTH = 50
_NUMBERS = ("threshold", "minutes", "smtp_port")
_FLAGS = ("scheduled_only", "starttls")
_TEXTS = ("smtp_host", "smtp_username", "sender")
_BLANK_FORM: dict[str, Any] = {
    "name": "",
    "trigger": Trigger.TASK_CANCELED.value,
    "channel": Channel.WEBHOOK.value,
    "target": "",
    "enabled": True,
    "options": {
        "threshold": str(DEFAULT_THRESHOLD),
        "minutes": str(DEFAULT_MINUTES),
        "smtp_port": str(DEFAULT_SMTP_PORT),
        "starttls": True,
        "scheduled_only": False,
    },
}


def _labels() -> dict[str, Any]:
    return {
        "trigger_labels": {trigger.value: label for trigger, label in TRIGGER_LABELS.items()},
        "channel_labels": {channel.value: label for channel, label in CHANNEL_LABELS.items()},
    }


def _list_context(
    state: ConsoleState,
    principal: Principal,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    with state.db.read() as conn:
        found = store.list_rules(conn, principal.organization_id, limit=1000)
    return {
        "rules": [RuleOut.of(rule) for rule in found],
        "form": form or _BLANK_FORM,
        "errors": errors or {},
        **_labels(),
    }


def _rule_context(
    state: ConsoleState,
    principal: Principal,
    rule_id: int,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    with missing_is_404(), state.db.read() as conn:
        rule = RuleOut.of(rules.get_rule(conn, principal, rule_id))
        log = rules.deliveries(conn, principal, rule_id, limit=LOG_LENGTH)
    options = {**_BLANK_FORM["options"], **{k: _shown_option(v) for k, v in rule.options.items()}}
    return {
        "rule": rule,
        "deliveries": [DeliveryOut.of(delivery, attempts) for delivery, attempts in log],
        "form": form
        or {"name": rule.name, "target": rule.target, "enabled": rule.enabled, "options": options},
        "errors": errors or {},
        "saved": saved,
        "takes": set(TRIGGER_OPTIONS[rule.trigger]) | set(CHANNEL_OPTIONS[rule.channel]),
        **_labels(),
    }


def _shown_option(value: Any) -> Any:
    return value if isinstance(value, bool) else str(value)


async def _submitted(request: Request) -> dict[str, Any]:
    """The form as typed (every field as text, the check boxes as booleans)."""
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    secret = form.get("secret")
    return {
        "name": text("name"),
        "trigger": text("trigger"),
        "channel": text("channel"),
        "target": text("target"),
        "enabled": form.get("enabled") is not None,
        "secret": secret if isinstance(secret, str) else "",
        "options": {
            **{name: text(name) for name in (*_NUMBERS, *_TEXTS)},
            **{name: form.get(name) is not None for name in _FLAGS},
        },
    }


def _options_for(
    trigger: Trigger, channel: Channel, typed: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The options the trigger and channel take, from the form; errors by field."""
    takes = set(TRIGGER_OPTIONS[trigger]) | set(CHANNEL_OPTIONS[channel])
    options: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in sorted(takes):
        value = typed.get(name)
        if name in _NUMBERS:
            if not isinstance(value, str) or not value.isdigit() or len(value) > 6:
                errors[name] = "Give a whole number."
                continue
            options[name] = int(value)
        elif name in _FLAGS:
            options[name] = bool(value)
        elif value:
            options[name] = value
    return options, errors


def _refusal_errors(exc: NotificationRefused) -> dict[str, str]:
    return {exc.field or "name": sentence(exc.message)}


def _shown(submitted: Mapping[str, Any]) -> dict[str, Any]:
    """A form sent back: everything but the secret."""
    return {key: value for key, value in submitted.items() if key != "secret"}


def _values(submitted: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """What the rules take from a form, but for the trigger and channel (which only a new
    rule is given); a secret left blank is none: on an edit, the stored secret stays."""
    return {
        "name": submitted["name"],
        "target": submitted["target"],
        "options": options,
        "enabled": submitted["enabled"],
        "secret": submitted["secret"] or None,
    }


LIST = PAGES.list_page("notifications.html", _list_context)
ITEM = PAGES.item_page("notification.html", _rule_context)
FORMS = SecretForms(PAGES, LIST, ITEM, rules.create_rule, rules.update_rule, NotificationRefused)


@router.post("/notifications")
async def create_notification_rule(
    request: Request, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    submitted = await _submitted(request)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    trigger = next((t for t in Trigger if t.value == submitted["trigger"]), None)
    channel = next((c for c in Channel if c.value == submitted["channel"]), None)
    if trigger is None:
        errors["trigger"] = "Choose what to notify of."
    if channel is None:
        errors["channel"] = "Choose a channel."
    if trigger is not None and channel is not None:
        options, errors = _options_for(trigger, channel, submitted["options"])
        values = {**_values(submitted, options), "trigger": trigger, "channel": channel}
    return await FORMS.create(
        request,
        state,
        principal,
        values,
        errors=errors,
        shown=_shown(submitted),
        refusal_errors=_refusal_errors,
    )


@router.post("/notifications/{rule_id:int}")
async def edit_notification_rule(
    request: Request, rule_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    rule = owned_row(state, principal, store.get_rule, rule_id, "notification rule")
    submitted = await _submitted(request)
    options, errors = _options_for(rule.trigger, rule.channel, submitted["options"])
    return await FORMS.edit(
        request,
        state,
        principal,
        rule_id,
        _values(submitted, options),
        errors=errors,
        shown=_shown(submitted),
        refusal_errors=_refusal_errors,
    )


def _delete_confirmation(state: ConsoleState, principal: Principal, rule_id: int) -> Confirmation:
    rule = _rule_context(state, principal, rule_id)["rule"]
    return Confirmation(
        title=f"Delete notification rule “{rule.name}”?",
        consequences=[
            "Nothing more is sent for it, including deliveries still waiting to be retried.",
            "Its delivery log is deleted with it; the audit trail keeps the rule's history.",
        ],
        button="Delete rule",
        cancel=f"/notifications/{rule_id}",
    )


PAGES.deletion(_delete_confirmation, rules.delete_rule)
