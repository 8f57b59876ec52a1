"""Creating the tokens the console shows once, API tokens and explorers' enrollment tokens,
from the bodies the API and the web console's pages both validate (`TokenIn`,
`EnrollmentTokenIn`); the rules are in `service/accounts.py` and `service/enrollment.py`."""

from __future__ import annotations

from typing import Any

from surveyor.console.schemas import EnrollmentTokenIn, TokenIn
from surveyor.console.state import ConsoleState
from surveyor.service import accounts as account_rules
from surveyor.service import enrollment
from surveyor.store.accounts import Principal


def create_api_token(state: ConsoleState, principal: Principal, body: TokenIn) -> dict[str, Any]:
    """The caller's new API token, with its secret (`token`), which is never shown again."""
    with state.db.write() as conn:
        row, plaintext = account_rules.create_token(
            conn, principal, **body.model_dump(), now=state.clock.now()
        )
    return {**row, "token": plaintext}


def create_enrollment_token(
    state: ConsoleState, principal: Principal, body: EnrollmentTokenIn
) -> dict[str, Any]:
    """A new enrollment token as the API shows it, with its secret (`token`), shown once;
    `enrollment.TokenRefused` when its site or hosted zone is not the organization's."""
    now = state.clock.now()
    with state.db.write() as conn:
        row, plaintext = enrollment.create_token(conn, principal, **body.model_dump(), now=now)
    return {**enrollment.token_out(row, now=now), "token": plaintext}
