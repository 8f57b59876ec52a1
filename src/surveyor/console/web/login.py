"""Signing in and out of the web console."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import update

from surveyor.console.state import ConsoleState, console_state
from surveyor.console.web.render import render
from surveyor.console.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CheckedPrincipal,
    clear_session_cookie,
    login_redirect_target,
    new_login_csrf,
    resolve_credential,
    set_login_csrf_cookie,
    set_session_cookie,
)
from surveyor.security.passwords import verify_password
from surveyor.store import accounts
from surveyor.store.schema import users

router = APIRouter(include_in_schema=False)
State = Annotated[ConsoleState, Depends(console_state)]


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
    """Check the password (rate limited like the API's login) and start a session."""
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
    client = request.client.host if request.client else "unknown"
    key = f"{client}|{email.lower()}"
    wait = state.login_limiter.retry_after(key)
    if wait is not None:
        return _login_page(
            request,
            next_path=next_path,
            email=email,
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
            status=429,
        )
    with state.db.write() as conn:
        user = accounts.find_user_by_email(conn, email) if email else None
        valid = (
            user is not None
            and user["is_active"]
            and verify_password(user["password_hash"], password)
        )
        organization_id = accounts.first_membership(conn, user["id"]) if user and valid else None
        if user is None or not valid or organization_id is None:
            state.login_limiter.failed(key)
            error = (
                "You are not a member of any organization."
                if valid
                else "The email or password is wrong."
            )
            return _login_page(request, next_path=next_path, email=email, error=error, status=401)
        expires = datetime.now(UTC) + accounts.SESSION_LIFETIME
        _, token = accounts.create_token(
            conn,
            user_id=user["id"],
            organization_id=organization_id,
            name="web session",
            kind="session",
            expires_at=expires,
        )
        conn.execute(
            update(users).where(users.c.id == user["id"]).values(last_login_at=datetime.now(UTC))
        )
    state.login_limiter.succeeded(key)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, token, expires)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """End the session: its token is deleted, so the cookie is worthless from now on."""
    if principal.token_id is not None:
        with state.db.write() as conn:
            accounts.delete_token(conn, principal.user_id, principal.token_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response
