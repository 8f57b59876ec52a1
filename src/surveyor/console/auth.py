"""Who is calling: bearer tokens and session cookies, roles, and where a login comes from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from surveyor.console.errors import ApiError
from surveyor.console.state import ConsoleState
from surveyor.service.login import Refusal as LoginRefusal
from surveyor.store import accounts
from surveyor.store.accounts import Principal, Role

#: The cookie that carries a web console session's token.
SESSION_COOKIE = "surveyor_session"
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer svr_…`")


BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def calling_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """Who sent this request's bearer token: 401 without one, or with one that is unknown.

    Not a dependency itself: each role check below calls it, so that FastAPI solves the role
    check and the bearer scheme per request, without a level between them (each level of
    dependencies costs FastAPI about 0.05 ms)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthenticated", "this needs an API token: send 'Authorization: Bearer <token>'"
        )
    state: ConsoleState = request.app.state.console
    token = credentials.credentials
    principal = state.principals.get(token)
    if principal is None:
        principal = await run_in_threadpool(_resolve, state, token)
    request.state.principal = principal
    return principal


def _resolve(state: ConsoleState, token: str) -> Principal:
    principal = resolve_credential(state, token)
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown, revoked or expired")
    state.principals.put(token, principal)
    return principal


def bearer_or_cookie(request: Request) -> str | None:
    """The credential a request carries: an `Authorization: Bearer` token, else the cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def resolve_credential(state: ConsoleState, credential: str) -> Principal | None:
    """The principal of a token (session or API), refreshing its last use when due."""
    with state.db.read() as conn:
        resolved = accounts.resolve_token(conn, credential, now=state.clock.now())
    if resolved is None:
        return None
    principal, stale = resolved
    if stale and principal.token_id is not None:
        with state.db.write() as conn:
            accounts.touch_token(conn, principal.token_id, now=state.clock.now())
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers with at least `role` in their organization."""

    async def check(request: Request, credentials: BearerToken) -> Principal:
        principal = await calling_principal(request, credentials)
        if not principal.role.allows(role):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {role.value} role; you are {principal.role.value}",
                {"needed_role": role.value, "your_role": principal.role.value},
            )
        return principal

    return check


async def require_superuser(request: Request, credentials: BearerToken) -> Principal:
    principal = await calling_principal(request, credentials)
    if not principal.is_superuser:
        raise ApiError(
            403,
            "forbidden",
            "this needs a superuser: only superusers manage organizations and accounts",
        )
    return principal


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Superuser = Annotated[Principal, Depends(require_superuser)]


#: The status both the API's login and the web sign-in answer a refused login with.
LOGIN_REFUSAL_STATUS: dict[LoginRefusal, int] = {
    LoginRefusal.WRONG_CREDENTIALS: 401,
    LoginRefusal.NOT_A_MEMBER: 403,
    LoginRefusal.RATE_LIMITED: 429,
}


def login_source(request: Request) -> str:
    """Where a login comes from, for its rate limit: the client address, which the server
    takes from `X-Forwarded-For` only when the connection comes from a trusted proxy
    (`SURVEYOR_TRUSTED_PROXIES`)."""
    return request.client.host if request.client else "unknown"
