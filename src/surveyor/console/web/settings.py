"""The Settings page of an organization (admins): its retention, which the daily Retention
task applies, through the same rules as `/api/v1/settings/retention`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console.state import ConsoleState, State
from surveyor.console.web.forms import form_fields
from surveyor.console.web.pages import Page
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PagePrincipal, require_role
from surveyor.core.retention import (
    DEFAULT_STALE_AFTER_DAYS,
    DEFAULT_TASK_DATA_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    RetentionSettingError,
)
from surveyor.service.retention import retention_view, update_retention
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)
PATH = "/settings/retention"
FIELDS = ("task_data_days", "stale_after_days")
MESSAGE = f"A whole number of days from {MIN_DAYS} to {MAX_DAYS:,}."


def _context(
    state: ConsoleState,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    with state.db.read() as conn:
        view = retention_view(conn, principal.organization_id)
    return {
        "retention_task": view.task,
        "form": form
        or {
            "task_data_days": str(view.settings.task_data_days),
            "stale_after_days": str(view.settings.stale_after_days),
        },
        "errors": errors or {},
        "saved": saved,
        "defaults": {
            "task_data_days": DEFAULT_TASK_DATA_DAYS,
            "stale_after_days": DEFAULT_STALE_AFTER_DAYS,
        },
        "bounds": (MIN_DAYS, MAX_DAYS),
    }


def _save(state: ConsoleState, principal: Principal, changes: dict[str, int]) -> None:
    with state.db.write() as conn:
        update_retention(conn, principal, changes, now=state.clock.now())


PAGE = Page("settings_retention.html", _context)


@router.get(PATH)
def retention_page(
    request: Request, principal: PagePrincipal, state: State, saved: bool = False
) -> Response:
    require_role(principal, Role.ADMIN)
    return render(request, PAGE.template, _context(state, principal, saved=saved))


@router.post(PATH)
async def save_retention(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    require_role(principal, Role.ADMIN)
    form = await form_fields(request, FIELDS)
    changes: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        value = form[name]
        if not value.isdigit() or len(value) > 6:
            errors[name] = MESSAGE
        else:
            changes[name] = int(value)
    if not errors:
        try:
            await asyncio.to_thread(_save, state, principal, changes)
        except RetentionSettingError as exc:
            errors[exc.field] = MESSAGE
        else:
            return RedirectResponse(f"{PATH}?saved=1", status_code=303)
    return await PAGE.sent_back(request, state, principal, form=form, errors=errors)
