"""The Dashboard page: the organization's insights (pinned queries) with their stored counts,
trend sparklines and change since yesterday, the tasks overview's counts and the latest
failures.

It reads only what is stored (the counts Query tasks wrote and the tab counters): no search
runs while the page loads, so it costs the same with 50 insights on a million assets as with
one on ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.session import PagePrincipal
from surveyor.console.web.task_view import TaskView
from surveyor.core.queries import Insight, QueryKind, describe_change, describe_trend
from surveyor.core.tasks import ALL_VIEW, TAB_SPECS, Tab
from surveyor.store import queries as query_store
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Role

router = APIRouter(include_in_schema=False)

#: Failed tasks the page lists.
FAILURES_SHOWN = 5
#: The sparkline's drawing box (SVG user units).
SPARK_WIDTH, SPARK_HEIGHT = 120, 32
_WHAT = {QueryKind.ASSET: "assets", QueryKind.SERVICE: "services", QueryKind.TASK: "tasks"}


def sparkline_points(
    trend: Sequence[int], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT
) -> str:
    """The polyline of a trend, oldest at the left, scaled to the box with a pixel to spare
    at the top and bottom (a flat trend is drawn at mid height)."""
    if not trend:
        return ""
    low, high = min(trend), max(trend)
    step = width / (len(trend) - 1) if len(trend) > 1 else 0.0
    span = high - low

    def y(value: int) -> float:
        if span == 0:
            return height / 2
        return 1 + (height - 2) * (high - value) / span

    if len(trend) == 1:
        return f"0,{y(trend[0]):.1f} {width},{y(trend[0]):.1f}"
    return " ".join(f"{index * step:.1f},{y(value):.1f}" for index, value in enumerate(trend))


@dataclass(frozen=True)
class InsightView:
    """An insight as the template shows it."""

    insight: Insight
    what: str
    change: str
    trend_text: str
    points: str

    @classmethod
    def of(cls, insight: Insight) -> InsightView:
        return cls(
            insight,
            _WHAT[QueryKind(insight.query.kind)],
            describe_change(insight.change_since_yesterday),
            describe_trend(insight.trend),
            sparkline_points(insight.trend),
        )

    @property
    def query(self) -> Any:
        return self.insight.query


@router.get("/dashboard")
def dashboard_page(
    request: Request, principal: PagePrincipal, state: State, saved: str = ""
) -> Response:
    org = principal.organization_id
    now = state.clock.now()
    with state.db.read() as conn:
        found = query_store.insights(conn, org, now=now)
        just_saved = (
            query_store.get_query(conn, org, int(saved))
            if saved.isdigit() and len(saved) < 19
            else None
        )
        counts = task_store.count_tasks(conn, org)
        failed = task_store.list_tasks(conn, org, view=Tab.FAILED.value, limit=FAILURES_SHOWN).items
        names = task_store.related_names(conn, failed)
    context: dict[str, Any] = {
        "insights": [InsightView.of(insight) for insight in found],
        "tabs": [
            (spec.tab.value, spec.label, counts[spec.tab.value]) for spec in TAB_SPECS.values()
        ],
        "total": counts[ALL_VIEW],
        "failures": [TaskView.of(task, names) for task in failed],
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
        "saved": just_saved,
        "can_edit": principal.role.allows(Role.OPERATOR),
    }
    return render(request, "dashboard.html", context)
