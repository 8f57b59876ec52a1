"""`/api/v1/audit`: the organization's audit trail, newest first, for admins."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from surveyor.console.auth import Admin
from surveyor.console.errors import ApiError, error_responses
from surveyor.console.schemas import MAX_ID, AuditPage
from surveyor.console.state import State
from surveyor.store import audit as audit_store
from surveyor.store.audit import AuditFilter, InvalidAuditFilter

router = APIRouter(prefix="/api/v1", tags=["audit"])
_ERRORS = error_responses(400, 401, 403, 422)
#: Filter text: no NUL characters, which no database stores.
_TEXT = r"^[^\x00]*$"


def utc_bound(value: datetime | None, field: str) -> datetime | None:
    """A time filter in UTC; one too close to the ends of the calendar is refused."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidAuditFilter(field, f"'{field}' is out of range") from exc


def invalid_filter(exc: InvalidAuditFilter) -> ApiError:
    return ApiError(400, "invalid_filter", exc.message, {"field": exc.field})


@router.get("/audit", response_model=AuditPage, responses=_ERRORS)
def list_audit(
    principal: Admin,
    state: State,
    actor: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=_TEXT,
            description="who did it, exactly: a user's e-mail, `explorer:NAME` or `system`",
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=40, pattern=_TEXT, description="e.g. create, edit, stop, delete"),
    ] = None,
    object_type: Annotated[
        str | None,
        Query(max_length=40, pattern=_TEXT, description="e.g. task, site, hosted_zone"),
    ] = None,
    object_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="RFC 3339: entries at or after this time")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="RFC 3339: entries before this time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit_store.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    """Who did what to which object in this organization, newest first; pass
    `next_cursor` back as `cursor` for the next page."""
    try:
        filters = AuditFilter(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=utc_bound(since, "since"),
            until=utc_bound(until, "until"),
        )
        with state.db.read() as conn:
            page = audit_store.list_audit_events(
                conn, principal.organization_id, filters, limit=limit, cursor=cursor
            )
    except InvalidAuditFilter as exc:
        raise invalid_filter(exc) from exc
    return {"items": [asdict(event) for event in page.items], "next_cursor": page.next_cursor}
