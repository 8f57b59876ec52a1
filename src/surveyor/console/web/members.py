"""The Members page (admins only): the organization's members and pending invitations;
adding someone (a new account with a password shown once, or an invitation an existing
account accepts), changing a role, removing a member and revoking an invitation, through
the same rules as `/api/v1/users` and `/api/v1/invitations` (`service/accounts.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from surveyor.console.account_rules import account_rules, add_requested_member
from surveyor.console.errors import ApiError
from surveyor.console.schemas import UserIn
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import field_errors, form_fields, sentence
from surveyor.console.web.pages import Page, ResourcePages
from surveyor.console.web.refusals import ActionRefused, owned_row
from surveyor.console.web.render import render
from surveyor.console.web.session import (
    CheckedPrincipal,
    PageError,
    PagePrincipal,
    require_role,
)
from surveyor.service import accounts as rules
from surveyor.store import accounts
from surveyor.store.accounts import INVITATION_LIFETIME, Principal, Role

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/users", "user_id", Role.ADMIN)
FIELDS = ("email", "role", "name")
MESSAGES = {
    "email": "Give an e-mail address such as ana@example.com (up to 320 characters).",
    "role": "Choose viewer, operator or admin.",
    "name": "A name has at most 200 characters.",
}
ROLES = [role.value for role in Role]
#: The message the page shows after a change, by the `done` value of the redirect.
DONE = {
    "role": "Role changed.",
    "removed": "Member removed; their sessions and API tokens here were signed out.",
    "revoked": "Invitation revoked.",
}


def _sentence(message: str) -> str:
    """A refusal as a sentence; one that starts with an e-mail address keeps it as it is."""
    if "@" in message.split(" ", 1)[0]:
        return f"{message}."
    return sentence(message)


def _context(
    state: ConsoleState,
    principal: Principal,
    *,
    added: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str = "",
    done: str = "",
) -> dict[str, Any]:
    with state.db.read() as conn:
        members = accounts.list_members(conn, principal.organization_id, limit=1000)
        invitations = accounts.list_invitations(conn, organization_id=principal.organization_id)
    return {
        "members": members,
        "invitations": invitations,
        "now": state.clock.now(),
        "roles": ROLES,
        "added": added,
        "form": form or {"email": "", "role": Role.VIEWER.value, "name": ""},
        "errors": errors or {},
        "error": error,
        "done": done,
        "invitation_days": INVITATION_LIFETIME.days,
    }


def _member(state: ConsoleState, principal: Principal, user_id: int) -> dict[str, Any]:
    """A member of the caller's organization; anyone else is not found."""
    return owned_row(state, principal, accounts.get_member, user_id, "user")


LIST = Page("users.html", _context)


@router.get("/users")
def members_page(
    request: Request, principal: PagePrincipal, state: State, done: str = ""
) -> Response:
    require_role(principal, Role.ADMIN)
    return render(request, LIST.template, _context(state, principal, done=DONE.get(done, "")))


def _add(state: ConsoleState, principal: Principal, body: UserIn) -> dict[str, Any]:
    with account_rules(state, principal) as conn:
        added = add_requested_member(
            conn, principal, principal.organization_id, body, now=state.clock.now()
        )
    return {
        "outcome": added.outcome.value,
        "email": body.email.lower(),
        "role": body.role,
        "password": added.generated_password,
    }


@router.post("/users")
async def add_member(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """Add someone by e-mail; a new account's generated password is on this answer only."""
    require_role(principal, Role.ADMIN)
    form = await form_fields(request, FIELDS)
    status = 400
    try:
        body = UserIn.model_validate({key: value for key, value in form.items() if value})
        added = await asyncio.to_thread(_add, state, principal, body)
    except ValidationError as exc:
        errors = field_errors(exc, MESSAGES, default_field="email")
    except ApiError as exc:
        errors, status = {"email": _sentence(exc.message)}, exc.status
    else:
        return await LIST.sent_back(request, state, principal, status=200, added=added)
    return await LIST.sent_back(request, state, principal, status=status, form=form, errors=errors)


def _change_role(state: ConsoleState, principal: Principal, user_id: int, role: Role) -> None:
    with account_rules(state, principal) as conn:
        rules.update_member(
            conn, principal, principal.organization_id, user_id, role=role, now=state.clock.now()
        )


@router.post("/users/{user_id:int}/role")
async def change_role(
    request: Request, user_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    form = await form_fields(request, ("role",))
    if form["role"] not in ROLES:
        return await LIST.sent_back(
            request, state, principal, error="Choose viewer, operator or admin."
        )
    try:
        await asyncio.to_thread(_change_role, state, principal, user_id, Role(form["role"]))
    except ApiError as exc:
        if exc.status == 404:
            raise PageError(404, "Not found", exc.message) from exc
        return await LIST.sent_back(
            request, state, principal, status=exc.status, error=_sentence(exc.message)
        )
    return RedirectResponse("/users?done=role", status_code=303)


def _remove_confirmation(state: ConsoleState, principal: Principal, user_id: int) -> Confirmation:
    member = _member(state, principal, user_id)
    return Confirmation(
        title=f"Remove {member['email']} from this organization?",
        consequences=[
            "Their sessions and API tokens in this organization end at once.",
            "Their account, their other organizations and the history of what they did stay.",
            "To have them back, add them again: they then accept an invitation.",
        ],
        button="Remove member",
        cancel="/users",
    )


def _remove(state: ConsoleState, principal: Principal, user_id: int) -> None:
    try:
        with account_rules(state, principal) as conn:
            rules.remove_member(
                conn, principal, principal.organization_id, user_id, now=state.clock.now()
            )
    except ApiError as exc:
        if exc.status == 404:
            raise PageError(404, "Not found", exc.message) from exc
        raise ActionRefused(exc.status, _sentence(exc.message)) from exc


PAGES.action("remove", _remove_confirmation, _remove, then="/users?done=removed")


def _revoke(state: ConsoleState, principal: Principal, invitation_id: int) -> None:
    with account_rules(state, principal) as conn:
        rules.revoke_invitation(
            conn, principal, principal.organization_id, invitation_id, now=state.clock.now()
        )


@router.post("/users/invitations/{invitation_id:int}/revoke")
async def revoke_invitation(
    request: Request, invitation_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    """Withdraw a pending invitation (it can be sent again: add the e-mail once more)."""
    require_role(principal, Role.ADMIN)
    try:
        await asyncio.to_thread(_revoke, state, principal, invitation_id)
    except ApiError as exc:
        raise PageError(exc.status, "Not found", exc.message) from exc
    return RedirectResponse("/users?done=revoked", status_code=303)
