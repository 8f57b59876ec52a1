"""The notification tables: rules, the outbox of deliveries, their attempts, the watermark.

Rules are read and written by organization (another organization's rule is not found); the
watcher and the delivery service read every organization's. A rule notifies of one event
once: `add_delivery` keeps the first delivery of a (rule, event key) and ignores the others,
so two consoles watching the same events add it once. Sealing the secrets is the service's
(`service/notifications.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.core.notifications import (
    Attempt,
    Channel,
    Delivery,
    DeliveryStatus,
    NotificationRule,
    Trigger,
)
from surveyor.core.sealed import StoredSecret
from surveyor.core.tasks import TaskStatus
from surveyor.store import owned_rows
from surveyor.store.schema import (
    asset_outliers,
    assets,
    explorers,
    notification_attempts,
    notification_deliveries,
    notification_rules,
    notification_watermarks,
    sites,
    task_events,
    tasks,
)

_NAME_TAKEN = "a notification rule with that name exists"


def _secret_column(secret: StoredSecret | None) -> dict[str, str] | None:
    return secret.to_column() if secret is not None else None


# Rules


_RULES = owned_rows.OwnedTable(
    notification_rules,
    NotificationRule.from_row,
    name_taken=_NAME_TAKEN,
    to_column={"secret": _secret_column},
)
get_rule = _RULES.get
#: The organization's rules by id, after `after_id`.
list_rules = _RULES.page
#: Change `name`, `target`, `options`, `enabled` or `secret` (a StoredSecret or None);
#: False when there is no such rule, `Conflict` when the new name is taken.
update_rule = _RULES.change
#: Delete a rule with its deliveries and their log.
delete_rule = _RULES.delete


def create_rule(
    conn: Connection,
    organization_id: int,
    *,
    name: str,
    trigger: Trigger,
    channel: Channel,
    target: str,
    options: Mapping[str, Any],
    enabled: bool,
    now: datetime,
) -> int:
    """A new rule without its secret (sealed with the rule's id, so set after); `Conflict`
    when the name is taken in the organization."""
    values = {
        "name": name,
        "trigger": trigger.value,
        "channel": channel.value,
        "target": target,
        "options": dict(options),
        "secret": None,
        "enabled": enabled,
    }
    return _RULES.insert(conn, organization_id, values, now=now)


def enabled_rules(conn: Connection, triggers: Collection[Trigger]) -> list[NotificationRule]:
    """Every organization's enabled rules of these triggers."""
    rows = conn.execute(
        select(notification_rules)
        .where(
            notification_rules.c.enabled.is_(True),
            notification_rules.c.trigger.in_([trigger.value for trigger in triggers]),
        )
        .order_by(notification_rules.c.id)
    ).mappings()
    return [NotificationRule.from_row(row) for row in rows]


def any_enabled_rule(conn: Connection) -> bool:
    """Whether any organization has an enabled rule (else the watcher has nothing to do)."""
    found = conn.execute(
        select(notification_rules.c.id).where(notification_rules.c.enabled.is_(True)).limit(1)
    ).first()
    return found is not None


def every_rule_with_a_secret(conn: Connection) -> list[NotificationRule]:
    """Every organization's rules that hold a secret, for key rotation."""
    rows = conn.execute(
        select(notification_rules)
        .where(notification_rules.c.secret.is_not(None))
        .order_by(notification_rules.c.id)
    ).mappings()
    return [NotificationRule.from_row(row) for row in rows if row["secret"]]


def replace_secret(conn: Connection, rule_id: int, secret: StoredSecret) -> None:
    """Store a re-sealed secret (rotation): neither updated_at nor its set time change."""
    conn.execute(
        update(notification_rules)
        .where(notification_rules.c.id == rule_id)
        .values(secret=_secret_column(secret))
    )


def rules_by_id(conn: Connection, rule_ids: Collection[int]) -> dict[int, NotificationRule]:
    if not rule_ids:
        return {}
    rows = conn.execute(
        select(notification_rules).where(notification_rules.c.id.in_(list(rule_ids)))
    ).mappings()
    return {int(row["id"]): NotificationRule.from_row(row) for row in rows}


# What the watcher reads


def watermark(conn: Connection, name: str) -> int | None:
    """How far the watcher has read the stream `name`; None before it ever did."""
    found = conn.execute(
        select(notification_watermarks.c.position).where(notification_watermarks.c.name == name)
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def set_watermark(conn: Connection, name: str, position: int) -> None:
    """Move the watermark of `name` forward (never back: two watchers may race)."""
    current = watermark(conn, name)
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(notification_watermarks).values(name=name, position=position))
            return
        except IntegrityError:
            pass
    conn.execute(
        update(notification_watermarks)
        .where(
            notification_watermarks.c.name == name,
            notification_watermarks.c.position < position,
        )
        .values(position=position)
    )


def latest_task_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(task_events.c.id), 0))).scalar_one())


