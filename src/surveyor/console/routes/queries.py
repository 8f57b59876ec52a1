"""`/api/v1/queries`: saved asset, service and task searches, pinned to the Dashboard as
insights (docs/dashboard.md). Viewers read them; operators save, change, pin and delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from surveyor.console.auth import Operator, Viewer
from surveyor.console.errors import error_responses
from surveyor.console.refusals import deleted, reading, writing
from surveyor.console.schemas import IdPath, Limit, from_attributes
from surveyor.console.state import State
from surveyor.core.queries import MAX_NAME_LENGTH, MAX_THRESHOLD, QueryKind, SavedQuery
from surveyor.core.search import MAX_QUERY_LENGTH
from surveyor.service import queries as rules
from surveyor.store import queries as store

router = APIRouter(
    prefix="/api/v1/queries",
    tags=["queries"],
    responses=error_responses(400, 401, 403, 404, 409, 422),
)

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Search = Annotated[str, Field(max_length=MAX_QUERY_LENGTH)]
Threshold = Annotated[int | None, Field(ge=0, le=MAX_THRESHOLD)]


class QueryIn(BaseModel):
    name: Name
    kind: QueryKind = Field(description="what it searches: asset, service or task")
    search: Search = Field(description="a search in the language of SPEC §11 for its kind")
    threshold: Threshold = Field(None, description="a count above it is highlighted")
    pinned: bool = Field(False, description="pin it to the Dashboard as an insight")


class QueryUpdate(BaseModel):
    name: Name | None = None
    kind: QueryKind | None = None
    search: Search | None = None
    threshold: Threshold = Field(None, description="null removes the threshold")


class QueryOut(BaseModel):
    id: int
    organization_id: int
    name: str
    kind: QueryKind
    search: str
    threshold: int | None
    pinned: bool
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    last_count: int | None
    last_counted_at: datetime | None
    over_threshold: bool
    link: str = Field(description="the page that lists what the search finds")

    @classmethod
    def of(cls, query: SavedQuery) -> QueryOut:
        return from_attributes(cls, query)


class CountOut(BaseModel):
    counted_at: datetime
    count: int


@router.get("", response_model=list[QueryOut])
def list_queries(
    principal: Viewer,
    state: State,
    pinned: Annotated[bool | None, Query(description="only pinned (true) or unpinned")] = None,
) -> Any:
    """The organization's saved queries, in the order they were saved."""
    with state.db.read() as conn:
        found = store.list_queries(conn, principal.organization_id, pinned=pinned)
    return [QueryOut.of(query) for query in found]


@router.post("", status_code=201, response_model=QueryOut)
def create_query(body: QueryIn, principal: Operator, state: State) -> Any:
    """Save a search; pinned, it becomes an insight and a Query task counts it soon."""
    with writing(state) as conn:
        created = rules.create_query(
            conn,
            principal,
            name=body.name,
            kind=body.kind.value,
            search=body.search,
            threshold=body.threshold,
            pinned=body.pinned,
            now=state.clock.now(),
        )
    return QueryOut.of(created)


@router.get("/{query_id}", response_model=QueryOut)
def get_query(query_id: IdPath, principal: Viewer, state: State) -> Any:
    with reading(state) as conn:
        return QueryOut.of(rules.get_query(conn, principal, query_id))


@router.get("/{query_id}/counts", response_model=list[CountOut])
def query_counts(
    query_id: IdPath,
    principal: Viewer,
    state: State,
    limit: Limit = 100,
) -> Any:
    """The counts Query tasks stored, newest first."""
    with reading(state) as conn:
        rules.get_query(conn, principal, query_id)
        history = store.count_history(conn, query_id, limit=limit)
    return [CountOut(counted_at=counted_at, count=count) for counted_at, count in history]


@router.patch("/{query_id}", response_model=QueryOut)
def update_query(query_id: IdPath, body: QueryUpdate, principal: Operator, state: State) -> Any:
    """Change a query; a changed kind or search starts its history afresh."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name != "threshold":
            continue
        changes[name] = value.value if isinstance(value, QueryKind) else value
    with writing(state) as conn:
        edited = rules.edit_query(conn, principal, query_id, changes, now=state.clock.now())
    return QueryOut.of(edited)


@router.post("/{query_id}/pin", response_model=QueryOut)
def pin_query(query_id: IdPath, principal: Operator, state: State) -> Any:
    """Pin the query to the Dashboard as an insight."""
    with writing(state) as conn:
        pinned = rules.set_pinned(conn, principal, query_id, True, now=state.clock.now())
    return QueryOut.of(pinned)


@router.post("/{query_id}/unpin", response_model=QueryOut)
def unpin_query(query_id: IdPath, principal: Operator, state: State) -> Any:
    """Take the insight off the Dashboard (the query and its history stay)."""
    with writing(state) as conn:
        unpinned = rules.set_pinned(conn, principal, query_id, False, now=state.clock.now())
    return QueryOut.of(unpinned)


@router.delete("/{query_id}", status_code=204)
def delete_query(query_id: IdPath, principal: Operator, state: State) -> Response:
    return deleted(state, principal, rules.delete_query, query_id)
