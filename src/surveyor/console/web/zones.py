"""The Hosted zones pages: each zone with its member explorers; admins create, edit and
delete zones through the same calls as `/api/v1/hosted-zones`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from surveyor.console import presenters
from surveyor.console.schemas import ExplorerOut, HostedZoneIn, HostedZoneUpdate
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import field_errors, form_fields, sentence
from surveyor.console.web.pages import ResourcePages
from surveyor.console.web.refusals import ActionRefused, found, owned_row
from surveyor.console.web.session import (
    CheckedPrincipal,
    PageError,
    require_role,
)
from surveyor.core.resources import HostedZone
from surveyor.service import resources as resource_rules
from surveyor.service.resources import Refusal, ResourceRefused
from surveyor.store import records
from surveyor.store.accounts import Principal, Role
from surveyor.store.records import Conflict

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/hosted-zones", "zone_id")
ADMIN_PAGES = ResourcePages(router, "/hosted-zones", "zone_id", Role.ADMIN)
FIELDS = ("name", "description", "max_concurrent")
MESSAGES = {
    "name": "Give the zone a name (up to 200 characters).",
    "description": "A description has at most 10,000 characters.",
    "max_concurrent": "A whole number from 1 to 10,000.",
}


def _members(state: ConsoleState, principal: Principal) -> dict[str, Any]:
    """Every explorer of the organization as the Explorers page shows it, by zone."""
    org = principal.organization_id
    now = state.clock.now()
    with state.db.read() as conn:
        found = records.list_explorers(conn, org, limit=1000)
        in_zones = [explorer for explorer in found if explorer.hosted_zone_id is not None]
        explorers = presenters.explorers_out(
            conn, org, in_zones, now=now, window=state.settings.online_window_seconds
        )
        site_names = {site.id: site.name for site in records.list_sites(conn, org)}
        zones = resource_rules.zone_views(conn, records.list_zones(conn, org, limit=1000))
    by_zone: dict[int, list[ExplorerOut]] = {}
    for explorer, shown in zip(in_zones, explorers, strict=True):
        if explorer.hosted_zone_id is not None:
            by_zone.setdefault(explorer.hosted_zone_id, []).append(shown)
    return {
        "zones": [presenters.zone_out(view) for view in zones],
        "members": by_zone,
        "site_names": site_names,
    }


def _list_context(
    state: ConsoleState,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        **_members(state, principal),
        "is_admin": principal.role.allows(Role.ADMIN),
        "form": form or {"name": "", "description": "", "max_concurrent": "1"},
        "errors": errors or {},
    }


def _zone_context(
    state: ConsoleState,
    principal: Principal,
    zone_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    everything = _members(state, principal)
    listed = next((z for z in everything["zones"] if z.id == zone_id), None)
    zone = found(listed, f"hosted zone {zone_id}")
    return {
        "zone": zone,
        "members": everything["members"].get(zone_id, []),
        "site_names": everything["site_names"],
        "is_admin": principal.role.allows(Role.ADMIN),
        "form": form
        or {
            "name": zone.name,
            "description": zone.description,
            "max_concurrent": str(zone.max_concurrent),
        },
        "errors": errors or {},
        "saved": saved,
    }


def _zone_row(state: ConsoleState, principal: Principal, zone_id: int) -> HostedZone:
    return owned_row(state, principal, records.get_zone, zone_id, "hosted zone")


def _values(form: dict[str, str]) -> dict[str, Any]:
    return {key: value for key, value in form.items() if key != "max_concurrent" or value}


def _create(state: ConsoleState, principal: Principal, body: HostedZoneIn) -> HostedZone:
    with state.db.write() as conn:
        return resource_rules.create_zone(
            conn, principal, body.model_dump(), now=state.clock.now()
        ).zone


def _update(
    state: ConsoleState, principal: Principal, zone_id: int, changes: dict[str, Any]
) -> None:
    with state.db.write() as conn:
        resource_rules.update_zone(conn, principal, zone_id, changes, now=state.clock.now())


LIST = PAGES.list_page("zones.html", _list_context)


@router.post("/hosted-zones")
async def create_zone(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    require_role(principal, Role.ADMIN)
    form = await form_fields(request, FIELDS)
    try:
        body = HostedZoneIn.model_validate(_values(form))
        zone = await asyncio.to_thread(_create, state, principal, body)
    except ValidationError as exc:
        errors = field_errors(exc, MESSAGES, default_field="name")
    except Conflict as exc:
        errors = {"name": sentence(str(exc))}
    else:
        return PAGES.to_item(zone.id)
    return await LIST.sent_back(request, state, principal, form=form, errors=errors)


ITEM = PAGES.item_page("zone.html", _zone_context)


@router.post("/hosted-zones/{zone_id:int}")
async def edit_zone(
    request: Request, zone_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    form = await form_fields(request, FIELDS)
    try:
        body = HostedZoneUpdate.model_validate(_values(form))
        current = await asyncio.to_thread(_zone_row, state, principal, zone_id)
        # Only what changed, so that the audit trail names the fields that really did.
        changes = {
            key: value
            for key, value in body.model_dump(exclude_none=True).items()
            if value != getattr(current, key)
        }
        if changes:
            await asyncio.to_thread(_update, state, principal, zone_id, changes)
    except ValidationError as exc:
        errors = field_errors(exc, MESSAGES, default_field="name")
    except Conflict as exc:
        errors = {"name": sentence(str(exc))}
    except ResourceRefused as exc:
        raise PageError(404, "Not found", exc.message) from exc
    else:
        return PAGES.to_item(zone_id, saved=True)
    return await ITEM.sent_back(request, state, principal, zone_id, form=form, errors=errors)


def _delete_confirmation(state: ConsoleState, principal: Principal, zone_id: int) -> Confirmation:
    zone = _zone_context(state, principal, zone_id)
    members = len(zone["members"])
    return Confirmation(
        title=f"Delete hosted zone “{zone['zone'].name}”?",
        consequences=[
            f"Its {members} explorer{'' if members == 1 else 's'} leave the zone and keep "
            "scanning on their own."
            if members
            else "It has no explorers.",
            "Scans aimed at the zone no longer name it: they then run on any idle explorer "
            "of their site.",
            "A zone whose scans are running cannot be deleted; stop them first.",
        ],
        button="Delete hosted zone",
        cancel=f"/hosted-zones/{zone_id}",
    )


def _delete(state: ConsoleState, principal: Principal, zone_id: int) -> None:
    try:
        with state.db.write() as conn:
            resource_rules.delete_zone(conn, principal, zone_id, now=state.clock.now())
    except ResourceRefused as exc:
        if exc.refusal is Refusal.NOT_FOUND:
            raise PageError(404, "Not found", exc.message) from exc
        raise ActionRefused(409, sentence(exc.message)) from exc


ADMIN_PAGES.action("delete", _delete_confirmation, _delete, then="/hosted-zones")
