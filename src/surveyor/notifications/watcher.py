"""From what happened to deliveries: the task events and explorers each rule watches.

The watcher reads the task events (`task_events`, which every status change writes in its
own transaction) from its watermark on, and the explorers' last check-ins, and queues a
delivery in the outbox for each enabled rule that matches, in one transaction with moving
its watermark. A rule notifies of one event once (the outbox keeps one delivery per rule
and event key), so reading an event twice is harmless: each pass reads again the last
`LOOKBACK` event ids, which catches events a concurrent transaction committed after a
higher id was already read. A rule notifies only of what happened after it was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from surveyor.core.notifications import NotificationRule, Trigger
from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.store import notifications as store

STREAM = "task_events"
#: Event ids read again on every pass (see the module's docstring).
LOOKBACK = 200
BATCH = 500
MAX_BATCHES = 20
#: The assets one Outlier calculation notifies of, highest scores first.
MAX_OUTLIERS = 20

TASK_TRIGGERS = (Trigger.TASK_CANCELED, Trigger.NEW_ASSETS, Trigger.OUTLIER_SCORE)
_ENDED = {TaskStatus.CANCELED.value, TaskStatus.STOPPED.value}
#: The task statuses whose changes (on the change bus) may give rise to a delivery.
WATCHED_CHANGES = frozenset(status.value for status in store.WATCHED_STATUSES)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _scheduled(event: Mapping[str, Any]) -> bool:
    """A run of a recurring template, or a one-off task created to start later: a scheduled
    task (a task started now has its creation time as its start time)."""
    start, created = event["start_time"], event["created_at"]
    return event["parent_id"] is not None or (
        start is not None and created is not None and start > created
    )


def _kind(event: Mapping[str, Any]) -> str:
    if event["parent_id"] is not None:
        return "scheduled run"
    return "scheduled task" if _scheduled(event) else "task"


def _task_part(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": event["task_id"],
        "name": event["name"],
        "type": event["type"],
        "status": event["to_status"],
        "site_id": event["site_id"],
        "site": event["site_name"],
        "scheduled": _scheduled(event),
        "template_id": event["parent_id"],
        "error": event["error"],
        "by": event["actor"],
        "message": event["message"],
    }


def _base(rule: NotificationRule, summary: str, at: datetime) -> dict[str, Any]:
    return {
        "event": rule.trigger.value,
        "summary": summary,
        "organization_id": rule.organization_id,
        "rule": {"id": rule.id, "name": rule.name},
        "occurred_at": at.isoformat(),
    }


def _task_deliveries(
    conn: Connection, rule: NotificationRule, event: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(event key, payload) of each delivery `event` gives rise to under `rule`."""
    key = f"event:{event['event_id']}"
    name, status = event["name"], event["to_status"]
    kind = _kind(event)
    if rule.trigger is Trigger.TASK_CANCELED:
        if status not in _ENDED or (rule.options.get("scheduled_only") and kind == "task"):
            return []
        reason = f": {event['error']}" if event["error"] else ""
        summary = f"{kind} {name!r} was {status}{reason}"
        return [(key, {**_base(rule, summary, event["at"]), "task": _task_part(event)})]
    if status != TaskStatus.PROCESSED.value:
        return []
    if rule.trigger is Trigger.NEW_ASSETS:
        new = event["cs_new"] or 0
        if event["type"] == TaskType.OUTLIER.value or new <= 0:
            return []
        summary = f"{kind} {name!r} found {new} new asset{'s' if new != 1 else ''}"
        payload = {
            **_base(rule, summary, event["at"]),
            "task": _task_part(event),
            "new_assets": new,
            "change_summary": event["change_summary"],
        }
        return [(key, payload)]
    if event["type"] != TaskType.OUTLIER.value or event["site_id"] is None:
        return []
    threshold = int(rule.options.get("threshold", 0))
    found = store.assets_scored_at_least(conn, event["site_id"], threshold, limit=MAX_OUTLIERS)
    deliveries = []
    for asset in found:
        label = asset["hostname"] or asset["address"]
        summary = f"asset {label} scored {asset['outlier']} as an outlier (threshold {threshold})"
        payload = {
            **_base(rule, summary, event["at"]),
            "task": _task_part(event),
            "threshold": threshold,
            "asset": {
                "id": asset["id"],
                "address": asset["address"],
                "hostname": asset["hostname"],
                "outlier": asset["outlier"],
                "reasons": list(asset["outlier_reasons"] or []),
            },
        }
        # An asset is told of once, the first time a calculation scores it this high.
        deliveries.append((f"outlier:{asset['id']}", payload))
    return deliveries


def watch_task_events(conn: Connection, *, now: datetime) -> int:
    """Queue the deliveries of the task events after the watermark; how many were queued."""
    latest = store.latest_task_event_id(conn)
    position = store.watermark(conn, STREAM)
    if position is None:
        position = latest  # a first start notifies of nothing that came before it
    rules = store.enabled_rules(conn, TASK_TRIGGERS)
    by_organization: dict[int, list[NotificationRule]] = {}
    for rule in rules:
        by_organization.setdefault(rule.organization_id, []).append(rule)
    added = 0
    after = max(0, position - LOOKBACK)
    for _ in range(MAX_BATCHES):
        events = store.status_events_after(conn, after, limit=BATCH) if rules else []
        for event in events:
            for rule in by_organization.get(event["organization_id"], []):
                if event["at"] < rule.created_at:
                    continue
                for key, payload in _task_deliveries(conn, rule, event):
                    if store.add_delivery(conn, rule, key, payload, now=now) is not None:
                        added += 1
        if len(events) < BATCH:
            position = max(position, latest, *(e["event_id"] for e in events))
            break
        after = events[-1]["event_id"]
        position = max(position, after)
    store.set_watermark(conn, STREAM, position)
    return added


def watch_explorers(conn: Connection, *, now: datetime) -> int:
    """Queue a delivery for each explorer that has been silent for a rule's minutes: once
    per silence (a check-in ends it; the next silence is told of again)."""
    added = 0
    for rule in store.enabled_rules(conn, (Trigger.EXPLORER_OFFLINE,)):
        minutes = int(rule.options.get("minutes", 0))
        window = timedelta(minutes=minutes)
        for explorer in store.explorers_silent_since(conn, rule.organization_id, now - window):
            last = explorer["last_checkin_at"]
            if last + window < rule.created_at:
                continue  # offline already before the rule existed
            summary = f"explorer {explorer['name']!r} has been offline for {minutes} minutes"
            payload = {
                **_base(rule, summary, last + window),
                "minutes": minutes,
                "explorer": {
                    "id": explorer["id"],
                    "name": explorer["name"],
                    "site_id": explorer["site_id"],
                    "last_checkin_at": _iso(last),
                },
            }
            key = f"explorer:{explorer['id']}:{last.isoformat()}"
            if store.add_delivery(conn, rule, key, payload, now=now) is not None:
                added += 1
    return added


def watch(conn: Connection, *, now: datetime) -> int:
    """One pass of the watcher over everything it watches; the deliveries it queued."""
    return watch_task_events(conn, now=now) + watch_explorers(conn, now=now)
