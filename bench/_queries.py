"""What the benchmark asks: the API requests, and the same questions hand-written in SQL.

Each case is one thing the Tasks overview page does: open a tab, page deep into one, show the
tab counts, search. The hand-written SQL is the best index-friendly form we could write for the
same rows (equalities where a contains-match can only match one value, the tab's index order,
row-value keyset bounds), so the ratio API/SQL shows what the product adds on top of the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from surveyor.core.tasks import ALL_VIEW, TAB_SPECS, Tab

PAGE_SIZE = 50
DEEP_ROWS = 10_000


@dataclass(frozen=True)
class Backend:
    """How plain SQL differs between the two databases."""

    name: str
    false: str
    #: A case-insensitive LIKE of `{column}`, waiting for its (lower-case) pattern.
    like_form: str
    encode_time: Callable[[datetime], Any]

    def like(self, column: str) -> str:
        return self.like_form.format(column=column)

    def sql(self, text: str) -> str:
        """`:name` placeholders in the driver's own style."""
        if self.name == "sqlite":
            return text
        return re.sub(r":(\w+)", r"%(\1)s", text)


def sqlite_backend() -> Backend:
    # The same text the product's UTCDateTime binds on SQLite (checked by the loader).
    return Backend(
        "sqlite",
        "0",
        "{column} LIKE",
        lambda value: value.astimezone(UTC).isoformat(" ", "microseconds")[:26],
    )


def postgresql_backend() -> Backend:
    # Folded in the "C" collation, as the product compares (ASCII folding) and as its indexes
    # hold the text: in any other form no index could serve the LIKE.
    return Backend("postgresql", "false", 'lower({column} COLLATE "C") LIKE', lambda value: value)


@dataclass(frozen=True)
class Search:
    """A search a user would type, the view it is typed in, and its hand-written SQL."""

    query: str
    view: str
    why: str
    #: Extra WHERE terms and their parameters, given the backend and the current time.
    sql: Callable[[Backend, datetime], tuple[str, dict[str, Any]]]


def _sites_named(backend: Backend) -> str:
    return f"SELECT id FROM sites WHERE organization_id = :org AND {backend.like('name')} :site"


SEARCHES: tuple[Search, ...] = (
    Search(
        "status:processed site:dc-3",
        ALL_VIEW,
        "everything finished at one site; a join through the sites table",
        lambda b, now: (
            f"AND status = 'processed' AND site_id IN ({_sites_named(b)})",
            {"site": "%dc-3%"},
        ),
    ),
    Search(
        "name:weekly created_at:<30days",
        ALL_VIEW,
        "a name fragment and an age: the runs of the weekly templates this month",
        lambda b, now: (
            f"AND {b.like('name')} :name AND created_at > :since",
            {"name": "%weekly%", "since": b.encode_time(now - timedelta(days=30))},
        ),
    ),
    Search(
        "type:scan AND NOT status:canceled",
        ALL_VIEW,
        "a broad filter with NOT: most rows match",
        lambda b, now: ("AND type = 'scan' AND status <> 'canceled'", {}),
    ),
    Search(
        "new:>0 changed:>5",
        Tab.COMPLETED.value,
        "change-summary counts in the completed tab: scans that found new and changed assets",
        lambda b, now: ("AND cs_new > 0 AND cs_changed > 5", {}),
    ),
    Search(
        "created_by:alice OR explorer:exp-07",
        Tab.FAILED.value,
        "triage in the failed tab: one user's tasks or one explorer's, an OR across a join",
        lambda b, now: (
            f"AND ({b.like('created_by')} :who OR explorer_id IN (SELECT id FROM explorers"
            f" WHERE organization_id = :org AND {b.like('name')} :explorer))",
            {"who": "%alice%", "explorer": "%exp-07%"},
        ),
    ),
    Search(
        "name:inc4711",
        ALL_VIEW,
        "a rare substring: one incident's sweeps among a million names (the trigram index)",
        lambda b, now: (f"AND {b.like('name')} :name", {"name": "%inc4711%"}),
    ),
    Search(
        "name:scan",
        ALL_VIEW,
        "a common substring: counts stop at 10,000 (shown 10,000+)",
        lambda b, now: (f"AND {b.like('name')} :name", {"name": "%scan%"}),
    ),
    Search(
        "name:audit status:processed created_at:<90days",
        ALL_VIEW,
        "a substring with a status and an age",
        lambda b, now: (
            f"AND {b.like('name')} :name AND status = 'processed' AND created_at > :since",
            {"name": "%audit%", "since": b.encode_time(now - timedelta(days=90))},
        ),
    ),
)


