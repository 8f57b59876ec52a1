"""One transaction of the account rules (`service/accounts.py`), shared by the API's handlers
and the web console's pages, so that both answer a refusal alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime

from sqlalchemy import Connection

from surveyor.console.errors import ApiError
from surveyor.console.schemas import UserIn
from surveyor.console.state import ConsoleState
from surveyor.service import accounts as rules
from surveyor.service.accounts import AccountChanges, AccountRefused, MemberAdded, Refusal
from surveyor.service.login import reauthenticating
from surveyor.store.accounts import Principal, Role

#: The status each refusal is answered with.
REFUSAL_STATUS = {
    Refusal.FORBIDDEN: 403,
    Refusal.NOT_FOUND: 404,
    Refusal.CONFLICT: 409,
    Refusal.INVALID: 400,
    Refusal.REAUTHENTICATE: 403,
    Refusal.RATE_LIMITED: 429,
}


@contextmanager
def account_rules(
    state: ConsoleState, principal: Principal, *, reauthenticates: bool = False
) -> Iterator[Connection]:
    """One write transaction of the account rules: a refusal becomes the API's answer, wrong
    current passwords are rate limited like logins, and remembered principals are forgotten
    once a change commits (other console processes forget theirs within seconds)."""
    try:
        with ExitStack() as guards:
            if reauthenticates:
                guards.enter_context(reauthenticating(state.login_limiter, principal.user_id))
            conn = guards.enter_context(state.db.write())
            yield conn
    except AccountRefused as exc:
        raise ApiError(
            REFUSAL_STATUS[exc.refusal], exc.refusal.value, exc.message, exc.details
        ) from exc
    state.principals.clear()


def add_requested_member(
    conn: Connection, principal: Principal, organization_id: int, body: UserIn, *, now: datetime
) -> MemberAdded:
    """Add the person `body` names to the organization, inside `account_rules`."""
    return rules.add_member(
        conn,
        principal,
        organization_id,
        email=body.email,
        role=Role(body.role),
        name=body.name,
        password=body.password,
        now=now,
    )


def change_own_password(
    state: ConsoleState, principal: Principal, *, new_password: str, current_password: str
) -> int:
    """Change the caller's password, confirmed with the current one; their other sessions
    and API tokens are revoked (how many is the answer), this one stays."""
    with account_rules(state, principal, reauthenticates=True) as conn:
        return rules.change_account(
            conn,
            principal,
            principal.user_id,
            AccountChanges(password=new_password),
            current_password=current_password,
            now=state.clock.now(),
        )
