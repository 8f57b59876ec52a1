"""The rules of saved queries, shared by the API and the Dashboard page: a query's name, kind,
search and threshold are checked before it is saved (a search its kind's keys do not allow is
refused with the position at fault, as `SearchError`); an organization pins at most
`MAX_PINNED`; pinning, or changing a pinned query's search, asks for a Query task so the count
appears soon. Every change is audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.core.queries import MAX_NAME_LENGTH, MAX_PINNED, MAX_THRESHOLD, QueryKind, SavedQuery
from surveyor.core.search import MAX_QUERY_LENGTH
from surveyor.service.audit import record
from surveyor.service.refusals import Reason, Refused
from surveyor.store import queries as store
from surveyor.store.accounts import Principal
from surveyor.store.records import Conflict

#: The audit trail's name for a saved query.
OBJECT_TYPE = "saved_query"
#: The event message of a Query task requested when a query is pinned or its search changes.
PINNED_REASON = "a query was pinned to the Dashboard or its search changed"


class QueryRefused(Refused):
    """A refused action on a saved query."""

    noun = "saved query"


def _invalid(field: str, message: str) -> QueryRefused:
    return QueryRefused(Reason.INVALID, "invalid_query", message, {"field": field})


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise _invalid("name", "a saved query needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid("name", f"a name is at most {MAX_NAME_LENGTH} characters")
    return name


def _checked_kind(kind: str) -> QueryKind:
    try:
        return QueryKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in QueryKind)
        raise _invalid("kind", f"{kind!r} is not a kind of search; use one of {valid}") from None


def _checked_threshold(threshold: int | None) -> int | None:
    if threshold is not None and not 0 <= threshold <= MAX_THRESHOLD:
        raise _invalid("threshold", f"a threshold is a count from 0 to {MAX_THRESHOLD}")
    return threshold


def check_search(conn: Connection, kind: QueryKind, search: str, *, now: datetime) -> str:
    """The search as it will be saved; raises `SearchError` naming the position at fault (and,
    for an unknown key, the valid keys of its kind)."""
    search = search.strip()
    if len(search) > MAX_QUERY_LENGTH:
        raise _invalid("search", f"a search is at most {MAX_QUERY_LENGTH} characters")
    store.compile_saved_search(conn, kind, search, now=now)
    return search


def _check_room_to_pin(conn: Connection, organization_id: int) -> None:
    if store.count_pinned(conn, organization_id) >= MAX_PINNED:
        raise QueryRefused(
            Reason.CONFLICT,
            "too_many_insights",
            f"the Dashboard holds at most {MAX_PINNED} insights; unpin one first",
        )


def get_query(conn: Connection, actor: Principal, query_id: int) -> SavedQuery:
    found = store.get_query(conn, actor.organization_id, query_id)
    return QueryRefused.require_found(found, query_id)


def create_query(
    conn: Connection,
    actor: Principal,
    *,
    name: str,
    kind: str,
    search: str,
    threshold: int | None = None,
    pinned: bool = False,
    now: datetime,
) -> SavedQuery:
    """Save a search; raises QueryRefused, or SearchError for a search that is not valid."""
    name = _checked_name(name)
    checked_kind = _checked_kind(kind)
    search = check_search(conn, checked_kind, search, now=now)
    threshold = _checked_threshold(threshold)
    if pinned:
        _check_room_to_pin(conn, actor.organization_id)
    try:
        created = store.create_query(
            conn,
            actor.organization_id,
            {
                "name": name,
                "kind": checked_kind.value,
                "search": search,
                "threshold": threshold,
                "pinned": pinned,
                "created_by_user_id": actor.user_id,
            },
            now=now,
        )
    except Conflict:
        raise QueryRefused.name_taken(name) from None
    record(
        conn,
        actor,
        "create",
        OBJECT_TYPE,
        created.id,
        now=now,
        details={"name": name, "kind": checked_kind.value, "search": search, "pinned": pinned},
    )
    if pinned:
        store.request_query_refresh(conn, actor.organization_id, now=now, reason=PINNED_REASON)
    return created


def edit_query(
    conn: Connection, actor: Principal, query_id: int, changes: Mapping[str, Any], *, now: datetime
) -> SavedQuery:
    """Change a query's name, kind, search or threshold (`threshold: None` removes it)."""
    current = get_query(conn, actor, query_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _checked_name(changes["name"])
    kind = _checked_kind(changes["kind"]) if "kind" in changes else QueryKind(current.kind)
    if "kind" in changes:
        values["kind"] = kind.value
    if "kind" in changes or "search" in changes:
        values["search"] = check_search(conn, kind, changes.get("search", current.search), now=now)
    if "threshold" in changes:
        values["threshold"] = _checked_threshold(changes["threshold"])
    try:
        edited = store.update_query(conn, actor.organization_id, query_id, values, now=now)
    except Conflict:
        raise QueryRefused.name_taken(values["name"]) from None
    assert edited is not None
    record(conn, actor, "edit", OBJECT_TYPE, query_id, now=now, details=values)
    if edited.pinned and (edited.kind, edited.search) != (current.kind, current.search):
        store.request_query_refresh(conn, actor.organization_id, now=now, reason=PINNED_REASON)
    return edited


def set_pinned(
    conn: Connection, actor: Principal, query_id: int, pinned: bool, *, now: datetime
) -> SavedQuery:
    """Pin a query to the Dashboard as an insight, or unpin it (its history is kept)."""
    current = get_query(conn, actor, query_id)
    if current.pinned == pinned:
        return current
    if pinned:
        _check_room_to_pin(conn, actor.organization_id)
    edited = store.update_query(conn, actor.organization_id, query_id, {"pinned": pinned}, now=now)
    assert edited is not None
    record(
        conn,
        actor,
        "pin" if pinned else "unpin",
        OBJECT_TYPE,
        query_id,
        now=now,
        details={"name": current.name},
    )
    if pinned:
        store.request_query_refresh(conn, actor.organization_id, now=now, reason=PINNED_REASON)
    return edited


def delete_query(conn: Connection, actor: Principal, query_id: int, *, now: datetime) -> None:
    """Delete a query with its history of counts."""
    current = get_query(conn, actor, query_id)
    store.delete_query(conn, actor.organization_id, query_id)
    record(
        conn,
        actor,
        "delete",
        OBJECT_TYPE,
        query_id,
        now=now,
        details={"name": current.name, "kind": current.kind, "search": current.search},
    )
