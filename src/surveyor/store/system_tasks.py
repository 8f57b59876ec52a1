"""System tasks in the store (SPEC §10: `created_by: "system"`): a task queued for
processing as soon as it is created (there is nothing to collect), and the coalesced request
for one, which creates none while another of its kind and scope still waits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select

from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as task_store
from surveyor.store.schema import tasks

#: Who creates system tasks.
SYSTEM = "system"
#: Statuses in which a system task still waits: another of its kind and scope is not created.
WAITING = (TaskStatus.NEW.value, TaskStatus.PROCESSING_QUEUED.value)


def waiting_clause(
    organization_id: int, task_type: str, *, site_id: int | None = None
) -> ColumnElement[bool]:
    """A task of `task_type` of the organization (of `site_id` when given) that waits."""
    clause = and_(
        tasks.c.organization_id == organization_id,
        tasks.c.type == task_type,
        tasks.c.status.in_(WAITING),
        tasks.c.removed_at.is_(None),
    )
    return and_(clause, tasks.c.site_id == site_id) if site_id is not None else clause


def queue_new_task(
    conn: Connection,
    organization_id: int,
    values: Mapping[str, Any],
    *,
    actor: str,
    message: str,
    now: datetime,
) -> Task:
    """Create a task of the organization with `values` and queue it for processing at once,
    the event saying `message`."""
    task = task_store.create_task(
        conn, {**values, "organization_id": organization_id}, actor=actor, now=now
    )
    return task_store.transition(
        conn,
        organization_id,
        task.id,
        TaskStatus.PROCESSING_QUEUED,
        actor=actor,
        message=message,
        now=now,
    )


def request_system_task(
    conn: Connection,
    organization_id: int,
    task_type: str,
    *,
    site_id: int | None = None,
    name: str,
    description: str,
    message: str,
    now: datetime,
) -> Task | None:
    """Queue a system task of `task_type` for the organization (or one of its sites), unless
    one already waits there (coalesced: at most one waits per scope); the task queued, or
    None."""
    waiting = conn.execute(
        select(tasks.c.id)
        .where(waiting_clause(organization_id, task_type, site_id=site_id))
        .limit(1)
    ).first()
    if waiting is not None:
        return None
    values: dict[str, Any] = {
        "name": name,
        "description": description,
        "type": task_type,
        "created_by": SYSTEM,
    }
    if site_id is not None:
        values["site_id"] = site_id
    return queue_new_task(conn, organization_id, values, actor=SYSTEM, message=message, now=now)
