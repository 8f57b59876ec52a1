"""Reports as the API and the pages show them: the organization's three reports with where
each stands, one report's stored result, and its downloads (self-contained HTML, JSON, CSV).

The result itself is built by the `report` processor (processing/reports.py) and read here
as stored; core/reports.py describes its shape, console/report_charts.py draws its charts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection

from surveyor.console.errors import ApiError
from surveyor.console.exports import csv_lines
from surveyor.console.report_charts import chart
from surveyor.console.state import ConsoleState
from surveyor.console.web.render import render_fragment
from surveyor.core.reports import CSV_HEADER, REPORTS, ReportDefinition, csv_rows, report_named
from surveyor.core.task import Task
from surveyor.store import reports as report_store
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal
from surveyor.store.reports import StoredReport

ReportFormat = Literal["json", "html", "csv"]


@dataclass(frozen=True)
class ReportView:
    """One report of the organization: what it is, its stored result (None until first
    computed), and its latest task and daily refresh."""

    definition: ReportDefinition
    stored: StoredReport | None
    latest_task: Task | None
    schedule: Task | None

    @property
    def result(self) -> dict[str, Any] | None:
        return self.stored.result if self.stored is not None else None

    @property
    def refreshed_at(self) -> datetime | None:
        return self.stored.refreshed_at if self.stored is not None else None

    def as_json(self, *, with_result: bool) -> dict[str, Any]:
        task = self.latest_task
        out: dict[str, Any] = {
            "id": self.definition.id,
            "name": self.definition.name,
            "description": self.definition.description,
            "initialized": self.stored is not None,
            "refreshed_at": self.refreshed_at,
            "task_id": task.id if task is not None else None,
            "task_status": task.status.value if task is not None else None,
            "schedule_id": self.schedule.id if self.schedule is not None else None,
            "schedule_next": self.schedule.recur_next if self.schedule is not None else None,
        }
        if with_result:
            out["result"] = self.result
        return out


def _latest_task(conn: Connection, organization_id: int, report_id: str) -> Task | None:
    """The report's newest task that is not a template: one waiting or running, else the
    last that stored the result."""
    waiting = report_store.waiting_refresh(conn, organization_id, report_id)
    if waiting is not None:
        return waiting
    return report_store.latest_refresh(conn, organization_id, report_id)


def _view(conn: Connection, organization_id: int, definition: ReportDefinition) -> ReportView:
    stored = report_store.stored_report(conn, organization_id, definition.id)
    schedule = None
    if stored is not None and stored.schedule_id is not None:
        schedule = task_store.get_task(conn, organization_id, stored.schedule_id)
    return ReportView(
        definition, stored, _latest_task(conn, organization_id, definition.id), schedule
    )


def report_views(conn: Connection, organization_id: int) -> list[ReportView]:
    return [_view(conn, organization_id, definition) for definition in REPORTS]


def known_report(report_id: str) -> ReportDefinition:
    definition = report_named(report_id)
    if definition is None:
        known = ", ".join(report.id for report in REPORTS)
        raise ApiError(404, "not_found", f"there is no report '{report_id}'; there are: {known}")
    return definition


def request_refresh(
    state: ConsoleState, principal: Principal, definition: ReportDefinition
) -> Task:
    """Queue a refresh of the report as `principal` asks for it (initializing the report the
    first time); a refresh that already waits is the answer instead of a second."""
    with state.db.write() as conn:
        return report_store.request_refresh(
            conn,
            principal.organization_id,
            definition,
            actor=principal.email,
            user_id=principal.user_id,
            now=state.clock.now(),
        )


def report_view(conn: Connection, organization_id: int, report_id: str) -> ReportView:
    """One report of the organization; an unknown report is not found (404)."""
    return _view(conn, organization_id, known_report(report_id))


def export_html(view: ReportView, organization: str) -> str:
    """The report as one HTML file that needs nothing else: styles inline, charts inline."""
    return render_fragment(
        "reports/export.html",
        {"report": view, "result": view.result, "organization": organization, "chart": chart},
    )


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _file_name(view: ReportView, suffix: str) -> str:
    stamp = view.refreshed_at.strftime("%Y%m%d-%H%M") if view.refreshed_at else "new"
    return f"surveyor-report-{view.definition.id}-{stamp}.{suffix}"


def download(view: ReportView, export_format: ReportFormat, organization: str) -> Response:
    """The stored result as a file; a report never computed yet is a conflict (409)."""
    result = view.result
    if result is None:
        raise ApiError(
            409,
            "report_not_ready",
            f"the {view.definition.name} report has no result yet; refresh it and wait for "
            "its task to finish",
        )
    disposition = {
        "Content-Disposition": f'attachment; filename="{_file_name(view, export_format)}"'
    }
    if export_format == "html":
        return Response(
            export_html(view, organization),
            media_type="text/html; charset=utf-8",
            headers=disposition,
        )
    if export_format == "csv":
        return StreamingResponse(
            csv_lines(CSV_HEADER, csv_rows(result)),
            media_type="text/csv; charset=utf-8",
            headers=disposition,
        )
    body: Mapping[str, Any] = {**view.as_json(with_result=True), "result": result}
    return Response(
        json.dumps(body, default=_json_default, indent=2),
        media_type="application/json",
        headers=disposition,
    )
