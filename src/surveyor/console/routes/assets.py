"""`/api/v1/assets`: the inventory, searched and paged; and the shapes of the per-task change
report (served by `routes/tasks.py` from `console/reports.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from surveyor.console.auth import Viewer
from surveyor.console.errors import ApiError, error_responses, not_found
from surveyor.console.listing_json import json_answer
from surveyor.console.presenters import asset_item, asset_out
from surveyor.console.schemas import (
    AssetOut,
    ExactCount,
    IdPath,
    SearchQuery,
    ServiceOut,
    from_attributes,
)
from surveyor.console.state import State
from surveyor.core.changes import ChangeKind
from surveyor.core.search import parse
from surveyor.store import inventory, outliers, records
from surveyor.store.asset_search import compile_asset_search
from surveyor.store.tasks import COUNT_CAP

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

_ERRORS = error_responses(400, 401, 403, 404, 422)


class AssetChangeOut(BaseModel):
    task_id: int
    kind: ChangeKind
    observed_at: datetime
    details: dict[str, Any]


class AssetDetail(AssetOut):
    services: list[ServiceOut]
    history: list[AssetChangeOut]


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None


class AssetCount(BaseModel):
    count: int
    capped: bool = Field(
        description="true when counting stopped at the cap (10,000) and the count is a lower"
        " bound, shown as `10,000+`; ask again with `exact=true` for the exact count"
    )


def _search_clause(conn: Connection, search: str | None, now: datetime) -> Any:
    return compile_asset_search(conn, parse(search or ""), now=now)


@router.get("", response_model=AssetPage, responses=_ERRORS)
def list_assets(
    principal: Viewer,
    state: State,
    search: SearchQuery = None,
    limit: Annotated[int, Query(ge=1, le=inventory.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[
        Literal["address", "outlier"],
        Query(description="address order, or `outlier`: the most unusual first"),
    ] = "address",
) -> Response:
    """One page of assets in address order (or by outlier score, `sort=outlier`), narrowed
    by `search`; pass `next_cursor` back, with the same sort, for the next page."""
    lister = outliers.list_assets_by_outlier if sort == "outlier" else inventory.list_assets
    with state.db.read() as conn:
        clause = _search_clause(conn, search, state.clock.now())
        try:
            page = lister(
                conn, principal.organization_id, search=clause, limit=limit, cursor=cursor
            )
        except inventory.InvalidAssetCursor as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from exc
        names = records.site_names(
            conn, principal.organization_id, {asset.site_id for asset in page.items}
        )
        ids = [asset.id for asset in page.items]
        found = inventory.services_of(conn, ids)
        sources = inventory.sources_of(conn, ids)
    items = [asset_item(asset, names, found[asset.id], sources[asset.id]) for asset in page.items]
    return json_answer({"items": items, "next_cursor": page.next_cursor}, AssetPage)


@router.get("/count", response_model=AssetCount, responses=_ERRORS)
def count_assets(
    principal: Viewer,
    state: State,
    search: SearchQuery = None,
    exact: ExactCount = False,
) -> dict[str, Any]:
    """How many assets `search` finds; the count stops at 10,000 (`capped`) unless
    `exact=true`."""
    with state.db.read() as conn:
        clause = _search_clause(conn, search, state.clock.now())
        found = inventory.count_assets(
            conn,
            principal.organization_id,
            search=clause,
            cap=None if exact else COUNT_CAP,
        )
    return {"count": found.count, "capped": found.capped}


@router.get("/{asset_id}", response_model=AssetDetail, responses=_ERRORS)
def get_asset(asset_id: IdPath, principal: Viewer, state: State) -> AssetDetail:
    """An asset with its services and its latest changes."""
    with state.db.read() as conn:
        asset = inventory.get_asset(conn, principal.organization_id, asset_id)
        if asset is None:
            raise not_found("asset", asset_id)
        names = records.site_names(conn, principal.organization_id, {asset.site_id})
        found = inventory.services_of(conn, [asset_id])[asset_id]
        sources = inventory.sources_of(conn, [asset_id])[asset_id]
        history = inventory.asset_history(conn, asset_id)
    return asset_out(
        asset,
        names,
        found,
        sources,
        model=AssetDetail,
        services=[from_attributes(ServiceOut, service) for service in found],
        history=history,
    )
