"""The API tokens page: the signed-in user's tokens in this organization, creating one (its
secret shown once) and revoking one, through the same rules as `/api/v1/tokens`
(`service/accounts.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from surveyor.console import issued_tokens
from surveyor.console.account_rules import account_rules
from surveyor.console.errors import ApiError
from surveyor.console.schemas import TokenIn
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import field_errors, form_fields
from surveyor.console.web.pages import ResourcePages
from surveyor.console.web.refusals import found
from surveyor.console.web.session import CheckedPrincipal, PageError
from surveyor.service import accounts as rules
from surveyor.store import accounts
from surveyor.store.accounts import Principal

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/tokens", "token_id")
FIELDS = ("name", "expires_in_days")
MESSAGES = {
    "name": "Say what the token is for (up to 200 characters).",
    "expires_in_days": "A whole number of days from 1 to 3,650, or empty for never.",
}


def _tokens(state: ConsoleState, principal: Principal) -> list[dict[str, Any]]:
    with state.db.read() as conn:
        return accounts.list_tokens(conn, principal.user_id, principal.organization_id)


def _context(
    state: ConsoleState,
    principal: Principal,
    *,
    created: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "tokens": _tokens(state, principal),
        "now": state.clock.now(),
        "created": created,
        "form": form or {"name": "", "expires_in_days": ""},
        "errors": errors or {},
    }


def _own_token(state: ConsoleState, principal: Principal, token_id: int) -> dict[str, Any]:
    """One of the caller's API tokens in this organization; anything else is not found."""
    token = next((t for t in _tokens(state, principal) if t["id"] == token_id), None)
    return found(token, f"API token {token_id}")


LIST = PAGES.list_page("tokens.html", _context)


@router.post("/tokens")
async def create_token(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """Create a token and show its secret on this answer only."""
    form = await form_fields(request, FIELDS)
    values = {key: value for key, value in form.items() if value}
    try:
        body = TokenIn.model_validate(values)
        created = await asyncio.to_thread(issued_tokens.create_api_token, state, principal, body)
    except ValidationError as exc:
        errors = field_errors(exc, MESSAGES, default_field="name")
        return await LIST.sent_back(request, state, principal, form=form, errors=errors)
    return await LIST.sent_back(request, state, principal, status=200, created=created)


def _revoke_confirmation(state: ConsoleState, principal: Principal, token_id: int) -> Confirmation:
    token = _own_token(state, principal, token_id)
    return Confirmation(
        title=f"Revoke API token “{token['name']}”?",
        consequences=[
            "Programs and scripts that use it can no longer call the console, at once.",
            "A revoked token cannot be restored; create a new one if it is needed again.",
        ],
        button="Revoke token",
        cancel="/tokens",
    )


def _revoke(state: ConsoleState, principal: Principal, token_id: int) -> None:
    _own_token(state, principal, token_id)
    try:
        with account_rules(state, principal) as conn:
            rules.delete_token(conn, principal, token_id, now=state.clock.now())
    except ApiError as exc:
        raise PageError(exc.status, "Not found", exc.message) from exc


PAGES.action("revoke", _revoke_confirmation, _revoke, then="/tokens")
