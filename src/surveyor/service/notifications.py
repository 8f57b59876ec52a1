"""Notification rules: creating, editing and deleting them, and reading their deliveries, for
`/api/v1/notifications` and the Notifications page alike (admins only).

A rule's secret (a webhook's signing key, an SMTP password) is sealed with the console's key
(`security/secretbox.py`) before it reaches the store and opened only to send a delivery; it
is never returned, logged or audited. On an edit, a secret given replaces the stored one,
an empty one clears it, and a secret not given stays. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.core.notifications import (
    Attempt,
    Channel,
    Delivery,
    NotificationRule,
    RuleInvalid,
    Trigger,
    check_options,
    check_target,
    secret_aad,
)
from surveyor.core.sealed import StoredSecret
from surveyor.notifications.watcher import STREAM
from surveyor.security.secretbox import SecretBox, SecretDamaged, WrongSecretKey, sealed_key_id
from surveyor.service.audit import record
from surveyor.service.refusals import Reason, Refused
from surveyor.store import notifications as store
from surveyor.store.accounts import Principal
from surveyor.store.records import Conflict

MAX_NAME = 200
MAX_SECRET = 1000


class NotificationRefused(Refused):
    """A refused action on a notification rule."""

    noun = "notification rule"


def _invalid(message: str, field: str | None) -> NotificationRefused:
    details = {"field": field} if field else None
    return NotificationRefused(Reason.INVALID, "invalid_notification", message, details)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise _invalid(f"a name has 1 to {MAX_NAME} characters", "name")
    return name


def _check_secret(channel: Channel, secret: str | None, *, required: bool) -> None:
    if secret is not None and len(secret) > MAX_SECRET:
        raise _invalid(f"a secret has at most {MAX_SECRET} characters", "secret")
    if required and channel is Channel.WEBHOOK and not secret:
        raise _invalid("a webhook needs a secret to sign its deliveries with", "secret")


def _seal(box: SecretBox, rule_id: int, secret: str, now: datetime) -> StoredSecret:
    return StoredSecret(box.seal(secret, aad=secret_aad(rule_id)), now)


def create_rule(
    conn: Connection,
    actor: Principal,
    box: SecretBox,
    *,
    name: str,
    trigger: Trigger,
    channel: Channel,
    target: str,
    options: Mapping[str, Any],
    secret: str | None,
    enabled: bool = True,
    now: datetime,
) -> NotificationRule:
    name = _check_name(name)
    try:
        target = check_target(channel, target)
        checked = check_options(trigger, channel, options)
    except RuleInvalid as exc:
        raise _invalid(exc.message, exc.field) from exc
    _check_secret(channel, secret, required=True)
    try:
        rule_id = store.create_rule(
            conn,
            actor.organization_id,
            name=name,
            trigger=trigger,
            channel=channel,
            target=target,
            options=checked,
            enabled=enabled,
            now=now,
        )
    except Conflict as exc:
        raise NotificationRefused.name_taken(name) from exc
    if secret:
        sealed = {"secret": _seal(box, rule_id, secret, now)}
        store.update_rule(conn, actor.organization_id, rule_id, sealed, now=now)
    if store.watermark(conn, STREAM) is None:
        # The first rule ever: the watcher reads the task events from here on.
        store.set_watermark(conn, STREAM, store.latest_task_event_id(conn))
    record(
        conn,
        actor,
        "create",
        "notification_rule",
        rule_id,
        now=now,
        details={
            "name": name,
            "trigger": trigger.value,
            "channel": channel.value,
            "target": target,
            "options": checked,
            "enabled": enabled,
            "secret_set": bool(secret),
        },
    )
    return get_rule(conn, actor, rule_id)


def get_rule(conn: Connection, actor: Principal, rule_id: int) -> NotificationRule:
    found = store.get_rule(conn, actor.organization_id, rule_id)
    return NotificationRefused.require_found(found, rule_id)


def update_rule(
    conn: Connection,
    actor: Principal,
    box: SecretBox,
    rule_id: int,
    *,
    name: str | None = None,
    target: str | None = None,
    options: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
    now: datetime,
) -> NotificationRule:
    """Change a rule; its trigger and channel never change. Options given replace the
    stored ones as a whole. Audits the names of what changed."""
    current = get_rule(conn, actor, rule_id)
    changes: dict[str, Any] = {}
    try:
        if name is not None and _check_name(name) != current.name:
            changes["name"] = _check_name(name)
        if target is not None and check_target(current.channel, target) != current.target:
            changes["target"] = check_target(current.channel, target)
        if options is not None:
            checked = check_options(current.trigger, current.channel, options)
            if checked != dict(current.options):
                changes["options"] = checked
    except RuleInvalid as exc:
        raise _invalid(exc.message, exc.field) from exc
    if enabled is not None and enabled != current.enabled:
        changes["enabled"] = enabled
    secret_change = ""
    if secret is not None:
        _check_secret(current.channel, secret, required=True)
        changes["secret"] = _seal(box, rule_id, secret, now) if secret else None
        secret_change = "set" if secret else "cleared"
    if changes:
        try:
            store.update_rule(conn, actor.organization_id, rule_id, changes, now=now)
        except Conflict as exc:
            raise NotificationRefused.name_taken(name or "") from exc
        details: dict[str, Any] = {"changed": sorted(key for key in changes if key != "secret")}
        if secret_change:
            details["secret"] = secret_change
        if "enabled" in changes:
            details["enabled"] = changes["enabled"]
        record(conn, actor, "edit", "notification_rule", rule_id, now=now, details=details)
    return get_rule(conn, actor, rule_id)


def delete_rule(conn: Connection, actor: Principal, rule_id: int, *, now: datetime) -> None:
    """Delete a rule, its pending deliveries and its delivery log."""
    current = get_rule(conn, actor, rule_id)
    store.delete_rule(conn, actor.organization_id, rule_id)
    record(
        conn,
        actor,
        "delete",
        "notification_rule",
        rule_id,
        now=now,
        details={"name": current.name, "trigger": current.trigger.value},
    )


def deliveries(
    conn: Connection,
    actor: Principal,
    rule_id: int,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[tuple[Delivery, list[Attempt]]]:
    """A rule's deliveries, newest first, each with its attempts (the delivery log)."""
    get_rule(conn, actor, rule_id)
    found = store.list_deliveries(
        conn, actor.organization_id, rule_id, limit=limit, before_id=before_id
    )
    attempts = store.attempts_of(conn, [delivery.id for delivery in found])
    return [(delivery, attempts[delivery.id]) for delivery in found]


def rotate_rule_secrets(conn: Connection, old: SecretBox, new: SecretBox) -> int:
    """Re-seal every organization's rule secrets from `old` to `new`, in the caller's
    transaction (`surveyor secrets rotate` does it with the credentials'); how many were
    re-sealed. A secret sealed with neither key is refused, naming its rule."""
    resealed = 0
    for rule in store.every_rule_with_a_secret(conn):
        assert rule.secret is not None
        if sealed_key_id(rule.secret.sealed) == new.key_id:
            continue
        try:
            plaintext = old.open(rule.secret.sealed, aad=secret_aad(rule.id))
        except (WrongSecretKey, SecretDamaged) as exc:
            raise NotificationRefused(
                Reason.INVALID,
                "wrong_secret_key",
                f"the secret of notification rule {rule.name!r} does not open with key "
                f"{old.key_id}: {exc}",
            ) from exc
        sealed = StoredSecret(new.seal(plaintext, aad=secret_aad(rule.id)), rule.secret.set_at)
        store.replace_secret(conn, rule.id, sealed)
        resealed += 1
    return resealed
