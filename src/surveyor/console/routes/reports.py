"""`/api/v1/reports`: the organization's reports (Organization overview, Site and
organization comparison, External assets), their stored results as JSON, self-contained HTML
or CSV, and a refresh (a `report` task) on request. docs/reports.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from surveyor.console import report_views
from surveyor.console.auth import Operator, Viewer
from surveyor.console.errors import error_responses
from surveyor.console.report_views import ReportFormat
from surveyor.console.routes.tasks import task_out
from surveyor.console.schemas import TaskOut
from surveyor.console.state import State
from surveyor.store import accounts

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
_ERRORS = error_responses(401, 403, 404, 409, 422)
ReportId = Annotated[
    str,
    Path(max_length=40, description="`overview`, `comparison` or `external`"),
]


class ReportOut(BaseModel):
    """A report of the organization and where it stands; `result` (on one report) is its
    stored result, null until its first task has computed it."""

    id: str
    name: str
    description: str
    initialized: bool
    refreshed_at: datetime | None
    task_id: int | None
    task_status: str | None
    schedule_id: int | None
    schedule_next: datetime | None
    result: dict[str, Any] | None = None


class ReportList(BaseModel):
    items: list[ReportOut]


def _organization_name(state: Any, organization_id: int) -> str:
    with state.db.read() as conn:
        found = accounts.get_organization(conn, organization_id)
    return str(found["name"]) if found else ""


@router.get("", response_model=ReportList, responses=_ERRORS)
def list_reports(principal: Viewer, state: State) -> dict[str, Any]:
    """The three reports, whether each was initialized, when it was last refreshed, its
    latest task and its daily refresh (results are left out: get one report for it)."""
    with state.db.read() as conn:
        views = report_views.report_views(conn, principal.organization_id)
    return {"items": [view.as_json(with_result=False) for view in views]}


@router.get(
    "/{report_id}",
    response_model=ReportOut,
    responses={
        **_ERRORS,
        200: {
            "content": {"text/html": {}, "text/csv": {}},
            "description": "The report; with `format`, its result as a file.",
        },
    },
)
def get_report(
    report_id: ReportId,
    principal: Viewer,
    state: State,
    format: Annotated[
        ReportFormat | None,
        Query(description="download the result: `json`, `html` (self-contained) or `csv`"),
    ] = None,
) -> Any:
    """One report with its stored result; with `format`, the result as a file to download
    (409 when it has not been computed yet)."""
    with state.db.read() as conn:
        view = report_views.report_view(conn, principal.organization_id, report_id)
    if format is None:
        return view.as_json(with_result=True)
    organization = _organization_name(state, principal.organization_id)
    response: Response = report_views.download(view, format, organization)
    return response


@router.post("/{report_id}/refresh", status_code=202, response_model=TaskOut, responses=_ERRORS)
def refresh_report(report_id: ReportId, principal: Operator, state: State) -> TaskOut:
    """Queue a `report` task that computes the report now (initializing it, with its daily
    refresh, the first time); a refresh that already waits is returned instead of a second."""
    definition = report_views.known_report(report_id)
    return task_out(report_views.request_refresh(state, principal, definition))
