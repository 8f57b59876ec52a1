"""`/api/v1/enrollment-tokens`: admins create, list and revoke explorer enrollment tokens.

A token is shown once, when it is created; the console keeps only its digest. It expires
after `DEFAULT_EXPIRY_DAYS` unless the request says otherwise (`"expires_in_days": null`
for a token that never expires), and may be limited to `max_uses` enrollments. Revoking a
token stops new enrollments with it; explorers already enrolled keep their own secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from surveyor.console.auth import Admin
from surveyor.console.errors import ApiError, ErrorResponse, not_found
from surveyor.console.schemas import MAX_ID, IdPath, Strict
from surveyor.console.state import ConsoleState, console_state
from surveyor.store import explorers as explorer_store
from surveyor.store import records
from surveyor.store.records import audit
from surveyor.store.schema import hosted_zones, sites

router = APIRouter(prefix="/api/v1/enrollment-tokens", tags=["explorers"])
#: A token nobody revokes stops working by itself after a week, unless asked otherwise.
DEFAULT_EXPIRY_DAYS = 7
State = Annotated[ConsoleState, Depends(console_state)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 422)
}


class EnrollmentTokenIn(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    site_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="site of the explorers enrolled with it"
    )
    hosted_zone_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="hosted zone they join"
    )
    expires_in_days: int | None = Field(
        default=DEFAULT_EXPIRY_DAYS,
        ge=1,
        le=3650,
        description=f"days until it expires (default {DEFAULT_EXPIRY_DAYS}); null: never",
    )
    max_uses: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="how many explorers may enroll with it (default: no limit)",
    )


class EnrollmentTokenOut(BaseModel):
    id: int
    organization_id: int
    name: str
    site_id: int | None
    hosted_zone_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    uses: int
    max_uses: int | None
    usable: bool
    state: Literal["usable", "revoked", "expired", "used_up"]


class EnrollmentTokenCreated(EnrollmentTokenOut):
    token: str = Field(description="shown once; give it to `surveyor explorer --token`")


def token_state(row: Mapping[str, Any], *, now: datetime) -> str:
    """Whether explorers can enroll with the token, and if not, why."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up"
    return "usable"


def token_out(row: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    state = token_state(row, now=now)
    return {**row, "state": state, "usable": state == "usable"}


@router.post("", status_code=201, response_model=EnrollmentTokenCreated, responses=_ERRORS)
def create_enrollment_token(body: EnrollmentTokenIn, principal: Admin, state: State) -> Any:
    """Create a token explorers enroll with; it is shown only in this answer."""
    now = state.clock.now()
    org = principal.organization_id
    with state.db.write() as conn:
        if body.site_id is not None and records.get_record(conn, sites, org, body.site_id) is None:
            raise ApiError(
                400, "invalid_token", f"site {body.site_id} does not exist", {"field": "site_id"}
            )
        if (
            body.hosted_zone_id is not None
            and records.get_record(conn, hosted_zones, org, body.hosted_zone_id) is None
        ):
            raise ApiError(
                400,
                "invalid_token",
                f"hosted zone {body.hosted_zone_id} does not exist",
                {"field": "hosted_zone_id"},
            )
        row, plaintext = explorer_store.create_enrollment_token(
            conn,
            org,
            name=body.name.strip(),
            created_by=principal.email,
            now=now,
            site_id=body.site_id,
            hosted_zone_id=body.hosted_zone_id,
            expires_at=now + timedelta(days=body.expires_in_days) if body.expires_in_days else None,
            max_uses=body.max_uses,
        )
        audit(
            conn,
            organization_id=org,
            actor=principal.email,
            action="create",
            object_type="enrollment_token",
            object_id=row["id"],
            details={
                "name": row["name"],
                "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
                "max_uses": row["max_uses"],
            },
            at=now,
        )
    return {**token_out(row, now=now), "token": plaintext}


@router.get("", response_model=list[EnrollmentTokenOut], responses=_ERRORS)
def list_enrollment_tokens(
    principal: Admin,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> Any:
    """The organization's enrollment tokens (never their secrets), revoked ones included."""
    now = state.clock.now()
    with state.db.read() as conn:
        rows = explorer_store.list_enrollment_tokens(
            conn, principal.organization_id, limit=limit, after_id=after
        )
    return [token_out(row, now=now) for row in rows]


@router.get("/{token_id}", response_model=EnrollmentTokenOut, responses=_ERRORS)
def get_enrollment_token(token_id: IdPath, principal: Admin, state: State) -> Any:
    with state.db.read() as conn:
        row = explorer_store.get_enrollment_token(conn, principal.organization_id, token_id)
    if row is None:
        raise not_found("enrollment token", token_id)
    return token_out(row, now=state.clock.now())


@router.delete("/{token_id}", status_code=204, responses=_ERRORS)
def revoke_enrollment_token(token_id: IdPath, principal: Admin, state: State) -> Response:
    """Revoke a token: no explorer can enroll with it any more (enrolled ones stay)."""
    with state.db.write() as conn:
        row = explorer_store.revoke_enrollment_token(
            conn, principal.organization_id, token_id, now=state.clock.now()
        )
        if row is None:
            raise not_found("enrollment token", token_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="revoke",
            object_type="enrollment_token",
            object_id=token_id,
            at=state.clock.now(),
        )
    return Response(status_code=204)
