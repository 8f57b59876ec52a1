"""Retention in the store: each organization's settings, its daily Retention task, the task
data past its retention, and assets marked stale (core/retention.py has the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, not_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from surveyor.core import recurrence
from surveyor.core import retention as rules
from surveyor.core.kinds import RETENTION
from surveyor.core.retention import RetentionSettings
from surveyor.core.task import Task
from surveyor.core.tasks import TERMINAL_STATUSES, EventKind, WaitReason
from surveyor.store import tasks as task_store
from surveyor.store.accounts import list_organizations
from surveyor.store.schema import assets, retention_settings, tasks
from surveyor.store.system_tasks import SYSTEM
from surveyor.store.task_data_chunks import drop_stored_task_data
from surveyor.store.tasks import TaskEvent

#: An asset is stale when a Retention run marked it and it has not been seen since.
STALE: ColumnElement[bool] = and_(
    assets.c.stale_since.is_not(None), assets.c.last_seen < assets.c.stale_since
)
_FINISHED = sorted(status.value for status in TERMINAL_STATUSES)


def get_settings(conn: Connection, organization_id: int) -> RetentionSettings:
    """The organization's retention (the defaults until an admin changes them)."""
    row = conn.execute(
        select(retention_settings.c.task_data_days, retention_settings.c.stale_after_days).where(
            retention_settings.c.organization_id == organization_id
        )
    ).first()
    if row is None:
        return RetentionSettings()
    return RetentionSettings(row.task_data_days, row.stale_after_days)


def _insert_defaults(conn: Connection, organization_id: int, now: datetime) -> None:
    """The organization's settings row with the defaults, unless it has one."""
    defaults = RetentionSettings()
    values = {
        "organization_id": organization_id,
        "task_data_days": defaults.task_data_days,
        "stale_after_days": defaults.stale_after_days,
        "updated_at": now,
        "updated_by": SYSTEM,
    }
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(retention_settings)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["organization_id"])
    )


def save_settings(
    conn: Connection,
    organization_id: int,
    settings: RetentionSettings,
    *,
    actor: str,
    now: datetime,
) -> RetentionSettings:
    """Store the organization's retention; its next Retention run applies it."""
    _insert_defaults(conn, organization_id, now)
    conn.execute(
        update(retention_settings)
        .where(retention_settings.c.organization_id == organization_id)
        .values(
            task_data_days=settings.task_data_days,
            stale_after_days=settings.stale_after_days,
            updated_at=now,
            updated_by=actor,
        )
    )
    return settings


def _template_values(organization_id: int, now: datetime) -> dict[str, Any]:
    rule = recurrence.parse_recurrence(
        rules.RECURRENCE["frequency"],
        time=rules.RECURRENCE["time"],
        timezone=rules.RECURRENCE["timezone"],
        now=now,
    )
    frequency, stored_rule, timezone = rule.to_stored()
    return {
        "organization_id": organization_id,
        "site_id": None,
        "name": rules.TASK_NAME,
        "description": rules.TASK_DESCRIPTION,
        "type": RETENTION.type,
        "created_by": SYSTEM,
        "grace_period": rules.GRACE_PERIOD_SECONDS,
        "recur": True,
        # A fixture of every organization, not something a user made: kept out of the tabs
        # and their counts unless a search asks (`hidden:true`); its runs are shown.
        "hidden": True,
        "recur_frequency": frequency,
        "recur_rule": stored_rule,
        "timezone": timezone,
        "recur_next": recurrence.next_occurrence(rule, now),
        "wait_reason": WaitReason.NOT_DUE.value,
    }


def ensure_template(conn: Connection, organization_id: int, *, now: datetime) -> Task | None:
    """Give the organization its daily Retention task unless it has one (a paused one counts;
    a removed one does not); the task created, or None. Consoles starting together create
    one: the organization's settings row is locked while it is looked for."""
    _insert_defaults(conn, organization_id, now)
    template_id = conn.execute(
        select(retention_settings.c.template_id)
        .where(retention_settings.c.organization_id == organization_id)
        .with_for_update()
    ).scalar_one()
    if template_id is not None:
        kept = conn.execute(
            select(tasks.c.id).where(
                tasks.c.id == template_id, tasks.c.recur.is_(True), tasks.c.removed_at.is_(None)
            )
        ).first()
        if kept is not None:
            return None
    values = _template_values(organization_id, now)
    template = task_store.create_task(conn, values, actor=SYSTEM, now=now)
    conn.execute(
        update(retention_settings)
        .where(retention_settings.c.organization_id == organization_id)
        .values(template_id=template.id)
    )
    return template


def retention_task(conn: Connection, organization_id: int) -> Task | None:
    """The organization's daily Retention task, unless it was removed (or never made)."""
    template_id = conn.execute(
        select(retention_settings.c.template_id).where(
            retention_settings.c.organization_id == organization_id
        )
    ).scalar_one_or_none()
    if template_id is None:
        return None
    return task_store.get_task(conn, organization_id, template_id)


def ensure_templates(conn: Connection, *, now: datetime) -> list[Task]:
    """Every organization's daily Retention task (at console start); those created."""
    created = []
    for organization in list_organizations(conn):
        template = ensure_template(conn, organization["id"], now=now)
        if template is not None:
            created.append(template)
    return created


def expired_task_data(
    conn: Connection, organization_id: int, *, before: datetime, after_id: int, limit: int
) -> list[tuple[int, int]]:
    """(task id, data size) of the organization's finished tasks that hold data and finished
    before `before`, in id order after `after_id`: the data files retention deletes."""
    rows = conn.execute(
        select(tasks.c.id, tasks.c.size_data)
        .where(
            tasks.c.organization_id == organization_id,
            tasks.c.id > after_id,
            tasks.c.recur.is_(False),
            tasks.c.status.in_(_FINISHED),
            tasks.c.size_data > 0,
            tasks.c.finished_at < before,
        )
        .order_by(tasks.c.id)
        .limit(limit)
    ).all()
    return [(row.id, row.size_data) for row in rows]


def forget_task_data(
    conn: Connection,
    task_ids: Sequence[int],
    *,
    run: Task,
    settings: RetentionSettings,
    now: datetime,
) -> None:
    """Record that these tasks' data files are deleted: they hold no data any more (so they
    cannot be reprocessed), and each gets an event naming the Retention run. Their rows,
    events and change summaries stay."""
    if not task_ids:
        return
    drop_stored_task_data(conn, task_ids)
    task_store.update_tasks(
        conn,
        and_(tasks.c.id.in_(list(task_ids)), tasks.c.status.in_(_FINISHED)),
        {"size_data": 0, "data_sha256": None},
        now=now,
        event=TaskEvent(
            EventKind.RETENTION,
            SYSTEM,
            f"its data file was deleted by Retention (task {run.id}): it finished more than "
            f"{settings.task_data_days} days ago",
        ),
    )


def mark_stale(
    conn: Connection, organization_id: int, *, before: datetime, now: datetime
) -> tuple[int, int]:
    """Mark the organization's assets last seen before `before` stale, and those seen since
    no longer stale (the period grew); how many of each."""
    in_organization = assets.c.organization_id == organization_id
    marked = conn.execute(
        update(assets)
        .where(in_organization, assets.c.last_seen < before, not_(STALE))
        .values(stale_since=now)
    ).rowcount
    unmarked = conn.execute(
        update(assets)
        .where(in_organization, assets.c.last_seen >= before, assets.c.stale_since.is_not(None))
        .values(stale_since=None)
    ).rowcount
    return int(marked or 0), int(unmarked or 0)
