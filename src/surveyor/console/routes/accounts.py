"""Users, API tokens, organizations and login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import update

from surveyor.console.auth import Admin, Superuser, Viewer
from surveyor.console.errors import ApiError, ErrorResponse, not_found
from surveyor.console.schemas import (
    IdPath,
    LoginIn,
    LoginOut,
    OrganizationIn,
    OrganizationOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserCreated,
    UserIn,
    UserOut,
    UserUpdate,
)
from surveyor.console.state import ConsoleState, console_state
from surveyor.security.passwords import generate_password, verify_password
from surveyor.store import accounts
from surveyor.store.accounts import Role
from surveyor.store.records import audit
from surveyor.store.schema import users

router = APIRouter(prefix="/api/v1")
State = Annotated[ConsoleState, Depends(console_state)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 422, 429)
}


@router.post("/auth/login", response_model=LoginOut, tags=["auth"], responses=_ERRORS)
def login(body: LoginIn, request: Request, state: State) -> Any:
    """Exchange an email and password for a session token (valid 12 hours)."""
    client = request.client.host if request.client else "unknown"
    key = f"{client}|{body.email.lower()}"
    wait = state.login_limiter.retry_after(key)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many failed logins; try again in {wait} seconds",
            {"retry_after": wait},
        )
    with state.db.write() as conn:
        user = accounts.find_user_by_email(conn, body.email)
        valid = (
            user is not None
            and user["is_active"]
            and verify_password(user["password_hash"], body.password)
        )
        if not valid or user is None:
            state.login_limiter.failed(key)
            raise ApiError(401, "unauthenticated", "the email or password is wrong")
        organization_id = body.organization_id or accounts.first_membership(conn, user["id"])
        role = (
            accounts.membership_role(conn, organization_id, user["id"])
            if organization_id is not None
            else None
        )
        if organization_id is None or role is None:
            raise ApiError(403, "forbidden", "you are not a member of that organization")
        expires = datetime.now(UTC) + accounts.SESSION_LIFETIME
        _, token = accounts.create_token(
            conn,
            user_id=user["id"],
            organization_id=organization_id,
            name="login session",
            kind="session",
            expires_at=expires,
        )
        conn.execute(
            update(users).where(users.c.id == user["id"]).values(last_login_at=datetime.now(UTC))
        )
    state.login_limiter.succeeded(key)
    return {
        "token": token,
        "expires_at": expires,
        "user_id": user["id"],
        "email": user["email"],
        "organization_id": organization_id,
        "role": role.value,
    }


@router.get("/users/me", response_model=UserOut, tags=["users"], responses=_ERRORS)
def current_user(principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        member = accounts.get_member(conn, principal.organization_id, principal.user_id)
    if member is None:
        raise not_found("user", principal.user_id)
    return member


@router.get("/users", response_model=list[UserOut], tags=["users"], responses=_ERRORS)
def list_users(principal: Admin, state: State) -> Any:
    with state.db.read() as conn:
        return accounts.list_members(conn, principal.organization_id, limit=1000)


@router.post(
    "/users", status_code=201, response_model=UserCreated, tags=["users"], responses=_ERRORS
)
def create_user(body: UserIn, principal: Admin, state: State) -> Any:
    """Add a user to this organization (an existing account just gains the membership)."""
    generated = None if body.password else generate_password()
    with state.db.write() as conn:
        user = accounts.find_user_by_email(conn, body.email)
        if user is None:
            user = accounts.create_user(
                conn, body.email, password=body.password or generated, name=body.name
            )
        else:
            generated = None
            if accounts.membership_role(conn, principal.organization_id, user["id"]):
                raise ApiError(409, "conflict", f"{body.email} is already a member")
        accounts.set_membership(conn, principal.organization_id, user["id"], Role(body.role))
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="create",
            object_type="user",
            object_id=user["id"],
            details={"email": body.email, "role": body.role},
        )
        member = accounts.get_member(conn, principal.organization_id, user["id"])
    return {**(member or {}), "generated_password": generated}


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"], responses=_ERRORS)
def get_user(user_id: IdPath, principal: Admin, state: State) -> Any:
    with state.db.read() as conn:
        member = accounts.get_member(conn, principal.organization_id, user_id)
    if member is None:
        raise not_found("user", user_id)
    return member


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"], responses=_ERRORS)
def update_user(user_id: IdPath, body: UserUpdate, principal: Admin, state: State) -> Any:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with state.db.write() as conn:
        if accounts.get_member(conn, principal.organization_id, user_id) is None:
            raise not_found("user", user_id)
        if user_id == principal.user_id and (
            changes.get("role", "admin") != "admin" or changes.get("is_active") is False
        ):
            raise ApiError(
                409, "conflict", "you cannot demote or deactivate yourself; ask another admin"
            )
        state.principals.clear()
        if "role" in changes:
            accounts.set_membership(conn, principal.organization_id, user_id, Role(changes["role"]))
        if "password" in changes:
            accounts.set_password(conn, user_id, changes["password"])
        profile = {k: changes[k] for k in ("name", "is_active") if k in changes}
        if profile:
            conn.execute(update(users).where(users.c.id == user_id).values(**profile))
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="edit",
            object_type="user",
            object_id=user_id,
            details={"fields": sorted(changes)},
        )
        return accounts.get_member(conn, principal.organization_id, user_id)


@router.delete("/users/{user_id}", status_code=204, tags=["users"], responses=_ERRORS)
def remove_user(user_id: IdPath, principal: Admin, state: State) -> Response:
    """Remove a user from this organization (their account and history stay)."""
    if user_id == principal.user_id:
        raise ApiError(409, "conflict", "you cannot remove yourself; ask another admin")
    with state.db.write() as conn:
        if not accounts.remove_membership(conn, principal.organization_id, user_id):
            raise not_found("user", user_id)
        state.principals.clear()
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="delete",
            object_type="user",
            object_id=user_id,
        )
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"], responses=_ERRORS)
def list_tokens(principal: Viewer, state: State) -> Any:
    """Your API tokens in this organization (their secrets are never shown again)."""
    with state.db.read() as conn:
        return accounts.list_tokens(conn, principal.user_id, principal.organization_id)


@router.post(
    "/tokens", status_code=201, response_model=TokenCreated, tags=["tokens"], responses=_ERRORS
)
def create_token(body: TokenIn, principal: Viewer, state: State) -> Any:
    """Create an API token with your role; the token is shown only in this answer."""
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    with state.db.write() as conn:
        row, plaintext = accounts.create_token(
            conn,
            user_id=principal.user_id,
            organization_id=principal.organization_id,
            name=body.name,
            expires_at=expires,
        )
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="create",
            object_type="token",
            object_id=row["id"],
            details={"name": body.name},
        )
    return {**row, "token": plaintext}


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"], responses=_ERRORS)
def delete_token(token_id: IdPath, principal: Viewer, state: State) -> Response:
    with state.db.write() as conn:
        if not accounts.delete_token(conn, principal.user_id, token_id):
            raise not_found("token", token_id)
        state.principals.clear()
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="delete",
            object_type="token",
            object_id=token_id,
        )
    return Response(status_code=204)


@router.get(
    "/organizations",
    response_model=list[OrganizationOut],
    tags=["organizations"],
    responses=_ERRORS,
)
def list_organizations(_principal: Superuser, state: State) -> Any:
    with state.db.read() as conn:
        return accounts.list_organizations(conn)


@router.post(
    "/organizations",
    status_code=201,
    response_model=OrganizationOut,
    tags=["organizations"],
    responses=_ERRORS,
)
def create_organization(body: OrganizationIn, principal: Superuser, state: State) -> Any:
    """Create an organization; the calling superuser becomes its admin."""
    with state.db.write() as conn:
        org = accounts.create_organization(
            conn, body.name, scope_cap=body.scope_cap, probe_cap=body.probe_cap
        )
        accounts.set_membership(conn, org["id"], principal.user_id, Role.ADMIN)
        audit(
            conn,
            organization_id=org["id"],
            actor=principal.email,
            action="create",
            object_type="organization",
            object_id=org["id"],
        )
    return org


@router.patch(
    "/organizations/{org_id}",
    response_model=OrganizationOut,
    tags=["organizations"],
    responses=_ERRORS,
)
def update_organization(
    org_id: IdPath, body: OrganizationIn, principal: Superuser, state: State
) -> Any:
    """Rename an organization or change its scope and probe caps."""
    with state.db.write() as conn:
        if accounts.get_organization(conn, org_id) is None:
            raise not_found("organization", org_id)
        accounts.update_organization(
            conn,
            org_id,
            name=body.name,
            scope_cap=body.scope_cap,
            probe_cap=body.probe_cap if "probe_cap" in body.model_fields_set else None,
        )
        audit(
            conn,
            organization_id=org_id,
            actor=principal.email,
            action="edit",
            object_type="organization",
            object_id=org_id,
        )
        return accounts.get_organization(conn, org_id)
