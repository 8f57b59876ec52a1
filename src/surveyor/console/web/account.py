"""Your account: who you are, your organizations (and switching between them), the
invitations to others (accept or decline), and changing your own password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console.account_rules import account_rules, change_own_password
from surveyor.console.errors import ApiError
from surveyor.console.schemas import MAX_ID
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.forms import sentence
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PagePrincipal, set_session_cookie
from surveyor.security.passwords import MIN_PASSWORD_LENGTH, password_problem
from surveyor.service import accounts as rules
from surveyor.service import login as login_rules
from surveyor.service.login import LoginRefused
from surveyor.store import accounts
from surveyor.store.accounts import Principal

router = APIRouter(include_in_schema=False)
PasswordField = Annotated[str, Form(max_length=1000)]


def _page(
    request: Request,
    state: ConsoleState,
    principal: Principal,
    *,
    error: str = "",
    done: str = "",
    invitation_error: str = "",
    invitation_done: str = "",
    status: int = 200,
) -> Response:
    with state.db.read() as conn:
        account = accounts.get_user(conn, principal.user_id) or {}
        memberships = accounts.list_memberships(conn, [principal.user_id])[principal.user_id]
        invitations = rules.pending_invitations(conn, principal.user_id, now=state.clock.now())
    context: dict[str, Any] = {
        "account": account,
        "memberships": memberships,
        "invitations": invitations,
        "invitation_error": invitation_error,
        "invitation_done": invitation_done,
        "error": error,
        "done": done,
        "min_length": MIN_PASSWORD_LENGTH,
    }
    return render(request, "account.html", context, status=status)


@router.get("/account")
def account_page(
    request: Request, principal: PagePrincipal, state: State, joined: str = "", declined: str = ""
) -> Response:
    """`joined` names the organization an invitation was just accepted to, `declined` says
    one was declined (after the redirect that follows either)."""
    said = "You declined the invitation." if declined == "1" else ""
    if joined:
        with state.db.read() as conn:
            memberships = accounts.list_memberships(conn, [principal.user_id])[principal.user_id]
        said = next(
            (
                f"You joined {m.organization_name} as {m.role.value}."
                for m in memberships
                if str(m.organization_id) == joined
            ),
            said,
        )
    return _page(request, state, principal, invitation_done=said)


def _answer_invitation(
    request: Request, state: ConsoleState, principal: Principal, invitation_id: int, *, accept: bool
) -> Response:
    target = "/account?declined=1"
    try:
        with account_rules(state, principal) as conn:
            if accept:
                membership = rules.accept_invitation(
                    conn, principal, invitation_id, now=state.clock.now()
                )
                target = f"/account?joined={membership.organization_id}"
            else:
                rules.decline_invitation(conn, principal, invitation_id, now=state.clock.now())
    except ApiError as exc:
        return _page(
            request, state, principal, invitation_error=sentence(exc.message), status=exc.status
        )
    return RedirectResponse(target, status_code=303)


@router.post("/account/invitations/{invitation_id:int}/accept")
def accept_invitation(
    request: Request, invitation_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    """Join the inviting organization with the invited role."""
    return _answer_invitation(request, state, principal, invitation_id, accept=True)


@router.post("/account/invitations/{invitation_id:int}/decline")
def decline_invitation(
    request: Request, invitation_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    return _answer_invitation(request, state, principal, invitation_id, accept=False)


@router.post("/account/organization")
def switch_organization(
    request: Request,
    principal: CheckedPrincipal,
    state: State,
    organization_id: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    """Work in another of your organizations: this session ends and one there begins."""
    try:
        session = login_rules.switch_organization(
            state.db, principal, organization_id, session_name="web session", now=state.clock.now()
        )
    except LoginRefused:
        return _page(
            request,
            state,
            principal,
            invitation_error="You are not a member of that organization.",
            status=403,
        )
    state.principals.clear()
    response = RedirectResponse("/tasks", status_code=303)
    set_session_cookie(response, request, session.token, session.expires_at, now=state.clock.now())
    return response


@router.post("/account/password")
def change_password(
    request: Request,
    principal: CheckedPrincipal,
    state: State,
    current_password: PasswordField = "",
    new_password: PasswordField = "",
    new_password_again: PasswordField = "",
) -> Response:
    """Change your password; your other sessions and API tokens end, this one stays."""
    problem = password_problem(new_password)
    if new_password != new_password_again:
        problem = "the two new passwords differ"
    if problem is not None:
        return _page(request, state, principal, error=sentence(problem), status=400)
    try:
        revoked = change_own_password(
            state, principal, new_password=new_password, current_password=current_password
        )
    except ApiError as exc:
        return _page(request, state, principal, error=sentence(exc.message), status=exc.status)
    plural = "session or API token was" if revoked == 1 else "sessions and API tokens were"
    return _page(
        request,
        state,
        principal,
        done=f"Your password was changed. {revoked} other {plural} signed out.",
    )
