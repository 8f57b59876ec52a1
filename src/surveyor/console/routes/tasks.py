"""`/api/v1/tasks`: create, list by tab with search, counts, detail, edit, actions, history."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy import Connection

from surveyor.console import presenters, reports
from surveyor.console.auth import Operator, Viewer
from surveyor.console.errors import ApiError, error_responses
from surveyor.console.listing_json import json_answer
from surveyor.console.schemas import (
    MAX_ID,
    ChangeSummary,
    EventPage,
    ExactCount,
    HideIn,
    IdPath,
    Limit,
    OccurrencesOut,
    ProcessingRunPage,
    RecurrenceIn,
    SearchQuery,
    TabCounts,
    TaskCreate,
    TaskEventOut,
    TaskOut,
    TaskPage,
    TaskUpdate,
)
from surveyor.console.state import State
from surveyor.core import recurrence
from surveyor.core.task import TASK_COLUMNS, Task
from surveyor.core.tasks import TaskStatus
from surveyor.service import tasks as task_service
from surveyor.service.tasks import InvalidTask
from surveyor.store import inventory
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal
from surveyor.store.task_search import compile_task_search

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

_ERRORS = error_responses(400, 401, 403, 404, 409, 422)
#: How many of a task's runs (recurring or processing) a page answers with at most.
RunsLimit = Annotated[int, Query(ge=1, le=500)]
Row = TypeVar("Row")
ViewName = Literal["active", "processing", "scheduled", "failed", "completed", "recurring", "all"]


#: The fields of `TaskOut` that are a task's columns as they are.
_TASK_FIELDS = tuple(name for name in TaskOut.model_fields if name in TASK_COLUMNS)
#: The columns a listed task is shown from: those, and the two its progress is.
LISTED_COLUMNS = (*_TASK_FIELDS, "progress_collect", "progress_process")
_SUMMARY_FIELDS = tuple(ChangeSummary.model_fields)
_EVENT_FIELDS = tuple(TaskEventOut.model_fields)
_ID = LISTED_COLUMNS.index("id")
#: Each field of `TaskOut`, in its order, with the position of its column in a listed row (the
#: fields that are no column take the id's place, and are written over).
_LAYOUT = tuple(
    (name, LISTED_COLUMNS.index(name) if name in LISTED_COLUMNS else _ID)
    for name in TaskOut.model_fields
)
_STATUS = LISTED_COLUMNS.index("status")
_SUMMARY = LISTED_COLUMNS.index("change_summary")
_COLLECT = LISTED_COLUMNS.index("progress_collect")
_PROCESS = LISTED_COLUMNS.index("progress_process")
_LABELS = {status.value: status.label for status in TaskStatus}


def task_item(row: Sequence[Any]) -> dict[str, Any]:
    """A task as `TaskOut` writes it, in its field order, from the `LISTED_COLUMNS` of its
    row, without validating them again (the store produced them)."""
    if len(row) != len(LISTED_COLUMNS):
        raise ValueError(f"a listed task has {len(LISTED_COLUMNS)} columns, not {len(row)}")
    item = {name: row[position] for name, position in _LAYOUT}
    item["status_label"] = _LABELS[row[_STATUS]]
    item["progress"] = {"collect": float(row[_COLLECT]), "process": float(row[_PROCESS])}
    if row[_SUMMARY] is not None:
        item["change_summary"] = summary_item(row[_SUMMARY])
    return item


def summary_item(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A change summary as `ChangeSummary` writes it: its counts only, a missing one 0."""
    if summary is None:
        return None
    return {name: summary.get(name, 0) for name in _SUMMARY_FIELDS}


def task_out(task: Task) -> TaskOut:
    """The API shape of a task (SPEC §4)."""
    return TaskOut.model_validate(task_item([getattr(task, name) for name in LISTED_COLUMNS]))


@contextmanager
def _answering_invalid() -> Iterator[None]:
    """A task the rules find invalid is answered 400 `invalid_task`, naming the field at
    fault (and the token, in a recurrence)."""
    try:
        yield
    except InvalidTask as exc:
        details: dict[str, Any] = {"field": exc.field}
        if exc.token is not None:
            details["token"] = exc.token
        raise ApiError(400, "invalid_task", exc.message, details) from exc


def _page(
    rows: Sequence[Row], limit: int, cursor_of: Callable[[Row], object], out: Callable[[Row], Any]
) -> dict[str, Any]:
    """A page of `rows` fetched one past `limit`: the row past it says another page follows,
    whose cursor is `cursor_of` the page's last row."""
    items = rows[:limit]
    next_cursor = str(cursor_of(items[-1])) if len(rows) > limit else None
    return {"items": [out(row) for row in items], "next_cursor": next_cursor}


