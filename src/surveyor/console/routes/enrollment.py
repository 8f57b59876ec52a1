"""`/api/v1/enrollment-tokens`: admins create, list and revoke explorer enrollment tokens.

A token is shown once, when it is created; the console keeps only its digest. It expires
after seven days unless the request says otherwise (`"expires_in_days": null` for a token
that never expires), and may be limited to `max_uses` enrollments. Revoking a token stops
new enrollments with it; explorers already enrolled keep their own secrets. The rules are
`service/enrollment.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from surveyor.console import issued_tokens
from surveyor.console.auth import Admin
from surveyor.console.errors import ApiError, error_responses, not_found
from surveyor.console.schemas import MAX_ID, EnrollmentTokenIn, IdPath, Limit
from surveyor.console.state import State
from surveyor.service import enrollment
from surveyor.service.enrollment import token_out
from surveyor.store import explorers as explorer_store

router = APIRouter(
    prefix="/api/v1/enrollment-tokens",
    tags=["explorers"],
    responses=error_responses(400, 401, 403, 404, 422),
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


@router.post("", status_code=201, response_model=EnrollmentTokenCreated)
def create_enrollment_token(body: EnrollmentTokenIn, principal: Admin, state: State) -> Any:
    """Create a token explorers enroll with; it is shown only in this answer."""
    try:
        return issued_tokens.create_enrollment_token(state, principal, body)
    except enrollment.TokenRefused as exc:
        raise ApiError(400, "invalid_token", exc.message, {"field": exc.field}) from exc


@router.get("", response_model=list[EnrollmentTokenOut])
def list_enrollment_tokens(
    principal: Admin,
    state: State,
    limit: Limit = 100,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> Any:
    """The organization's enrollment tokens (never their secrets), revoked ones included."""
    now = state.clock.now()
    with state.db.read() as conn:
        rows = explorer_store.list_enrollment_tokens(
            conn, principal.organization_id, limit=limit, after_id=after
        )
    return [token_out(row, now=now) for row in rows]


@router.get("/{token_id}", response_model=EnrollmentTokenOut)
def get_enrollment_token(token_id: IdPath, principal: Admin, state: State) -> Any:
    with state.db.read() as conn:
        row = explorer_store.get_enrollment_token(conn, principal.organization_id, token_id)
    if row is None:
        raise not_found("enrollment token", token_id)
    return token_out(row, now=state.clock.now())


@router.delete("/{token_id}", status_code=204)
def revoke_enrollment_token(token_id: IdPath, principal: Admin, state: State) -> Response:
    """Revoke a token: no explorer can enroll with it any more (enrolled ones stay)."""
    with state.db.write() as conn:
        row = enrollment.revoke_token(conn, principal, token_id, now=state.clock.now())
    if row is None:
        raise not_found("enrollment token", token_id)
    return Response(status_code=204)
