"""`Task`: one row of the tasks table as the rest of Surveyor sees it.

The store builds it from a row (`Task.from_row`) and returns it; services, the scheduler, the
queue, the launch rule, the API and the pages read its attributes. A task is never changed in
place: the store's write path (`store.tasks.write_task`, `update_tasks`) writes a change and
returns the task as it is afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from surveyor.core.rows import ColumnRow
from surveyor.core.tasks import Tab, TaskStatus, WaitReason


@dataclass(frozen=True, slots=True)
class Task(ColumnRow):
    """A task (SPEC §4), or a recurring template (`recur`): every column of its row."""

    id: int
    organization_id: int
    site_id: int | None
    name: str
    description: str
    #: The task's kind (`core.kinds`); a string, since kinds are registered at run time.
    type: str
    status: TaskStatus
    error: str | None
    wait_reason: WaitReason | None
    #: What the task does, as its kind validated it (scan targets, ports, rate).
    params: Mapping[str, Any]
    stats: Mapping[str, Any]
    progress_collect: float
    progress_process: float
    change_summary: Mapping[str, Any] | None
    #: The change-summary counts, copied out of `change_summary` for searches.
    cs_new: int | None
    cs_changed: int | None
    cs_offline: int | None
    cs_online: int | None
    cs_unchanged: int | None
    explorer_id: int | None
    hosted_zone_id: int | None
    created_by: str
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    start_time: datetime | None
    recur: bool
    recur_frequency: str | None
    recur_rule: str | None
    timezone: str | None
    recur_next: datetime | None
    recur_last: datetime | None
    recur_last_task_id: int | None
    parent_id: int | None
    grace_period: int
    hidden: bool
    removed_at: datetime | None
    data_acquisition_started_at: datetime | None
    data_acquisition_ended_at: datetime | None
    data_processing_started_at: datetime | None
    data_processing_ended_at: datetime | None
    finished_at: datetime | None
    size_data: int
    size_results: int
    #: Scan targets as text, copied out of `params` for the `targets:` search key.
    targets: str
    #: The tab the task shows in (None once removed) and the time that tab orders it by.
    tab: Tab | None
    tab_sort: datetime | None
    #: Bumped by every write; a write checks the version it read (optimistic concurrency).
    version: int
    occurrence_at: datetime | None
    attempt: int
    attempt_token: str | None
    last_report_at: datetime | None
    stop_requested_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    processing_attempts: int
    data_sha256: str | None
    data_partial: bool

    def as_row(self) -> dict[str, Any]:
        """The columns of its row, as stored (enums as their values)."""
        row = {name: getattr(self, name) for name in TASK_COLUMNS}
        row["status"] = self.status.value
        row["tab"] = self.tab.value if self.tab is not None else None
        row["wait_reason"] = self.wait_reason.value if self.wait_reason is not None else None
        return row


#: The columns of the tasks table, in the order of the fields above.
TASK_COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Task))
