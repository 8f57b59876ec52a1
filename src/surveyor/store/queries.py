"""Saved queries in the store: the queries themselves, counting what a search finds, the
history of counts a Query task stores, the coalesced request for a Query task, and the
Dashboard's read of its insights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from surveyor.core.kinds import QUERY
from surveyor.core.queries import (
    QUERY_TASK_NAME,
    REFRESH_EVERY,
    TREND_POINTS,
    YESTERDAY,
    Insight,
    QueryKind,
    SavedQuery,
)
from surveyor.core.search import parse
from surveyor.core.task import Task
from surveyor.core.tasks import ALL_VIEW
from surveyor.store import owned_rows
from surveyor.store import tasks as task_store
from surveyor.store.asset_search import ASSET_SEARCH
from surveyor.store.schema import assets, query_counts, saved_queries, services, tasks
from surveyor.store.search_sql import SqlCatalogue, compile_search
from surveyor.store.service_search import SERVICE_SEARCH
from surveyor.store.system_tasks import WAITING, request_system_task
from surveyor.store.task_search import HIDDEN_KEY, TASK_SEARCH, mentions_key

#: The search language each kind of query speaks.
CATALOGUES: dict[QueryKind, SqlCatalogue] = {
    QueryKind.ASSET: ASSET_SEARCH,
    QueryKind.SERVICE: SERVICE_SEARCH,
    QueryKind.TASK: TASK_SEARCH,
}
_q = saved_queries.c
_NAME_TAKEN = "a saved query with that name exists"


# The searches ---------------------------------------------------------------------------------


def compile_saved_search(
    conn: Connection, kind: QueryKind, search: str, *, now: datetime
) -> tuple[ColumnElement[bool] | None, bool]:
    """The WHERE condition of a saved search (None: everything) and, for tasks, whether it
    asks for hidden ones; raises `SearchError` for a search its kind's keys do not allow."""
    query = parse(search)
    clause = compile_search(conn, query, CATALOGUES[kind], now=now)
    return clause, kind is QueryKind.TASK and mentions_key(query, HIDDEN_KEY)


def count_matches(
    conn: Connection, organization_id: int, kind: QueryKind, search: str, *, now: datetime
) -> int:
    """How many of the organization's assets, services or tasks the search finds now."""
    clause, include_hidden = compile_saved_search(conn, kind, search, now=now)
    if kind is QueryKind.TASK:
        counts = task_store.count_tasks(
            conn, organization_id, search=clause, include_hidden=include_hidden
        )
        return counts[ALL_VIEW]
    if kind is QueryKind.SERVICE:
        statement = (
            select(func.count())
            .select_from(services.join(assets, services.c.asset_id == assets.c.id))
            .where(assets.c.organization_id == organization_id)
        )
    else:
        statement = (
            select(func.count())
            .select_from(assets)
            .where(assets.c.organization_id == organization_id)
        )
    if clause is not None:
        statement = statement.where(clause)
    return int(conn.execute(statement).scalar_one())


# The queries ----------------------------------------------------------------------------------


_QUERIES = owned_rows.OwnedTable(saved_queries, SavedQuery.from_row, name_taken=_NAME_TAKEN)
get_query = _QUERIES.get


def create_query(
    conn: Connection, organization_id: int, values: Mapping[str, Any], *, now: datetime
) -> SavedQuery:
    """Save a query (name, kind, search, threshold, pinned, created_by_user_id); raises
    `Conflict` when the organization has a query of that name."""
    row = {"pinned": False, "threshold": None, **values}
    query_id = _QUERIES.insert(conn, organization_id, row, now=now)
    found = get_query(conn, organization_id, query_id)
    assert found is not None
    return found


def list_queries(
    conn: Connection, organization_id: int, *, pinned: bool | None = None, limit: int = 1000
) -> list[SavedQuery]:
    """The organization's saved queries in the order they were saved (or only the pinned
    ones, or only the others)."""
    where = _q.pinned.is_(pinned) if pinned is not None else None
    return _QUERIES.page(conn, organization_id, limit=limit, where=where)


def count_pinned(conn: Connection, organization_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(_q.organization_id == organization_id, _q.pinned.is_(True))
        ).scalar_one()
    )


def update_query(
    conn: Connection,
    organization_id: int,
    query_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime,
) -> SavedQuery | None:
    """Change a query; a changed kind or search starts its history afresh (the old counts
    were of another search). Raises `Conflict` for a name taken."""
    before = get_query(conn, organization_id, query_id)
    if before is None:
        return None
    values = dict(changes)
    if (
        values.get("kind", before.kind) != before.kind
        or values.get("search", before.search) != before.search
    ):
        conn.execute(delete(query_counts).where(query_counts.c.query_id == query_id))
        values.update(last_count=None, last_counted_at=None)
    _QUERIES.change(conn, organization_id, query_id, values, now=now)
    return get_query(conn, organization_id, query_id)


