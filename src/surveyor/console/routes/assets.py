"""`/api/v1/assets`: the inventory, searched and paged; and the per-task change report."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from surveyor.console.auth import Viewer
from surveyor.console.errors import ApiError, ErrorResponse, not_found
from surveyor.console.schemas import MAX_ID, IdPath
from surveyor.console.state import ConsoleState, console_state
from surveyor.core.changes import ChangeKind, summarize
from surveyor.core.search import MAX_QUERY_LENGTH, parse
from surveyor.store import inventory, records
from surveyor.store import tasks as task_store
from surveyor.store.asset_search import ASSET_SEARCH
from surveyor.store.search_sql import compile_search

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])
State = Annotated[ConsoleState, Depends(console_state)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 422)
}


class ServiceOut(BaseModel):
    port: int
    proto: str
    state: str
    name: str
    banner: str
    product: str
    http_status: int | None
    http_server: str
    http_title: str
    tls_subject: str
    tls_issuer: str
    tls_sans: list[str]
    tls_not_before: str
    tls_not_after: str
    tls_sha256: str
    first_seen: datetime
    changed_at: datetime


class AssetOut(BaseModel):
    id: int
    organization_id: int
    site_id: int
    site: str
    address: str
    addresses: list[str]
    mac: str | None
    hostname: str | None
    hostnames: list[str]
    os: str
    alive: bool
    service_count: int
    outlier: int | None
    first_seen: datetime
    last_seen: datetime
    changed_at: datetime
    last_task_id: int | None
    #: `tcp/22 ssh`, one per service, in port order.
    ports: list[str]


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


def _search_clause(conn: Connection, search: str | None, now: datetime) -> Any:
    return compile_search(conn, parse(search or ""), ASSET_SEARCH, now=now)


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


@router.get("", response_model=AssetPage, responses=_ERRORS)
def list_assets(
    principal: Viewer,
    state: State,
    search: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=inventory.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """One page of assets in address order, narrowed by `search`; pass `next_cursor` back
    for the next page."""
    with state.db.read() as conn:
        clause = _search_clause(conn, search, state.clock.now())
        try:
            page = inventory.list_assets(
                conn, principal.organization_id, search=clause, limit=limit, cursor=cursor
            )
        except inventory.InvalidAssetCursor as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from exc
        names = records.site_names(
            conn, principal.organization_id, {row["site_id"] for row in page.items}
        )
        found = inventory.services_of(conn, [row["id"] for row in page.items])
    return {
        "items": [asset_out(row, names, found[row["id"]]) for row in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/{asset_id}", response_model=AssetDetail, responses=_ERRORS)
def get_asset(asset_id: IdPath, principal: Viewer, state: State) -> dict[str, Any]:
    """An asset with its services and its latest changes."""
    with state.db.read() as conn:
        row = inventory.get_asset(conn, principal.organization_id, asset_id)
        if row is None:
            raise not_found("asset", asset_id)
        names = records.site_names(conn, principal.organization_id, {row["site_id"]})
        found = inventory.services_of(conn, [asset_id])[asset_id]
        history = inventory.asset_history(conn, asset_id)
    out = asset_out(row, names, found)
    out["services"] = found
    out["history"] = history
    return out


# The change report of a task (served at /api/v1/tasks/{id}/changes) --------------------------


class ChangeOut(BaseModel):
    id: int
    asset_id: int | None
    kind: ChangeKind
    address: str
    hostname: str | None
    details: dict[str, Any]


class ChangeReport(BaseModel):
    task_id: int
    status: str
    run: int
    observed_at: datetime
    processed_at: datetime | None
    summary: dict[str, int]
    items: list[ChangeOut]
    next_cursor: str | None


ReportFormat = Literal["json", "jsonl"]
KindFilter = Annotated[
    list[ChangeKind] | None,
    Query(description="Only these kinds (repeat the parameter for several)."),
]
ReportCursor = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="next_cursor of the previous page")
]
#: Processing runs of one task are numbered from 1; far fewer than this ever exist.
MAX_RUN_NUMBER = 1_000_000
RunNumber = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_RUN_NUMBER,
        description="The processing run (1 for the first); default: the latest finished one.",
    ),
]


def run_summary(run: Mapping[str, Any]) -> dict[str, int]:
    """A processing run's counts as a change summary (SPEC §4)."""
    return summarize({name: run[name] for name in inventory.RUN_COUNTS})


def _report_run(conn: Connection, task: Mapping[str, Any], number: int | None) -> dict[str, Any]:
    task_id = task["id"]
    if number is not None:
        run = inventory.run_by_number(conn, task_id, number)
        if run is None:
            raise ApiError(
                404,
                "no_run",
                f"task {task_id} has no processing run {number}",
                {"run": number},
            )
        return run
    run = inventory.finished_run(conn, task_id)
    if run is None:
        raise ApiError(
            404,
            "no_changes",
            f"task {task_id} has no change report"
            + ("" if task["status"] == "processed" else " (it has not been processed)"),
        )
    return run


def change_report(
    state: ConsoleState,
    organization_id: int,
    task_id: int,
    *,
    kinds: Sequence[ChangeKind] | None,
    limit: int,
    cursor: int | None,
    report_format: ReportFormat,
    run_number: int | None = None,
) -> Any:
    """A page of the per-asset change report of one of the task's processing runs (by
    default its latest finished one), or all of it as a JSONL download."""
    with state.db.read() as conn:
        task = task_store.get_task(conn, organization_id, task_id)
        if task is None:
            raise task_store.TaskNotFound(task_id)
        run = _report_run(conn, task, run_number)
        wanted = [kind.value for kind in kinds] if kinds else None
        if report_format == "json":
            rows = inventory.list_changes(
                conn, run["id"], kinds=wanted, after_id=cursor, limit=limit + 1
            )
    header = {
        "task_id": task_id,
        "status": task["status"],
        "run": run["number"],
        "observed_at": run["observed_at"],
        "processed_at": run["ended_at"],
        "summary": run_summary(run),
    }
    if report_format == "json":
        items = rows[:limit]
        next_cursor = str(items[-1]["id"]) if len(rows) > limit else None
        return {**header, "items": items, "next_cursor": next_cursor}
    filename = f"task-{task_id}-run-{run['number']}-changes.jsonl"
    return StreamingResponse(
        _report_lines(state, header, run["id"], wanted),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _report_lines(
    state: ConsoleState, header: Mapping[str, Any], run_id: int, kinds: list[str] | None
) -> Iterator[bytes]:
    yield _json_line({"type": "report", **header})
    after: int | None = None
    while True:
        with state.db.read() as conn:
            rows = inventory.list_changes(conn, run_id, kinds=kinds, after_id=after, limit=1000)
        for row in rows:
            yield _json_line({"type": "change", **ChangeOut.model_validate(row).model_dump()})
        if len(rows) < 1000:
            return
        after = rows[-1]["id"]


def _json_line(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value, default=_json_default, separators=(",", ":")) + "\n").encode()


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
