"""Tasks for tests that need one without a database: a new scan unless told otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surveyor.core.task import TASK_COLUMNS, Task
from surveyor.core.tasks import DEFAULT_GRACE_PERIOD_SECONDS, Tab

CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def a_task(**values: Any) -> Task:
    """A task in `new` on the scheduled tab, with `values` in place of the defaults."""
    row: dict[str, Any] = {
        **dict.fromkeys(TASK_COLUMNS),
        "id": 1,
        "organization_id": 1,
        "name": "task",
        "description": "",
        "type": "scan",
        "status": "new",
        "params": {},
        "stats": {},
        "progress_collect": 0.0,
        "progress_process": 0.0,
        "created_by": "",
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "start_time": CREATED_AT,
        "recur": False,
        "grace_period": DEFAULT_GRACE_PERIOD_SECONDS,
        "hidden": False,
        "size_data": 0,
        "size_results": 0,
        "targets": "",
        "tab": Tab.SCHEDULED.value,
        "tab_sort": CREATED_AT,
        "version": 1,
        "attempt": 0,
        "processing_attempts": 0,
        "data_partial": False,
    }
    unknown = values.keys() - row.keys()
    if unknown:
        raise TypeError(f"a task has no column {sorted(unknown)}")
    return Task.from_row({**row, **values})