@dataclass(frozen=True)
class Case:
    """One measured question: a page of a view (first or deep) or the tab counts."""

    key: str
    label: str
    kind: str  # "page" | "deep" | "counts"
    view: str | None = None
    search: Search | None = None
    #: For deep pages: the API cursor and the hand-written bound, found before timing.
    cursor: str | None = None
    bound: dict[str, Any] = field(default_factory=dict)

    def api_request(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        if self.search is not None:
            params["search"] = self.search.query
        if self.kind == "counts":
            return "/api/v1/tasks/counts", params
        params.update(tab=self.view, limit=PAGE_SIZE)
        if self.cursor is not None:
            params["cursor"] = self.cursor
        return "/api/v1/tasks", params

    def hand_sql(self, backend: Backend, org_id: int, now: datetime) -> tuple[str, dict[str, Any]]:
        extra: str = ""
        params: dict[str, Any] = {}
        if self.search is not None:
            extra, params = self.search.sql(backend, now)
        params = {**params, "org": org_id}
        if self.kind == "counts" and self.search is None:
            # The product keeps per-tab counters in step with every write; by hand, one
            # would read them the same way.
            return backend.sql(
                "SELECT tab, sum(count) FROM task_tab_counts WHERE organization_id = :org"
                f" AND hidden = {backend.false} GROUP BY tab"
            ), params
        if self.kind == "counts":
            return backend.sql(
                "SELECT tab, count(*) FROM tasks WHERE organization_id = :org"
                f" AND hidden = {backend.false} AND tab IS NOT NULL {extra} GROUP BY tab"
            ), params
        assert self.view is not None
        bound = ""
        if self.view == ALL_VIEW:
            if self.kind == "deep":
                bound = "AND id < :last_id"
                params["last_id"] = self.bound["id"]
            return backend.sql(
                "SELECT * FROM tasks WHERE organization_id = :org"
                f" AND hidden = {backend.false} AND tab IS NOT NULL {extra} {bound}"
                f" ORDER BY id DESC LIMIT {PAGE_SIZE + 1}"
            ), params
        spec = TAB_SPECS[Tab(self.view)]
        direction, compare = ("DESC", "<") if spec.newest_first else ("ASC", ">")
        if self.kind == "deep":
            bound = f"AND (tab_sort, id) {compare} (:last_sort, :last_id)"
            params.update(last_sort=self.bound["tab_sort"], last_id=self.bound["id"])
        params["tab"] = self.view
        return backend.sql(
            "SELECT * FROM tasks WHERE organization_id = :org AND tab = :tab"
            f" AND hidden = {backend.false} {extra} {bound}"
            f" ORDER BY tab_sort {direction}, id {direction} LIMIT {PAGE_SIZE + 1}"
        ), params

    def anchor_sql(self, backend: Backend, org_id: int) -> tuple[str, dict[str, Any]]:
        """The last row of the first DEEP_ROWS rows of the view: where the deep page starts."""
        assert self.view is not None
        params: dict[str, Any] = {"org": org_id, "skip": DEEP_ROWS - 1}
        if self.view == ALL_VIEW:
            return backend.sql(
                "SELECT NULL, id FROM tasks WHERE organization_id = :org"
                f" AND hidden = {backend.false} AND tab IS NOT NULL"
                " ORDER BY id DESC LIMIT 1 OFFSET :skip"
            ), params
        spec = TAB_SPECS[Tab(self.view)]
        direction = "DESC" if spec.newest_first else "ASC"
        params["tab"] = self.view
        return backend.sql(
            "SELECT tab_sort, id FROM tasks WHERE organization_id = :org AND tab = :tab"
            f" AND hidden = {backend.false}"
            f" ORDER BY tab_sort {direction}, id {direction} LIMIT 1 OFFSET :skip"
        ), params


FIRST_PAGE_VIEWS = (*(tab.value for tab in Tab), ALL_VIEW)
DEEP_VIEWS = (Tab.COMPLETED.value, ALL_VIEW)


def cases() -> list[Case]:
    """Every case, in the order the table shows them."""
    found = [
        Case(f"first:{view}", f"first page: {view}", "page", view) for view in FIRST_PAGE_VIEWS
    ]
    found += [
        Case(f"deep:{view}", f"page {DEEP_ROWS:,} rows deep: {view}", "deep", view)
        for view in DEEP_VIEWS
    ]
    found.append(Case("counts", "tab counts", "counts"))
    for number, search in enumerate(SEARCHES, start=1):
        found.append(
            Case(
                f"search{number}:page",
                f"{search.view}: {search.query}",
                "page",
                search.view,
                search,
            )
        )
        found.append(
            Case(f"search{number}:counts", f"counts: {search.query}", "counts", None, search)
        )
    return found
