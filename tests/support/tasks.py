"""Tasks for tests that need one without a database: a new scan unless told otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surveyor.core.task import Task
from surveyor.core.tasks import DEFAULT_GRACE_PERIOD_SECONDS, Tab

CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def a_task(**values: Any) -> Task:
    """A task in `new` on the scheduled tab, with `values` in place of the defaults."""
    row: dict[str, Any] = {
        "id": 1,
        "organization_id": 1,
        "site_id": None,
        "name": "task",
        "description": "",
        "type": "scan",
        "status": "new",
        "error": None,
        "wait_reason": None,
        "params": {},
        "stats": {},
        "progress_collect": 0.0,
        "progress_process": 0.0,
        "change_summary": None,
        "cs_new": None,
        "cs_changed": None,
        "cs_offline": None,
        "cs_online": None,
        "cs_unchanged": None,
        "explorer_id": None,
        "hosted_zone_id": None,
        "created_by": "",
        "created_by_user_id": None,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "start_time": CREATED_AT,
        "recur": False,
        "recur_frequency": None,
        "recur_rule": None,
        "timezone": None,
        "recur_next": None,
        "recur_last": None,
        "recur_last_task_id": None,
        "parent_id": None,
        "grace_period": DEFAULT_GRACE_PERIOD_SECONDS,
        "hidden": False,
        "removed_at": None,
        "data_acquisition_started_at": None,
        "data_acquisition_ended_at": None,
        "data_processing_started_at": None,
        "data_processing_ended_at": None,
        "finished_at": None,
        "size_data": 0,
        "size_results": 0,
        "targets": "",
        "tab": Tab.SCHEDULED.value,
        "tab_sort": CREATED_AT,
        "version": 1,
        "occurrence_at": None,
        "attempt": 0,
        "attempt_token": None,
        "last_report_at": None,
        "stop_requested_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "processing_attempts": 0,
        "data_sha256": None,
        "data_partial": False,
    }
    unknown = values.keys() - row.keys()
    if unknown:
        raise TypeError(f"a task has no column {sorted(unknown)}")
    return Task.from_row({**row, **values})
