"""Login, accounts, memberships, invitations, API tokens and organizations.

The rules live in `service/accounts.py`; these handlers parse, call it and render.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection

from surveyor.console import issued_tokens
from surveyor.console.account_rules import (
    account_rules,
    add_requested_member,
    change_own_password,
)
from surveyor.console.auth import LOGIN_REFUSAL_STATUS, Admin, Superuser, Viewer, login_source
from surveyor.console.errors import ApiError, error_responses, not_found
from surveyor.console.schemas import (
    AccountOut,
    AccountUpdate,
    IdPath,
    InvitationOut,
    LoginIn,
    LoginOut,
    MemberAdded,
    MembershipOut,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationIn,
    OrganizationOut,
    PasswordChange,
    PasswordChanged,
    ProfileUpdate,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserUpdate,
)
from surveyor.console.state import State
from surveyor.service import accounts as rules
from surveyor.service.accounts import AccountChanges
from surveyor.service.login import LoginRefused, log_in
from surveyor.service.login import Refusal as LoginRefusal
from surveyor.store import accounts
from surveyor.store.accounts import Invitation, Membership, Role

router = APIRouter(prefix="/api/v1", responses=error_responses(400, 401, 403, 404, 409, 422, 429))


def _invitation_out(invitation: Invitation, now: datetime) -> dict[str, Any]:
    return {**asdict(invitation), "expired": invitation.expired(now)}


def _membership_out(membership: Membership) -> dict[str, Any]:
    return asdict(membership)


def _account_out(conn: Connection, user_id: int) -> dict[str, Any]:
    account = accounts.get_user(conn, user_id)
    if account is None:
        raise not_found("user", user_id)
    memberships = accounts.list_memberships(conn, [user_id])[user_id]
    return {**account, "memberships": [_membership_out(m) for m in memberships]}


def _member_out(conn: Connection, organization_id: int, user_id: int) -> dict[str, Any]:
    member = accounts.get_member(conn, organization_id, user_id)
    if member is None:
        raise not_found("user", user_id)
    return member


def _account_changes(body: UserUpdate | AccountUpdate) -> AccountChanges:
    """The changes to an account's own fields that a PATCH body asks for."""
    return AccountChanges(
        name=body.name, email=body.email, password=body.password, is_active=body.is_active
    )


def _added_out(
    conn: Connection, organization_id: int, added: rules.MemberAdded, now: datetime
) -> dict[str, Any]:
    member = accounts.get_member(conn, organization_id, added.user_id)
    return {
        "outcome": added.outcome.value,
        "member": member,
        "invitation": _invitation_out(added.invitation, now) if added.invitation else None,
        "generated_password": added.generated_password,
    }


@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
def login(body: LoginIn, request: Request, state: State) -> Any:
    """Exchange an email and password for a session token (valid 12 hours). Repeated
    failures from one place are answered 429 with `retry_after` (seconds)."""
    try:
        session = log_in(
            state.db,
            state.login_limiter,
            email=body.email,
            password=body.password,
            source=login_source(request),
            now=state.clock.now(),
            organization_id=body.organization_id,
        )
    except LoginRefused as refused:
        status = LOGIN_REFUSAL_STATUS[refused.refusal]
        if refused.refusal is LoginRefusal.RATE_LIMITED:
            raise ApiError(
                status,
                "rate_limited",
                f"too many failed logins; try again in {refused.retry_after} seconds",
                {"retry_after": refused.retry_after},
            ) from None
        if refused.refusal is LoginRefusal.NOT_A_MEMBER:
            which = "any" if body.organization_id is None else "that"
            raise ApiError(
                status, "forbidden", f"you are not a member of {which} organization"
            ) from None
        raise ApiError(status, "unauthenticated", "the email or password is wrong") from None
    return {**asdict(session), "role": session.role.value}


@router.get("/users/me", response_model=UserOut, tags=["users"])
def current_user(principal: Viewer, state: State) -> Any:
    """Your account, with your role in the organization of this token."""
    with state.db.read() as conn:
        return _member_out(conn, principal.organization_id, principal.user_id)


@router.patch("/users/me", response_model=UserOut, tags=["users"])
def update_current_user(body: ProfileUpdate, principal: Viewer, state: State) -> Any:
    """Change your name or e-mail (an e-mail change asks for your current password)."""
    changes = AccountChanges(name=body.name, email=body.email)
    with account_rules(state, principal, reauthenticates=True) as conn:
        rules.change_account(
            conn,
            principal,
            principal.user_id,
            changes,
            current_password=body.current_password,
            now=state.clock.now(),
        )
        return _member_out(conn, principal.organization_id, principal.user_id)


