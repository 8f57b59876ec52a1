"""How things are shown, the same to the API and to the web console's pages: the API shape
of an asset, a site, a hosted zone and an explorer, a task's progress rings, a processing
run's change summary.

Handlers and pages both import from here, never from each other (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection

from surveyor.console.schemas import (
    AssetOut,
    AssetSourceOut,
    ExplorerOut,
    HostedZoneOut,
    SiteOut,
    from_attributes,
)
from surveyor.core.changes import summarize
from surveyor.core.inventory import Asset, AssetService, AssetSource
from surveyor.core.resources import Explorer, Site
from surveyor.core.tasks import TAB_SPECS, Tab, TaskStatus
from surveyor.service import explorers as explorer_service
from surveyor.service.resources import ZoneView
from surveyor.store import inventory

_Asset = TypeVar("_Asset", bound=AssetOut)


def asset_out(
    asset: Asset,
    site_names: Mapping[int, str],
    asset_services: Sequence[AssetService],
    sources: Sequence[AssetSource] = (),
    *,
    model: type[_Asset] = AssetOut,  # type: ignore[assignment]
    **extra: Any,
) -> _Asset:
    """The API shape of an asset, named after its site, with its services' ports and the
    sources that saw it; a `model` that shows more takes the rest from `extra`."""
    return from_attributes(
        model,
        asset,
        site=site_names.get(asset.site_id, ""),
        ports=[service.label for service in asset_services],
        sources=[from_attributes(AssetSourceOut, source) for source in sources],
        **extra,
    )


_ASSET_FIELDS = tuple(AssetOut.model_fields)
_SOURCE_FIELDS = tuple(AssetSourceOut.model_fields)


def asset_item(
    asset: Asset,
    site_names: Mapping[int, str],
    asset_services: Sequence[AssetService],
    sources: Sequence[AssetSource],
) -> dict[str, Any]:
    """`asset_out` as `AssetOut` writes it, in its field order, without validating what the
    store produced again (the Assets listing, `console/listing_json.py`)."""
    shown = {
        "site": site_names.get(asset.site_id, ""),
        "ports": [service.label for service in asset_services],
        "sources": [{name: getattr(source, name) for name in _SOURCE_FIELDS} for source in sources],
    }
    return {name: shown[name] if name in shown else getattr(asset, name) for name in _ASSET_FIELDS}


def site_out(site: Site) -> SiteOut:
    return from_attributes(SiteOut, site)


def zone_out(view: ZoneView) -> HostedZoneOut:
    """The API shape of a hosted zone, with how many explorers it holds."""
    return from_attributes(HostedZoneOut, view.zone, explorer_count=view.explorer_count)


def explorers_out(
    conn: Connection,
    organization_id: int,
    explorers: Iterable[Explorer],
    *,
    now: datetime,
    window: float,
) -> list[ExplorerOut]:
    """The API shape of the organization's `explorers`: whether each is online (checked in
    within `window` seconds of `now`) and the task occupying it."""
    current = explorer_service.current_tasks(conn, organization_id)
    views = [
        explorer_service.explorer_view(explorer, current, now=now, window=window)
        for explorer in explorers
    ]
    return [
        from_attributes(
            ExplorerOut, view.explorer, online=view.online, current_task_id=view.current_task_id
        )
        for view in views
    ]


def run_summary(run: Mapping[str, Any]) -> dict[str, int]:
    """A processing run's counts as a change summary (SPEC §4)."""
    return summarize({name: run[name] for name in inventory.RUN_COUNTS})


#: Statuses past data collection (the processing and completed tabs), and past processing.
_COLLECTED = TAB_SPECS[Tab.PROCESSING].statuses | TAB_SPECS[Tab.COMPLETED].statuses
_PROCESSED = TAB_SPECS[Tab.COMPLETED].statuses


def ring_values(status: TaskStatus, collect: float, process: float) -> tuple[float, float]:
    """The two rings of a task in `status` whose progress is `collect` and `process`, each
    0..1; a phase that is over is full."""
    return (
        1.0 if status in _COLLECTED else _unit(collect),
        1.0 if status in _PROCESSED else _unit(process),
    )


def _unit(value: Any) -> float:
    return max(0.0, min(1.0, float(value or 0.0)))