#: Delete a query and its history of counts.
delete_query = _QUERIES.delete


# Counts -----------------------------------------------------------------------------------------


def record_count(
    conn: Connection, query_id: int, count: int, *, counted_at: datetime, task_id: int | None
) -> None:
    """Store a count of a query with its time, and keep it as the query's latest."""
    conn.execute(
        insert(query_counts).values(
            query_id=query_id, count=count, counted_at=counted_at, task_id=task_id
        )
    )
    conn.execute(
        update(saved_queries)
        .where(_q.id == query_id)
        .values(last_count=count, last_counted_at=counted_at)
    )


def count_history(
    conn: Connection, query_id: int, *, limit: int = 100
) -> list[tuple[datetime, int]]:
    """A query's latest counts, newest first: (time, count)."""
    rows = conn.execute(
        select(query_counts.c.counted_at, query_counts.c.count)
        .where(query_counts.c.query_id == query_id)
        .order_by(query_counts.c.counted_at.desc(), query_counts.c.id.desc())
        .limit(limit)
    )
    return [(counted_at, int(count)) for counted_at, count in rows]


# The Query task ---------------------------------------------------------------------------------


def request_query_refresh(
    conn: Connection, organization_id: int, *, now: datetime, reason: str
) -> Task | None:
    """Queue a Query task of the organization, unless it pins no query or one already waits
    there (coalesced: at most one waits per organization); the task queued, or None."""
    pinned = conn.execute(
        select(_q.id).where(_q.organization_id == organization_id, _q.pinned.is_(True)).limit(1)
    ).first()
    if pinned is None:
        return None
    return request_system_task(
        conn,
        organization_id,
        QUERY.type,
        name=QUERY_TASK_NAME,
        description="counts what the Dashboard's pinned queries find",
        message=reason,
        now=now,
    )


def organizations_due(conn: Connection, *, now: datetime) -> list[int]:
    """Organizations that pin a query and had no Query task in the last hour (and none
    waits): their hourly refresh is due."""
    query_task = and_(
        tasks.c.organization_id == _q.organization_id,
        tasks.c.type == QUERY.type,
        or_(tasks.c.created_at > now - REFRESH_EVERY, tasks.c.status.in_(WAITING)),
        tasks.c.removed_at.is_(None),
    )
    rows = conn.execute(
        select(_q.organization_id)
        .where(_q.pinned.is_(True), ~exists().where(query_task))
        .group_by(_q.organization_id)
        .order_by(_q.organization_id)
    )
    return [int(row[0]) for row in rows]


# The Dashboard ----------------------------------------------------------------------------------


def insights(
    conn: Connection, organization_id: int, *, now: datetime, points: int = TREND_POINTS
) -> list[Insight]:
    """The organization's pinned queries with their stored counts: the latest, the last
    `points` (the trend) and the latest at least a day old, each read through the index of
    the history."""
    day_ago = (
        select(query_counts.c.count)
        .where(query_counts.c.query_id == _q.id, query_counts.c.counted_at <= now - YESTERDAY)
        .order_by(query_counts.c.counted_at.desc())
        .limit(1)
        .scalar_subquery()
        .label("day_ago")
    )
    rows = (
        conn.execute(
            select(saved_queries, day_ago)
            .where(_q.organization_id == organization_id, _q.pinned.is_(True))
            .order_by(_q.id)
        )
        .mappings()
        .all()
    )
    trends = _trends(conn, [int(row["id"]) for row in rows], points)
    return [
        Insight(
            SavedQuery.from_row(row),
            tuple(trends.get(int(row["id"]), ())),
            None if row["day_ago"] is None else int(row["day_ago"]),
        )
        for row in rows
    ]


def _trends(conn: Connection, query_ids: Sequence[int], points: int) -> dict[int, list[int]]:
    """The last `points` counts of each query, oldest first: one statement, compiled once and
    run for each query, reading the index range of its latest counts."""
    if points <= 0:
        return {}
    latest = (
        select(query_counts.c.count)
        .where(query_counts.c.query_id == bindparam("query_id"))
        .order_by(query_counts.c.counted_at.desc())
        .limit(points)
    )
    return {
        query_id: [
            int(count) for (count,) in reversed(conn.execute(latest, {"query_id": query_id}).all())
        ]
        for query_id in query_ids
    }
