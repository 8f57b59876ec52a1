"""The Explorers page: who scans, whether they are online, and enrolling new ones."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from surveyor.console import issued_tokens, presenters
from surveyor.console.schemas import EnrollmentTokenIn
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.pages import ResourcePages
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, require_role
from surveyor.service import enrollment
from surveyor.store import explorers as explorer_store
from surveyor.store import records
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/explorers", "explorer_id")


def _context(state: ConsoleState, principal: Principal) -> dict[str, Any]:
    org = principal.organization_id
    window = state.settings.online_window_seconds
    now = state.clock.now()
    with state.db.read() as conn:
        found = records.list_explorers(conn, org, limit=1000)
        explorers = presenters.explorers_out(conn, org, found, now=now, window=window)
        site_names = {site.id: site.name for site in records.list_sites(conn, org)}
        zone_names = {zone.id: zone.name for zone in records.list_zones(conn, org)}
        tokens = (
            [
                enrollment.token_out(row, now=now)
                for row in explorer_store.list_enrollment_tokens(conn, org, limit=100)
            ]
            if principal.role.allows(Role.ADMIN)
            else []
        )
        return {
            "explorers": explorers,
            "site_names": site_names,
            "zone_names": zone_names,
            "tokens": tokens,
            "online_window": window,
            "default_expiry_days": enrollment.DEFAULT_EXPIRY_DAYS,
            "is_admin": principal.role.allows(Role.ADMIN),
            "created": None,
            "command": "",
            "error": "",
            "error_field": "",
        }


PAGES.list_page("explorers.html", _context)


@router.post("/explorers/enrollment-tokens")
async def create_enrollment_token(
    request: Request, principal: CheckedPrincipal, state: State
) -> Response:
    """Create an enrollment token and show it once, with the command that uses it."""
    require_role(principal, Role.ADMIN)
    form = await request.form()
    values: dict[str, Any] = {"name": str(form.get("name") or "").strip()}
    for key in ("site_id", "hosted_zone_id", "expires_in_days", "max_uses"):
        raw = str(form.get(key) or "").strip()
        if raw:
            values[key] = raw
    if form.get("no_expiry"):
        values["expires_in_days"] = None
    created: dict[str, Any] | None = None
    error = ""
    error_field = ""
    try:
        body = EnrollmentTokenIn.model_validate(values)
        created = await asyncio.to_thread(
            issued_tokens.create_enrollment_token, state, principal, body
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        error_field = ".".join(str(part) for part in first.get("loc", ())) or "name"
        error = str(first.get("msg", "is not valid"))
    except enrollment.TokenRefused as exc:
        error_field = exc.field
        error = exc.message
    context = await asyncio.to_thread(_context, state, principal)
    console_url = str(request.base_url).rstrip("/")
    context.update(
        created=created,
        command=(
            f"surveyor explorer --console {console_url} --token {created['token']}"
            if created
            else ""
        ),
        error=error,
        error_field=error_field,
    )
    return render(request, "explorers.html", context, status=400 if error else 200)
