"""Retention settings and the daily Retention task, for the API, the pages and the console's
start: admins change an organization's retention (audited); every organization has its
daily Retention task (core/retention.py, store/retention.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.core.retention import RetentionSettings
from surveyor.core.task import Task
from surveyor.service.audit import record
from surveyor.store import retention as retention_store
from surveyor.store.accounts import Principal
from surveyor.store.engine import Database


@dataclass(frozen=True)
class RetentionView:
    """An organization's retention and its daily Retention task (None if it was removed)."""

    settings: RetentionSettings
    task: Task | None


def retention_view(conn: Connection, organization_id: int) -> RetentionView:
    return RetentionView(
        retention_store.get_settings(conn, organization_id),
        retention_store.retention_task(conn, organization_id),
    )


def update_retention(
    conn: Connection, principal: Principal, changes: Mapping[str, Any], *, now: datetime
) -> RetentionView:
    """An admin changes the organization's retention (the settings given; the rest stay);
    `RetentionSettingError` names a setting out of bounds. The next run applies it."""
    before = retention_store.get_settings(conn, principal.organization_id)
    after = replace(before, **{key: value for key, value in changes.items() if value is not None})
    retention_store.save_settings(
        conn, principal.organization_id, after, actor=principal.email, now=now
    )
    if after != before:
        record(
            conn,
            principal,
            "edit",
            "retention_settings",
            principal.organization_id,
            details={
                "task_data_days": after.task_data_days,
                "stale_after_days": after.stale_after_days,
            },
            now=now,
        )
    return retention_view(conn, principal.organization_id)


def ensure_retention_tasks(db: Database, *, now: datetime) -> list[Task]:
    """Give every organization its daily Retention task (at console start; idempotent)."""
    with db.write() as conn:
        return retention_store.ensure_templates(conn, now=now)
