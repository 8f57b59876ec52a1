"""Cookie sessions for the web console, and the CSRF token that guards every form.

A login creates a session token (`accounts.create_token(kind="session")`) and hands it to the
browser in an HttpOnly, SameSite=Lax cookie (Secure over https). The CSRF token of a session
is an HMAC of the session token, so it needs no storage and cannot be computed without the
cookie. Before login, the login form is guarded by a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response

from surveyor.console.auth import SESSION_COOKIE, resolve_credential
from surveyor.console.state import State
from surveyor.store.accounts import Principal, Role

LOGIN_CSRF_COOKIE = "surveyor_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """A page needs a session; the handler answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """A page that cannot be shown (forbidden, not found, bad form); rendered as HTML."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a session: derived from the secret cookie, checked on every POST."""
    return hmac.new(session_token.encode(), b"surveyor-csrf", hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, token: str, expires: datetime, *, now: datetime
) -> None:
    max_age = max(0, int((expires - now).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_secure(request)
    )


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def page_principal(request: Request, state: State) -> Principal:
    """The signed-in user of a page; anyone else is sent to the login page. Pages run this
    first, so it also starts the clock of their `Server-Timing` header."""
    request.state.started = time.perf_counter()
    token = request.cookies.get(SESSION_COOKIE)
    principal = resolve_credential(state, token) if token else None
    if principal is None:
        raise LoginRequired(_here(request) if request.method == "GET" else "/tasks")
    request.state.principal = principal
    request.state.csrf_token = csrf_token_for(token or "")
    return principal


async def _submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def checked_principal(
    request: Request, principal: Annotated[Principal, Depends(page_principal)]
) -> Principal:
    """The signed-in user of a POST whose CSRF token matches their session."""
    submitted = await _submitted_csrf(request)
    expected: str = request.state.csrf_token
    if not submitted or not hmac.compare_digest(submitted, expected):
        raise PageError(
            403,
            "Form expired",
            "This form could not be verified (its security token is missing or stale). "
            "Reload the page and try again.",
        )
    return principal


def require_role(principal: Principal, role: Role) -> None:
    if not principal.role.allows(role):
        raise PageError(
            403,
            "Not allowed",
            f"This needs the {role.value} role; you are {principal.role.value}.",
        )


def login_redirect_target(raw: str | None) -> str:
    """A safe place to go after login: a local path only (no scheme, host or `//`)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/tasks"
    return raw


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="")


PagePrincipal = Annotated[Principal, Depends(page_principal)]
CheckedPrincipal = Annotated[Principal, Depends(checked_principal)]