@router.post("/users/me/password", response_model=PasswordChanged, tags=["users"])
def change_password(body: PasswordChange, principal: Viewer, state: State) -> Any:
    """Change your password; your other sessions and API tokens are revoked, this one stays."""
    revoked = change_own_password(
        state, principal, new_password=body.new_password, current_password=body.current_password
    )
    return {"revoked_tokens": revoked}


@router.get(
    "/users/me/organizations",
    response_model=list[MembershipOut],
    tags=["users"],
)
def my_organizations(principal: Viewer, state: State) -> Any:
    """The organizations you belong to, with your role in each."""
    with state.db.read() as conn:
        memberships = accounts.list_memberships(conn, [principal.user_id])[principal.user_id]
    return [_membership_out(m) for m in memberships]


@router.get(
    "/users/me/invitations",
    response_model=list[InvitationOut],
    tags=["invitations"],
)
def my_invitations(principal: Viewer, state: State) -> Any:
    """Invitations to join other organizations that you may still accept."""
    now = state.clock.now()
    with state.db.read() as conn:
        pending = rules.pending_invitations(conn, principal.user_id, now=now)
    return [_invitation_out(invitation, now) for invitation in pending]


@router.post(
    "/users/me/invitations/{invitation_id}/accept",
    response_model=MembershipOut,
    tags=["invitations"],
)
def accept_invitation(invitation_id: IdPath, principal: Viewer, state: State) -> Any:
    """Join the inviting organization with the invited role (log in to it to work there)."""
    with account_rules(state, principal) as conn:
        return _membership_out(
            rules.accept_invitation(conn, principal, invitation_id, now=state.clock.now())
        )


@router.post(
    "/users/me/invitations/{invitation_id}/decline",
    status_code=204,
    tags=["invitations"],
)
def decline_invitation(invitation_id: IdPath, principal: Viewer, state: State) -> Response:
    with account_rules(state, principal) as conn:
        rules.decline_invitation(conn, principal, invitation_id, now=state.clock.now())
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(principal: Admin, state: State) -> Any:
    """The organization's members and their roles."""
    with state.db.read() as conn:
        return accounts.list_members(conn, principal.organization_id, limit=1000)


@router.post("/users", status_code=201, response_model=MemberAdded, tags=["users"])
def add_user(body: UserIn, principal: Admin, state: State) -> Any:
    """Add someone by e-mail: without an account, a new account becomes a member at once
    (its password generated and shown once unless given); an existing account is invited
    and becomes a member only when it accepts."""
    now = state.clock.now()
    with account_rules(state, principal) as conn:
        added = add_requested_member(conn, principal, principal.organization_id, body, now=now)
        return _added_out(conn, principal.organization_id, added, now)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(user_id: IdPath, principal: Admin, state: State) -> Any:
    with state.db.read() as conn:
        return _member_out(conn, principal.organization_id, user_id)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(user_id: IdPath, body: UserUpdate, principal: Admin, state: State) -> Any:
    """Change a member's role. Their name, e-mail, password or active flag change only for
    your own account (confirmed with `current_password`) or when you are a superuser."""
    changes = _account_changes(body)
    with account_rules(state, principal, reauthenticates=True) as conn:
        rules.update_member(
            conn,
            principal,
            principal.organization_id,
            user_id,
            role=Role(body.role) if body.role else None,
            changes=changes,
            current_password=body.current_password,
            now=state.clock.now(),
        )
        return _member_out(conn, principal.organization_id, user_id)


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
def remove_user(user_id: IdPath, principal: Admin, state: State) -> Response:
    """Remove a member from this organization; their sessions and tokens here are revoked
    (their account, other memberships and history stay)."""
    with account_rules(state, principal) as conn:
        rules.remove_member(
            conn, principal, principal.organization_id, user_id, now=state.clock.now()
        )
    return Response(status_code=204)


@router.get("/invitations", response_model=list[InvitationOut], tags=["invitations"])
def list_invitations(principal: Admin, state: State) -> Any:
    """The organization's invitations that were neither accepted, declined nor revoked."""
    with state.db.read() as conn:
        found = accounts.list_invitations(conn, organization_id=principal.organization_id)
    return [_invitation_out(invitation, state.clock.now()) for invitation in found]


