"""How things are shown, the same to the API and to the web console's pages: an asset's
API shape, a task's progress rings, a processing run's change summary.

Handlers and pages both import from here, never from each other (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from surveyor.console.schemas import AssetOut
from surveyor.core.changes import summarize
from surveyor.core.tasks import TAB_SPECS, Tab, TaskStatus
from surveyor.store import inventory


def _port_label(service: Mapping[str, Any]) -> str:
    label = f"{service['proto']}/{service['port']}"
    return f"{label} {service['name']}" if service["name"] else label


def asset_out(
    row: Mapping[str, Any], site_names: Mapping[int, str], services: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The API shape of an asset row."""
    out = {key: row[key] for key in AssetOut.model_fields if key in row}
    out["site"] = site_names.get(row["site_id"], "")
    out["ports"] = [_port_label(s) for s in services]
    return out


def run_summary(run: Mapping[str, Any]) -> dict[str, int]:
    """A processing run's counts as a change summary (SPEC §4)."""
    return summarize({name: run[name] for name in inventory.RUN_COUNTS})


#: Statuses past data collection (the processing and completed tabs), and past processing.
_COLLECTED = TAB_SPECS[Tab.PROCESSING].statuses | TAB_SPECS[Tab.COMPLETED].statuses
_PROCESSED = TAB_SPECS[Tab.COMPLETED].statuses


def ring_values(task: Mapping[str, Any]) -> tuple[float, float]:
    """The two rings (collect, process), each 0..1; a phase that is over is full."""
    status = TaskStatus(task["status"])
    collect = 1.0 if status in _COLLECTED else task["progress_collect"]
    process = 1.0 if status in _PROCESSED else task["progress_process"]
    return _unit(collect), _unit(process)


def _unit(value: Any) -> float:
    return max(0.0, min(1.0, float(value or 0.0)))
