"""The Reports pages: the three reports with where each stands (`/reports`), one report's
stored result with its charts and tables (`/reports/{id}`), and a refresh on request
(operators), through the same store as `/api/v1/reports` (console/report_views.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console import report_views as views
from surveyor.console.errors import ApiError
from surveyor.console.report_charts import chart
from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PageError, PagePrincipal, require_role
from surveyor.core.reports import ReportDefinition
from surveyor.store.accounts import Role

router = APIRouter(include_in_schema=False)


def _definition(report_id: str) -> ReportDefinition:
    try:
        return views.known_report(report_id)
    except ApiError as exc:
        raise PageError(404, "Not found", exc.message) from exc


@router.get("/reports")
def reports_page(request: Request, principal: PagePrincipal, state: State) -> Response:
    with state.db.read() as conn:
        listed = views.report_views(conn, principal.organization_id)
    return render(
        request,
        "reports/list.html",
        {"reports": listed, "can_refresh": principal.role.allows(Role.OPERATOR)},
    )


@router.get("/reports/{report_id}")
def report_page(
    request: Request, report_id: str, principal: PagePrincipal, state: State
) -> Response:
    definition = _definition(report_id)
    with state.db.read() as conn:
        view = views.report_view(conn, principal.organization_id, definition.id)
    return render(
        request,
        "reports/report.html",
        {
            "report": view,
            "result": view.result,
            "chart": chart,
            "can_refresh": principal.role.allows(Role.OPERATOR),
        },
    )


@router.post("/reports/{report_id}/refresh")
def refresh_report(report_id: str, principal: CheckedPrincipal, state: State) -> Response:
    """Queue a refresh (initializing the report the first time) and go to the report."""
    require_role(principal, Role.OPERATOR)
    definition = _definition(report_id)
    views.request_refresh(state, principal, definition)
    return RedirectResponse(f"/reports/{definition.id}", status_code=303)