@router.delete("/invitations/{invitation_id}", status_code=204, tags=["invitations"])
def revoke_invitation(invitation_id: IdPath, principal: Admin, state: State) -> Response:
    with account_rules(state, principal) as conn:
        rules.revoke_invitation(
            conn, principal, principal.organization_id, invitation_id, now=state.clock.now()
        )
    return Response(status_code=204)


@router.get("/accounts", response_model=list[AccountOut], tags=["accounts"])
def list_accounts(_principal: Superuser, state: State) -> Any:
    """Every account with its organizations (superusers only)."""
    with state.db.read() as conn:
        found = accounts.list_accounts(conn, limit=1000)
        memberships = accounts.list_memberships(conn, [a["id"] for a in found])
    return [{**a, "memberships": [_membership_out(m) for m in memberships[a["id"]]]} for a in found]


@router.get("/accounts/{user_id}", response_model=AccountOut, tags=["accounts"])
def get_account(user_id: IdPath, _principal: Superuser, state: State) -> Any:
    with state.db.read() as conn:
        return _account_out(conn, user_id)


@router.patch("/accounts/{user_id}", response_model=AccountOut, tags=["accounts"])
def update_account(user_id: IdPath, body: AccountUpdate, principal: Superuser, state: State) -> Any:
    """Change any account's name, e-mail, password or active flag (superusers only). A new
    password or a deactivation revokes all the account's sessions and tokens; the change is
    audited globally and in each of the account's organizations."""
    changes = _account_changes(body)
    with account_rules(state, principal, reauthenticates=True) as conn:
        rules.change_account(
            conn,
            principal,
            user_id,
            changes,
            current_password=body.current_password,
            now=state.clock.now(),
        )
        return _account_out(conn, user_id)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_tokens(principal: Viewer, state: State) -> Any:
    """Your API tokens in this organization (their secrets are never shown again)."""
    with state.db.read() as conn:
        return accounts.list_tokens(conn, principal.user_id, principal.organization_id)


@router.post("/tokens", status_code=201, response_model=TokenCreated, tags=["tokens"])
def create_token(body: TokenIn, principal: Viewer, state: State) -> Any:
    """Create an API token with your role; the token is shown only in this answer."""
    return issued_tokens.create_api_token(state, principal, body)


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
def delete_token(token_id: IdPath, principal: Viewer, state: State) -> Response:
    """Delete one of your API tokens in this organization (sessions end by logging out)."""
    with account_rules(state, principal) as conn:
        rules.delete_token(conn, principal, token_id, now=state.clock.now())
    return Response(status_code=204)


@router.get(
    "/organizations",
    response_model=list[OrganizationOut],
    tags=["organizations"],
)
def list_organizations(_principal: Superuser, state: State) -> Any:
    with state.db.read() as conn:
        return accounts.list_organizations(conn)


@router.post(
    "/organizations",
    status_code=201,
    response_model=OrganizationCreated,
    tags=["organizations"],
)
def create_organization(body: OrganizationCreate, principal: Superuser, state: State) -> Any:
    """Create an organization and say who runs it: you join it as its admin (`join`) and/or
    `admin_email` becomes its first admin (an existing account by invitation)."""
    now = state.clock.now()
    with account_rules(state, principal) as conn:
        organization, added = rules.create_organization(
            conn, principal, **body.model_dump(), now=now
        )
        members = [_added_out(conn, organization["id"], a, now) for a in added]
        return {**organization, "members": members}


@router.post(
    "/organizations/{org_id}/members",
    status_code=201,
    response_model=MemberAdded,
    tags=["organizations"],
)
def add_organization_member(
    org_id: IdPath, body: UserIn, principal: Superuser, state: State
) -> Any:
    """Add someone to any organization, as `POST /users` does for its own admins (an
    existing account is invited; your own account joins at once)."""
    now = state.clock.now()
    with account_rules(state, principal) as conn:
        if accounts.get_organization(conn, org_id) is None:
            raise not_found("organization", org_id)
        added = add_requested_member(conn, principal, org_id, body, now=now)
        return _added_out(conn, org_id, added, now)


@router.patch(
    "/organizations/{org_id}",
    response_model=OrganizationOut,
    tags=["organizations"],
)
def update_organization(
    org_id: IdPath, body: OrganizationIn, principal: Superuser, state: State
) -> Any:
    """Rename an organization or change its scope and probe caps."""
    with account_rules(state, principal) as conn:
        return rules.update_organization(
            conn,
            principal,
            org_id,
            name=body.name,
            scope_cap=body.scope_cap,
            probe_cap=body.probe_cap if "probe_cap" in body.model_fields_set else None,
            now=state.clock.now(),
        )
