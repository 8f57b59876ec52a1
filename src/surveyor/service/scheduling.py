"""Scheduling rules shared by the API and the scheduler.

What a run copies from its template (so that editing a template changes future runs only), and
which task changes wake the scheduler (it subscribes to the change bus with `schedule_changed`),
so that it need not wait for its next look at the database.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from surveyor.core import kinds
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus, WaitReason
from surveyor.store.changes import ChangeKind, TaskChange

#: What a run copies from its template when it is spawned: what the template does now.
COPIED_FROM_TEMPLATE = (
    "organization_id",
    "site_id",
    "name",
    "description",
    "type",
    "params",
    "targets",
    "explorer_id",
    "hosted_zone_id",
    "grace_period",
    "created_by",
    "created_by_user_id",
)


def run_values(template: Task, occurrence: datetime) -> dict[str, Any]:
    """The task values of a template's run for `occurrence`: a snapshot of the template's
    COPIED_FROM_TEMPLATE columns, the template as parent, the occurrence as start time."""
    values = {column: getattr(template, column) for column in COPIED_FROM_TEMPLATE}
    values["params"] = copy.deepcopy(dict(template.params))
    values.update(parent_id=template.id, start_time=occurrence, occurrence_at=occurrence)
    return values


#: Columns that say when a task or template is next due.
SCHEDULE_FIELDS = frozenset({"start_time", "recur_next"})


def schedule_changed(change: TaskChange) -> bool:
    """Whether `change` may move the scheduler's next due moment: a template created,
    resumed or rescheduled, a task created or edited to start later, or a task created of a
    kind the scheduler queues once due. (A hint: schedulers look at the database again within
    a second anyway.)"""
    waits = change.template or change.wait_reason == WaitReason.NOT_DUE
    if change.kind is ChangeKind.CREATED:
        kind = kinds.find_kind(change.task_type)
        return waits or (kind is not None and kind.queued_when_due)
    return waits and change.status == TaskStatus.NEW and bool(change.fields & SCHEDULE_FIELDS)
