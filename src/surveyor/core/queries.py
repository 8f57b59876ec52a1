"""Saved queries and the Dashboard's insights (SPEC §10, docs/dashboard.md): what a saved
query is, what it searches, and what an insight shows of its stored counts.

A saved query is an asset, service or task search with a name and an optional threshold;
pinned, it is an insight on the Dashboard. A Query task counts the pinned ones and stores each
count with its time; the Dashboard reads those stored counts, never searching live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode

from surveyor.core.rows import ColumnRow

#: The most insights an organization pins: the Dashboard stays one fast page.
MAX_PINNED = 100
MAX_NAME_LENGTH = 200
#: A threshold is a count: 0 up to this.
MAX_THRESHOLD = 10**12
#: Pinned queries are counted again at least this often (and after each processing).
REFRESH_EVERY = timedelta(hours=1)
#: "Change since yesterday" compares with the latest count at least this old.
YESTERDAY = timedelta(days=1)
#: The sparkline shows this many of the latest counts.
TREND_POINTS = 24
#: Who creates Query tasks, and their name (SPEC §10).
QUERY_TASK_NAME = "Query"


class QueryKind(StrEnum):
    """What a saved query searches: its search language keys are that list's (SPEC §11)."""

    ASSET = "asset"
    #: Services of assets: counts services, and links to the assets that have them.
    SERVICE = "service"
    TASK = "task"

    @property
    def page(self) -> str:
        """The page that lists what the search finds."""
        return "/tasks" if self is QueryKind.TASK else "/assets"


@dataclass(frozen=True, slots=True)
class SavedQuery(ColumnRow):
    """A saved search; `last_count` is the latest count a Query task stored (None: none yet)."""

    id: int
    organization_id: int
    name: str
    kind: str
    search: str
    threshold: int | None
    pinned: bool
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    last_count: int | None
    last_counted_at: datetime | None

    @property
    def link(self) -> str:
        """The Assets or Tasks page with its search (a service search: the assets that have
        such services)."""
        page = QueryKind(self.kind).page
        return f"{page}?{urlencode({'search': self.search})}" if self.search else page

    @property
    def over_threshold(self) -> bool:
        """Its latest count is above its threshold."""
        return (
            self.threshold is not None
            and self.last_count is not None
            and self.last_count > self.threshold
        )


@dataclass(frozen=True, slots=True)
class Insight:
    """A pinned query as the Dashboard shows it: its latest count, the counts before it (oldest
    first, ending with the latest) and the latest count at least a day old."""

    query: SavedQuery
    trend: tuple[int, ...]
    day_ago: int | None

    @property
    def change_since_yesterday(self) -> int | None:
        """The latest count minus the count a day ago; None when either is unknown."""
        if self.query.last_count is None or self.day_ago is None:
            return None
        return self.query.last_count - self.day_ago


def describe_change(change: int | None) -> str:
    """A change since yesterday in words ("+3", "-2", "no change", "no count a day ago")."""
    if change is None:
        return "no count a day ago"
    if change == 0:
        return "no change"
    return f"+{change:,}" if change > 0 else f"-{-change:,}"


def describe_trend(trend: Sequence[int]) -> str:
    """The sparkline's text alternative: how many counts, their range, first and last."""
    if not trend:
        return "not counted yet"
    if len(trend) == 1:
        return f"one count so far: {trend[0]:,}"
    return (
        f"last {len(trend)} counts, from {trend[0]:,} to {trend[-1]:,} "
        f"(lowest {min(trend):,}, highest {max(trend):,})"
    )