#: The statuses a task event may move a task to that some trigger watches.
WATCHED_STATUSES = (TaskStatus.CANCELED, TaskStatus.STOPPED, TaskStatus.PROCESSED)


def status_events_after(conn: Connection, after: int, *, limit: int) -> list[dict[str, Any]]:
    """Task events with an id above `after` that moved a task to a watched status, oldest
    first, with what a notification tells of the task (as it is now)."""
    rows = conn.execute(
        select(
            task_events.c.id.label("event_id"),
            task_events.c.at,
            task_events.c.to_status,
            task_events.c.actor,
            task_events.c.message,
            tasks.c.id.label("task_id"),
            tasks.c.organization_id,
            tasks.c.name,
            tasks.c.type,
            tasks.c.site_id,
            tasks.c.parent_id,
            tasks.c.created_at,
            tasks.c.start_time,
            tasks.c.error,
            tasks.c.cs_new,
            tasks.c.change_summary,
            sites.c.name.label("site_name"),
        )
        .join(tasks, tasks.c.id == task_events.c.task_id)
        .outerjoin(sites, sites.c.id == tasks.c.site_id)
        .where(
            task_events.c.id > after,
            task_events.c.to_status.in_([status.value for status in WATCHED_STATUSES]),
        )
        .order_by(task_events.c.id)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def assets_scored_at_least(
    conn: Connection, site_id: int, threshold: int, *, limit: int
) -> list[dict[str, Any]]:
    """The site's assets whose outlier score is at least `threshold`, highest first."""
    organization_id = select(sites.c.organization_id).where(sites.c.id == site_id)
    rows = conn.execute(
        select(
            assets.c.id,
            assets.c.address,
            assets.c.hostname,
            asset_outliers.c.score.label("outlier"),
            asset_outliers.c.reasons.label("outlier_reasons"),
        )
        .select_from(asset_outliers.join(assets, assets.c.id == asset_outliers.c.asset_id))
        .where(
            asset_outliers.c.organization_id == organization_id.scalar_subquery(),
            asset_outliers.c.score >= threshold,
            assets.c.site_id == site_id,
        )
        .order_by(asset_outliers.c.score.desc(), asset_outliers.c.asset_id)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def explorers_silent_since(
    conn: Connection, organization_id: int, before: datetime
) -> list[dict[str, Any]]:
    """The organization's explorers whose last check-in is older than `before`."""
    rows = conn.execute(
        select(explorers.c.id, explorers.c.name, explorers.c.last_checkin_at, explorers.c.site_id)
        .where(
            explorers.c.organization_id == organization_id,
            explorers.c.last_checkin_at.is_not(None),
            explorers.c.last_checkin_at < before,
        )
        .order_by(explorers.c.id)
    ).mappings()
    return [dict(row) for row in rows]


# The outbox


def add_delivery(
    conn: Connection,
    rule: NotificationRule,
    event_key: str,
    payload: Mapping[str, Any],
    *,
    now: datetime,
) -> int | None:
    """Queue a delivery of `payload` for `rule`, due now; None when the rule already has
    one for `event_key` (nothing is added)."""
    found = conn.execute(
        select(notification_deliveries.c.id).where(
            notification_deliveries.c.rule_id == rule.id,
            notification_deliveries.c.event_key == event_key,
        )
    ).first()
    if found is not None:
        return None
    try:
        with conn.begin_nested():
            return int(
                conn.execute(
                    insert(notification_deliveries)
                    .values(
                        organization_id=rule.organization_id,
                        rule_id=rule.id,
                        event_key=event_key,
                        trigger=rule.trigger.value,
                        payload=dict(payload),
                        status=DeliveryStatus.PENDING.value,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        last_error="",
                    )
                    .returning(notification_deliveries.c.id)
                ).scalar_one()
            )
    except IntegrityError:
        return None  # another watcher added it first


def next_due_at(conn: Connection) -> datetime | None:
    """When the earliest pending delivery is due."""
    return conn.execute(
        select(func.min(notification_deliveries.c.next_attempt_at)).where(
            notification_deliveries.c.status == DeliveryStatus.PENDING.value
        )
    ).scalar_one_or_none()


def claim_due(
    conn: Connection, owner: str, *, now: datetime, lease_until: datetime, limit: int
) -> list[Delivery]:
    """Take the lease of up to `limit` pending deliveries that are due and that no other
    sender holds: while the lease lasts, nobody else sends them."""
    candidates = conn.execute(
        select(notification_deliveries.c.id)
        .where(
            notification_deliveries.c.status == DeliveryStatus.PENDING.value,
            notification_deliveries.c.next_attempt_at <= now,
        )
        .order_by(notification_deliveries.c.next_attempt_at, notification_deliveries.c.id)
        .limit(limit * 4)
    ).scalars()
    claimed: list[Delivery] = []
    for delivery_id in candidates.all():
        taken = conn.execute(
            update(notification_deliveries)
            .where(
                notification_deliveries.c.id == delivery_id,
                notification_deliveries.c.status == DeliveryStatus.PENDING.value,
                (notification_deliveries.c.lease_expires_at.is_(None))
                | (notification_deliveries.c.lease_expires_at < now),
            )
            .values(lease_owner=owner, lease_expires_at=lease_until)
        )
        if taken.rowcount == 1:
            row = (
                conn.execute(
                    select(notification_deliveries).where(
                        notification_deliveries.c.id == delivery_id
                    )
                )
                .mappings()
                .one()
            )
            claimed.append(Delivery.from_row(row))
            if len(claimed) >= limit:
                break
    return claimed


def record_attempt(
    conn: Connection,
    delivery_id: int,
    owner: str,
    *,
    at: datetime,
    status_code: int | None,
    error: str,
    duration_ms: int,
    status: DeliveryStatus,
    next_attempt_at: datetime,
) -> bool:
    """Log one attempt and settle the delivery (delivered, failed, or pending until
    `next_attempt_at`), releasing the lease; False (nothing written) when `owner` no longer
    holds it."""
    done = conn.execute(
        update(notification_deliveries)
        .where(
            notification_deliveries.c.id == delivery_id,
            notification_deliveries.c.lease_owner == owner,
            notification_deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        .values(
            status=status.value,
            attempts=notification_deliveries.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            delivered_at=at if status is DeliveryStatus.DELIVERED else None,
            last_status_code=status_code,
            last_error=error,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    if done.rowcount != 1:
        return False
    conn.execute(
        insert(notification_attempts).values(
            delivery_id=delivery_id,
            at=at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    return True


def list_deliveries(
    conn: Connection,
    organization_id: int,
    rule_id: int,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Delivery]:
    """A rule's deliveries, newest first, before `before_id`."""
    query = select(notification_deliveries).where(
        notification_deliveries.c.rule_id == rule_id,
        notification_deliveries.c.organization_id == organization_id,
    )
    if before_id is not None:
        query = query.where(notification_deliveries.c.id < before_id)
    rows = conn.execute(query.order_by(notification_deliveries.c.id.desc()).limit(limit)).mappings()
    return [Delivery.from_row(row) for row in rows]


def attempts_of(conn: Connection, delivery_ids: Iterable[int]) -> dict[int, list[Attempt]]:
    """The attempts of these deliveries, oldest first, by delivery."""
    ids = list(delivery_ids)
    found: dict[int, list[Attempt]] = {delivery_id: [] for delivery_id in ids}
    if not ids:
        return found
    rows = conn.execute(
        select(notification_attempts)
        .where(notification_attempts.c.delivery_id.in_(ids))
        .order_by(notification_attempts.c.id)
    ).mappings()
    for row in rows:
        attempt = Attempt.from_row(row)
        found[attempt.delivery_id].append(attempt)
    return found


def deliveries_of_organization(
    conn: Connection, organization_id: int, *, statuses: Sequence[DeliveryStatus] = ()
) -> list[Delivery]:
    """Every delivery of the organization, oldest first (for tests and the CLI)."""
    query = select(notification_deliveries).where(
        notification_deliveries.c.organization_id == organization_id
    )
    if statuses:
        query = query.where(notification_deliveries.c.status.in_([s.value for s in statuses]))
    rows = conn.execute(query.order_by(notification_deliveries.c.id)).mappings()
    return [Delivery.from_row(row) for row in rows]