@router.post("", status_code=201, response_model=TaskOut, responses=_ERRORS)
def create_task(body: TaskCreate, principal: Operator, state: State) -> TaskOut:
    """Create a task that starts now, at `start_time`, or recurs by `recur`: a scan, or
    another kind users create (`type`)."""
    with _answering_invalid(), state.db.write() as conn:
        task = task_service.create_task(
            conn, principal, body.model_dump(exclude_unset=True), now=state.clock.now()
        )
    return task_out(task)


@router.get("", response_model=TaskPage, responses=_ERRORS)
def list_tasks(
    principal: Viewer,
    state: State,
    tab: ViewName = "all",
    search: SearchQuery = None,
    limit: Annotated[int, Query(ge=1, le=task_store.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """One page of a tab, in the tab's order; pass `next_cursor` back for the next page."""
    with state.db.read_without_snapshot() as conn:
        found = compile_task_search(conn, search, now=state.clock.now())
        page = task_store.list_task_columns(
            conn,
            principal.organization_id,
            LISTED_COLUMNS,
            view=tab,
            search=found.clause,
            include_hidden=found.include_hidden,
            limit=limit,
            cursor=cursor,
        )
    return json_answer(
        {"items": [task_item(row) for row in page.rows], "next_cursor": page.next_cursor},
        TaskPage,
    )


@router.get("/counts", response_model=TabCounts, responses=_ERRORS)
def count_tasks(
    principal: Viewer,
    state: State,
    search: SearchQuery = None,
    exact: ExactCount = False,
) -> dict[str, Any]:
    """How many tasks each tab holds, honouring the search; `all` counts every tab. A
    searched count stops at 10,000 (`capped` says which did) unless `exact=true`."""
    with state.db.read() as conn:
        found = compile_task_search(conn, search, now=state.clock.now())
        counted = task_store.count_search(
            conn, principal.organization_id, found, exact=exact, reads=state.db.parallel_reads
        )
    return {
        "counts": counted.counts,
        "capped": {tab: tab in counted.capped for tab in counted.counts},
    }


@router.post("/preview", response_model=OccurrencesOut, responses=_ERRORS)
def preview_recurrence(body: RecurrenceIn, _principal: Viewer, state: State) -> dict[str, Any]:
    """The next five occurrences of a recurrence, to show before saving."""
    now = state.clock.now()
    with _answering_invalid():
        rec = task_service.parse_recurrence_input(body.model_dump(exclude_unset=True), now=now)
    return {
        "occurrences": recurrence.next_occurrences(rec, now, 5),
        "description": recurrence.describe(rec),
    }


@router.get("/{task_id}", response_model=TaskOut, responses=_ERRORS)
def get_task(task_id: IdPath, principal: Viewer, state: State) -> TaskOut:
    with state.db.read() as conn:
        return task_out(reports.owned_task(conn, principal.organization_id, task_id))


@router.patch("/{task_id}", response_model=TaskOut, responses=_ERRORS)
def update_task(task_id: IdPath, body: TaskUpdate, principal: Operator, state: State) -> TaskOut:
    """Edit a task; what it will do can change only before it runs."""
    with _answering_invalid(), state.db.write() as conn:
        task = task_service.update_task(
            conn, principal, task_id, body.model_dump(exclude_unset=True), now=state.clock.now()
        )
    return task_out(task)


@router.delete("/{task_id}", status_code=204, responses=_ERRORS)
def remove_task(task_id: IdPath, principal: Operator, state: State) -> Response:
    """Remove a task from every view; a template's past runs stay."""
    with state.db.write() as conn:
        task_service.remove_task(conn, principal, task_id, now=state.clock.now())
    return Response(status_code=204)


class _TaskAction(Protocol):
    def __call__(
        self, conn: Connection, principal: Principal, task_id: int, *, now: datetime
    ) -> Task: ...


def _action(
    name: str,
    perform: _TaskAction,
    summary: str,
) -> None:
    def handler(task_id: IdPath, principal: Operator, state: State) -> TaskOut:
        with _answering_invalid(), state.db.write() as conn:
            return task_out(perform(conn, principal, task_id, now=state.clock.now()))

    handler.__name__ = f"{name.replace('-', '_')}_task"
    router.add_api_route(
        f"/{{task_id}}/{name}",
        handler,
        methods=["POST"],
        response_model=TaskOut,
        responses=_ERRORS,
        summary=summary,
    )


_action("stop", task_service.stop_task, "Stop a task (a task not yet launched stops at once)")
_action("pause", task_service.pause_task, "Pause a recurring template")
_action("resume", task_service.resume_task, "Resume a paused template from now")
_action("run-now", task_service.run_now, "Run a template or scheduled task now")
_action("reprocess", task_service.reprocess_task, "Process a task's stored data again")


@router.post("/{task_id}/hide", response_model=TaskOut, responses=_ERRORS)
def hide_task(
    task_id: IdPath,
    principal: Operator,
    state: State,
    body: Annotated[HideIn | None, Body()] = None,
) -> TaskOut:
    """Hide a task from the tabs (`{"hidden": false}` shows it again)."""
    hidden = body.hidden if body is not None else True
    with state.db.write() as conn:
        return task_out(
            task_service.hide_task(conn, principal, task_id, hidden=hidden, now=state.clock.now())
        )


@router.get("/{task_id}/runs", response_model=TaskPage, responses=_ERRORS)
def list_runs(
    task_id: IdPath,
    principal: Viewer,
    state: State,
    limit: RunsLimit = 50,
    cursor: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="next_cursor of the previous page")
    ] = None,
) -> Response:
    """A recurring template's runs, newest first."""
    with state.db.read_without_snapshot() as conn:
        task = reports.owned_task(conn, principal.organization_id, task_id)
        runs = task_store.list_run_columns(
            conn, task, LISTED_COLUMNS, limit=limit + 1, before_id=cursor
        )
    return json_answer(_page(runs, limit, lambda run: run[_ID], task_item), TaskPage)


@router.get("/{task_id}/events", response_model=EventPage, responses=_ERRORS)
def list_events(
    task_id: IdPath,
    principal: Viewer,
    state: State,
    limit: Limit = 100,
    cursor: reports.ReportCursor = None,
) -> Response:
    """The task's timeline: every transition, edit and skip, oldest first."""
    with state.db.read_without_snapshot() as conn:
        task = reports.owned_task(conn, principal.organization_id, task_id)
        events = task_store.list_events(conn, task, limit=limit + 1, after_id=cursor)
    page = _page(events, limit, lambda event: event["id"], event_item)
    return json_answer(page, EventPage)


def event_item(event: Mapping[str, Any]) -> dict[str, Any]:
    """A task event row as `TaskEventOut` writes it."""
    return {name: event[name] for name in _EVENT_FIELDS}


@router.get("/{task_id}/data", responses=_ERRORS)
def get_task_data(task_id: IdPath, principal: Viewer, state: State) -> Response:
    """The raw data the task collected (gzip JSONL), checked against its SHA-256 first;
    the digest is also in the `X-Surveyor-Content-SHA256` header."""
    return reports.task_data(state, principal.organization_id, task_id)


@router.get("/{task_id}/changes", response_model=reports.ChangeReport, responses=_ERRORS)
def get_task_changes(
    task_id: IdPath,
    principal: Viewer,
    state: State,
    kind: reports.KindFilter = None,
    limit: Limit = 100,
    cursor: reports.ReportCursor = None,
    format: reports.ReportFormat = "json",
    run: reports.RunNumber = None,
) -> Any:
    """The per-asset change report of a processed task: new, changed, online, offline and
    ignored answers, page by page, or all of it as a download: `format=jsonl`, or
    `format=csv` for spreadsheets.
    It is the latest processing run's; `run=N` gives an earlier one."""
    return reports.change_report(
        state,
        principal.organization_id,
        task_id,
        kinds=kind,
        limit=limit,
        cursor=cursor,
        report_format=format,
        run_number=run,
    )


def processing_run_out(run: Mapping[str, Any]) -> dict[str, Any]:
    """The API shape of a processing run."""
    return {
        "run": run["number"],
        "phase": run["phase"],
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "observed_at": run["observed_at"],
        "records_total": run["records_total"],
        "records_done": run["records_done"],
        "change_summary": presenters.run_summary(run),
        "data_sha256": run["data_sha256"],
    }


@router.get("/{task_id}/processing-runs", response_model=ProcessingRunPage, responses=_ERRORS)
def list_processing_runs(
    task_id: IdPath,
    principal: Viewer,
    state: State,
    limit: RunsLimit = 50,
    cursor: Annotated[
        int | None,
        Query(ge=1, le=reports.MAX_RUN_NUMBER, description="next_cursor of the previous page"),
    ] = None,
) -> dict[str, Any]:
    """Every processing of the task's data, newest first, each with its change summary;
    `GET /changes?run=N` gives a run's change report."""
    with state.db.read() as conn:
        reports.owned_task(conn, principal.organization_id, task_id)
        runs = inventory.list_runs(conn, task_id, limit=limit + 1, before_number=cursor)
    return _page(runs, limit, lambda run: run["number"], processing_run_out)
