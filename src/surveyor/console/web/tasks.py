"""The Tasks overview page: tabs with counts, search, table, the detail card and its actions.

`GET /tasks?tab=&search=&task=&cursor=` renders the whole page; with the
`X-Surveyor-Fragment` header it renders only the regions the page's script swaps in
(tabs, search feedback, card, table), so navigation and live refreshes need no reload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import Connection

from surveyor.console import reports
from surveyor.console.live import latest_event_id
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.render import render
from surveyor.console.web.search_box import (
    MAX_SEARCH_LENGTH,
    SearchProblem,
)
from surveyor.console.web.session import CheckedPrincipal, PageError, PagePrincipal, require_role
from surveyor.console.web.task_view import (
    ProcessingRunView,
    TaskView,
    available_actions,
    split_processing_runs,
)
from surveyor.core.search import SearchError
from surveyor.core.tasks import ALL_VIEW, TAB_SPECS, IllegalTransition
from surveyor.service import tasks as task_service
from surveyor.service.tasks import InvalidTask
from surveyor.store import inventory
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal, Role
from surveyor.store.task_search import compile_task_search

router = APIRouter(include_in_schema=False)

FRAGMENT_HEADER = "x-surveyor-fragment"
PAGE_SIZE = 50
#: Processing runs the card lists; `GET /api/v1/tasks/{id}/processing-runs` has them all.
PROCESSING_RUNS_SHOWN = 20
DEFAULT_VIEW = TAB_SPECS[next(iter(TAB_SPECS))].tab.value
#: The views of the page, in tab order: the six tabs, then the complete history.
VIEWS: list[tuple[str, str]] = [(spec.tab.value, spec.label) for spec in TAB_SPECS.values()] + [
    (ALL_VIEW, "All")
]
_VIEW_NAMES = {name for name, _ in VIEWS}

SEARCH_EXAMPLES = [
    ("status:processed new:>0", "completed scans that found new assets"),
    ('name:"nightly" OR targets:127.0.0', "either condition"),
    ("NOT type:scan created_at:<1week", "non-scans created within the last week"),
    ("explorer:=lab-% error:timeout", "exact match with % wildcard; text contains"),
    ("hidden:true", "show hidden tasks too"),
]


@dataclass(frozen=True)
class View:
    """What the URL asks for: a view, a search, a selected task, a page."""

    tab: str
    search: str
    task: int | None
    cursor: str | None

    def url(self, **changes: Any) -> str:
        values = {
            "tab": self.tab,
            "search": self.search,
            "task": self.task,
            "cursor": self.cursor,
            **changes,
        }
        query = {key: value for key, value in values.items() if value not in (None, "")}
        return "/tasks?" + urlencode(query)


def _view(tab: str | None, search: str | None, task: str | None, cursor: str | None) -> View:
    chosen = tab if tab in _VIEW_NAMES else DEFAULT_VIEW
    task_id = int(task) if task and task.isdigit() and len(task) < 19 else None
    return View(chosen, (search or "")[:MAX_SEARCH_LENGTH], task_id, cursor or None)


def _overview_context(
    conn: Connection, principal: Principal, view: View, now: datetime
) -> dict[str, Any]:
    org = principal.organization_id
    problem: SearchProblem | None = None
    try:
        found = compile_task_search(conn, view.search, now=now)
        clause, include_hidden = found.clause, found.include_hidden
    except SearchError as error:
        problem = SearchProblem.of(view.search, error)
        clause, include_hidden = None, False
    # Counting every match of a search can take seconds on a large history: a searched
    # view's counts come in a second request (`/tasks/counts`), so the page is not held up.
    counts: dict[str, int] | None = None
    page = task_store.Page([], None)
    cursor_invalid = False
    if problem is None and clause is None:
        counts = task_store.count_tasks(conn, org)
    if problem is None:
        listing = partial(
            task_store.list_tasks,
            conn,
            org,
            view=view.tab,
            search=clause,
            include_hidden=include_hidden,
            limit=PAGE_SIZE,
        )
        try:
            page = listing(cursor=view.cursor)
        except task_store.InvalidCursor:
            # A stale page link: the first page, with a notice saying so.
            cursor_invalid = True
            page = listing()
    selected = task_store.get_task(conn, org, view.task) if view.task is not None else None
    rows = [*page.items, *([selected] if selected else [])]
    names = task_service.names_by_id(conn, rows)
    card: dict[str, Any] | None = None
    if selected is not None:
        runs = task_store.list_runs(conn, selected, limit=10) if selected.recur else []
        run_names = task_service.names_by_id(conn, runs)
        processings = (
            inventory.list_runs(conn, selected.id, limit=PROCESSING_RUNS_SHOWN)
            if not selected.recur
            else []
        )
        card = {
            "task": TaskView.of(selected, names),
            "events": task_store.list_events(conn, selected, limit=100),
            "runs": [TaskView.of(run, run_names) for run in runs],
            "processing_runs": split_processing_runs(
                [ProcessingRunView.of(run) for run in processings]
            ),
            "actions": available_actions(selected, principal.role),
            "parent": (
                task_store.get_task(conn, org, selected.parent_id) if selected.parent_id else None
            ),
        }
    return {
        "view": view,
        "views": VIEWS,
        "counts": counts,
        "counts_url": (
            "/tasks/counts?" + urlencode({"search": view.search})
            if counts is None and problem is None
            else ""
        ),
        "problem": problem,
        "search_examples": SEARCH_EXAMPLES,
        "tasks": [TaskView.of(row, names) for row in page.items],
        "next_cursor": page.next_cursor,
        "cursor_invalid": cursor_invalid,
        "card": card,
        "missing_task": view.task is not None and selected is None,
        # the page's live stream starts here, so nothing between render and connect is lost
        "after_event": latest_event_id(conn),
        "can_create": principal.role.allows(Role.OPERATOR),
    }


def overview_response(
    request: Request,
    principal: Principal,
    state: ConsoleState,
    view: View,
    *,
    notice: str = "",
    status: int = 200,
) -> Response:
    with state.db.read() as conn:
        context = _overview_context(conn, principal, view, state.clock.now())
    context["notice"] = notice
    fragment = request.headers.get(FRAGMENT_HEADER)
    template = "tasks/regions.html" if fragment else "tasks/overview.html"
    return render(
        request,
        template,
        context,
        status=status,
        headers={"Vary": "X-Surveyor-Fragment", "X-Surveyor-Url": view.url()},
    )


@router.get("/tasks")
def overview(
    request: Request,
    principal: PagePrincipal,
    state: State,
    tab: str | None = None,
    search: str | None = None,
    task: str | None = None,
    cursor: str | None = None,
) -> Response:
    return overview_response(request, principal, state, _view(tab, search, task, cursor))


@router.get("/tasks/counts")
def tab_counts(
    principal: PagePrincipal, state: State, search: str = "", exact: bool = False
) -> Response:
    """The tab counts of a searched view (`GET /api/v1/tasks/counts` for the page): each
    stops at 10,000 (named in `capped`) unless `exact=true`, asked by a click on the count."""
    with state.db.read() as conn:
        try:
            found = compile_task_search(conn, search[:MAX_SEARCH_LENGTH], now=state.clock.now())
        except SearchError as error:
            return JSONResponse({"error": {"message": error.message}}, status_code=400)
        counted = task_store.count_search(
            conn, principal.organization_id, found, exact=exact, reads=state.db.parallel_reads
        )
    return JSONResponse(
        {"counts": counted.counts, "capped": sorted(counted.capped)},
        headers={"Cache-Control": "no-store"},
    )


class Perform(Protocol):
    def __call__(
        self, conn: Connection, principal: Principal, task_id: int, *, now: datetime
    ) -> Any: ...


_ACTIONS: dict[str, Perform] = {
    "stop": task_service.stop_task,
    "pause": task_service.pause_task,
    "resume": task_service.resume_task,
    "run-now": task_service.run_now,
    "reprocess": task_service.reprocess_task,
    "hide": partial(task_service.hide_task, hidden=True),
    "show": partial(task_service.hide_task, hidden=False),
    "remove": task_service.remove_task,
}


def _perform(state: ConsoleState, action: Perform, principal: Principal, task_id: int) -> None:
    with state.db.write() as conn:
        action(conn, principal, task_id, now=state.clock.now())


@router.post("/tasks/{task_id:int}/{action}")
async def task_action(
    request: Request,
    task_id: int,
    action: str,
    principal: CheckedPrincipal,
    state: State,
    tab: Annotated[str, Form()] = DEFAULT_VIEW,
    search: Annotated[str, Form()] = "",
) -> Response:
    """A button of the detail card; answers with the overview (a redirect when it worked)."""
    perform = _ACTIONS.get(action)
    if perform is None:
        raise PageError(404, "Not found", f"there is no action called {action!r}")
    require_role(principal, Role.OPERATOR)
    view = _view(tab, search, str(task_id), None)
    try:
        await asyncio.to_thread(_perform, state, perform, principal, task_id)
    except task_store.TaskNotFound as exc:
        raise PageError(404, "Not found", f"task {task_id} does not exist") from exc
    except (IllegalTransition, InvalidTask, task_store.StaleTask) as exc:
        message = exc.message if isinstance(exc, InvalidTask) else str(exc)
        if isinstance(exc, task_store.StaleTask):
            message = "the task kept changing while we tried to update it; try again"
        return await asyncio.to_thread(
            overview_response, request, principal, state, view, notice=message, status=409
        )
    target = view.url(task=None) if action == "remove" else view.url()
    return RedirectResponse(target, status_code=303)


@router.get("/tasks/{task_id:int}/data")
def download_data(task_id: int, principal: PagePrincipal, state: State) -> Response:
    """The task's raw data, exactly as `GET /api/v1/tasks/{id}/data` serves it."""
    return reports.task_data(state, principal.organization_id, task_id)


@router.get("/tasks/{task_id:int}/changes")
def download_changes(
    task_id: int, principal: PagePrincipal, state: State, run: reports.RunNumber = None
) -> Response:
    """A change report of the task (its latest processing run's, or run `run`'s) as a JSONL
    download (`GET /api/v1/tasks/{id}/changes`)."""
    report: Response = reports.change_report(
        state,
        principal.organization_id,
        task_id,
        kinds=None,
        limit=1,
        cursor=None,
        report_format="jsonl",
        run_number=run,
    )
    return report
