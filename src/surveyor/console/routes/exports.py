"""`GET /api/v1/assets/export`: the inventory, or what a search finds of it, as one CSV or
JSONL download, streamed (`console/exports.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from surveyor.console.auth import Viewer
from surveyor.console.errors import error_responses
from surveyor.console.exports import ExportFormat, assets_download
from surveyor.console.schemas import SearchQuery
from surveyor.console.state import State
from surveyor.core.search import parse
from surveyor.store.asset_search import compile_asset_search

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        **error_responses(400, 401, 403, 422),
        200: {
            "description": "The assets, one CSV row or JSON line each",
            "content": {"text/csv": {}, "application/x-ndjson": {}},
        },
    },
)
def export_assets_route(
    principal: Viewer,
    state: State,
    search: SearchQuery = None,
    format: Annotated[ExportFormat, Query(description="csv (default) or jsonl")] = "csv",
) -> StreamingResponse:
    """Every asset the search finds (without one, all but the stale ones), in address order."""
    with state.db.read() as conn:
        clause = compile_asset_search(conn, parse(search or ""), now=state.clock.now())
    return assets_download(state, principal.organization_id, clause, format)
