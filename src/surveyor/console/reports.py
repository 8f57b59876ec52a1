"""A task's stored data and its change reports, as both the API and the web console's pages
serve them (`GET /api/v1/tasks/{id}/data` and `/changes`; the task card's downloads)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Connection

from surveyor.console import presenters
from surveyor.console.errors import ApiError
from surveyor.console.exports import MEDIA_TYPES, csv_lines, json_line
from surveyor.console.schemas import MAX_ID
from surveyor.console.state import ConsoleState
from surveyor.core.changes import ChangeKind
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.store import inventory, taskdata
from surveyor.store import tasks as task_store
from surveyor.store.task_data_store import TaskDataUnavailable, local_task_data


def owned_task(conn: Connection, organization_id: int, task_id: int) -> Task:
    """The organization's task `task_id`; any other is not found (404)."""
    task = task_store.get_task(conn, organization_id, task_id)
    if task is None:
        raise task_store.TaskNotFound(task_id)
    return task


def task_data(state: ConsoleState, organization_id: int, task_id: int) -> Response:
    """The raw data the task collected (gzip JSONL), checked against its SHA-256 first;
    the digest is also in the `X-Surveyor-Content-SHA256` header."""
    with state.db.read() as conn:
        task = owned_task(conn, organization_id, task_id)
    try:
        path = (
            local_task_data(state.db, state.settings.data_dir, task_id, task.data_sha256)
            if task.data_sha256
            else taskdata.task_data_path(state.settings.data_dir, task_id)
        )
    except TaskDataUnavailable as exc:
        raise ApiError(500, "data_corrupt", str(exc)) from exc
    if not task.data_sha256 or not path.is_file():
        raise ApiError(
            404,
            "no_data",
            f"task {task_id} has no stored data"
            + ("" if task.size_data else " (it has not collected any yet)"),
        )
    if taskdata.sha256_of(path) != task.data_sha256:
        raise ApiError(
            500, "data_corrupt", f"the stored data of task {task_id} does not match its checksum"
        )
    return FileResponse(
        path,
        media_type="application/gzip",
        filename=f"surveyor-task-{task_id}.jsonl.gz",
        headers={"X-Surveyor-Content-SHA256": task.data_sha256},
    )


class ChangeOut(BaseModel):
    """One change of a report, as the API pages it and the JSONL download writes it."""

    id: int
    asset_id: int | None
    kind: ChangeKind
    address: str
    hostname: str | None
    details: dict[str, Any]


class ChangeReport(BaseModel):
    """A page of a task's change report (served at /api/v1/tasks/{id}/changes)."""

    task_id: int
    status: str
    run: int
    observed_at: datetime
    processed_at: datetime | None
    summary: dict[str, int]
    items: list[ChangeOut]
    next_cursor: str | None


KindFilter = Annotated[
    list[ChangeKind] | None,
    Query(description="Only these kinds (repeat the parameter for several)."),
]
ReportCursor = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="next_cursor of the previous page")
]
ReportFormat = Literal["json", "jsonl", "csv"]
#: The columns of the change report as CSV: one row per changed asset.
CHANGE_COLUMNS = ("id", "asset_id", "kind", "address", "hostname", "details")
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


def _report_run(conn: Connection, task: Task, number: int | None) -> dict[str, Any]:
    task_id = task.id
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
            + ("" if task.status is TaskStatus.PROCESSED else " (it has not been processed)"),
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
    default its latest finished one), or all of it as a JSONL or CSV download."""
    with state.db.read() as conn:
        task = owned_task(conn, organization_id, task_id)
        run = _report_run(conn, task, run_number)
        wanted = [kind.value for kind in kinds] if kinds else None
        if report_format == "json":
            rows = inventory.list_changes(
                conn, run["id"], kinds=wanted, after_id=cursor, limit=limit + 1
            )
    header = {
        "task_id": task_id,
        "status": task.status.value,
        "run": run["number"],
        "observed_at": run["observed_at"],
        "processed_at": run["ended_at"],
        "summary": presenters.run_summary(run),
    }
    if report_format == "json":
        items = rows[:limit]
        next_cursor = str(items[-1]["id"]) if len(rows) > limit else None
        return {**header, "items": items, "next_cursor": next_cursor}
    filename = f"task-{task_id}-run-{run['number']}-changes.{report_format}"
    lines = (
        csv_lines(CHANGE_COLUMNS, _report_rows(state, run["id"], wanted))
        if report_format == "csv"
        else _report_lines(state, header, run["id"], wanted)
    )
    return StreamingResponse(
        lines,
        media_type=MEDIA_TYPES[report_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _changes(state: ConsoleState, run_id: int, kinds: list[str] | None) -> Iterator[ChangeOut]:
    """Every change of the run, read a thousand at a time, each batch in its own
    transaction."""
    after: int | None = None
    while True:
        with state.db.read() as conn:
            rows = inventory.list_changes(conn, run_id, kinds=kinds, after_id=after, limit=1000)
        for row in rows:
            yield ChangeOut.model_validate(row)
        if len(rows) < 1000:
            return
        after = rows[-1]["id"]


def _report_lines(
    state: ConsoleState, header: Mapping[str, Any], run_id: int, kinds: list[str] | None
) -> Iterator[bytes]:
    yield json_line({"type": "report", **header})
    for change in _changes(state, run_id, kinds):
        yield json_line({"type": "change", **change.model_dump()})


def _report_rows(state: ConsoleState, run_id: int, kinds: list[str] | None) -> Iterator[list[Any]]:
    for change in _changes(state, run_id, kinds):
        shown = change.model_dump(mode="json")
        yield [shown[name] for name in CHANGE_COLUMNS]
