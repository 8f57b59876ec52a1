"""Signing in and out of the web console."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console.auth import (
    LOGIN_REFUSAL_STATUS,
    SESSION_COOKIE,
    login_source,
    resolve_credential,
)
from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.session import (
    LOGIN_CSRF_COOKIE,
    CheckedPrincipal,
    clear_session_cookie,
    login_redirect_target,
    new_login_csrf,
    set_login_csrf_cookie,
    set_session_cookie,
)
from surveyor.service.login import LoginRefused, Refusal, log_in
from surveyor.store import accounts

router = APIRouter(include_in_schema=False)
_REFUSALS = {
    Refusal.RATE_LIMITED: "Too many failed sign-ins. Try again in {wait} seconds.",
    Refusal.WRONG_CREDENTIALS: "The email or password is wrong.",
    Refusal.NOT_A_MEMBER: "You are not a member of any organization.",
}


def _login_page(
    request: Request, *, next_path: str, email: str = "", error: str = "", status: int = 200
) -> Response:
    csrf = new_login_csrf()
    response = render(
        request,
        "login.html",
        {"next_path": next_path, "email": email, "error": error, "login_csrf": csrf},
        status=status,
    )
    set_login_csrf_cookie(response, request, csrf)
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/tasks", status_code=303)


@router.get("/login")
def login_form(request: Request, state: State, next: str | None = None) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and resolve_credential(state, token) is not None:
        return RedirectResponse(login_redirect_target(next), status_code=303)
    return _login_page(request, next_path=login_redirect_target(next))


@router.post("/login")
def login(
    request: Request,
    state: State,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/tasks",
) -> Response:
    """Check the password and start a session: `service.login.log_in`, as the API's
    login, with the same failure accounting, rate limits and statuses."""
    next_path = login_redirect_target(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(
            request,
            next_path=next_path,
            email=email,
            error="The login form expired. Please sign in again.",
            status=403,
        )
    try:
        session = log_in(
            state.db,
            state.login_limiter,
            email=email,
            password=password,
            source=login_source(request),
            now=state.clock.now(),
            session_name="web session",
        )
    except LoginRefused as refused:
        return _login_page(
            request,
            next_path=next_path,
            email=email,
            error=_REFUSALS[refused.refusal].format(wait=refused.retry_after),
            status=LOGIN_REFUSAL_STATUS[refused.refusal],
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, session.token, session.expires_at, now=state.clock.now())
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """End the session: its token is deleted, so the cookie is worthless from now on."""
    if principal.token_id is not None:
        with state.db.write() as conn:
            accounts.delete_session(conn, principal.user_id, principal.token_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response
