"""The scan engine: TCP discovery and connect scan, service probes, task data (SPEC §7).

The names below load on first use, so a scan worker process, which needs only the connect
scanner, starts without the probes' libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from surveyor.scan.engine import ScanError, run_scan
    from surveyor.scan.progress import ScanProgress
    from surveyor.scan.taskdata import TaskDataError, read_task_data, write_task_data

_HOMES = {
    "ScanError": "surveyor.scan.engine",
    "run_scan": "surveyor.scan.engine",
    "ScanProgress": "surveyor.scan.progress",
    "TaskDataError": "surveyor.scan.taskdata",
    "read_task_data": "surveyor.scan.taskdata",
    "write_task_data": "surveyor.scan.taskdata",
}
__all__ = [
    "ScanError",
    "ScanProgress",
    "TaskDataError",
    "read_task_data",
    "run_scan",
    "write_task_data",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'surveyor.scan' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
