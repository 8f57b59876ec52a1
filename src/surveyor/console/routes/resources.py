"""`/api/v1/sites`, `/api/v1/hosted-zones`, `/api/v1/explorers`: organization resources."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import Connection

from surveyor.console import presenters
from surveyor.console.auth import Admin, Viewer
from surveyor.console.errors import ApiError, error_responses, not_found
from surveyor.console.schemas import (
    After,
    ExplorerOut,
    ExplorerUpdate,
    HostedZoneIn,
    HostedZoneOut,
    HostedZoneUpdate,
    IdPath,
    Limit,
    SiteIn,
    SiteOut,
    SiteUpdate,
)
from surveyor.console.state import ConsoleState, State
from surveyor.core.resources import Explorer
from surveyor.service import resources as rules
from surveyor.service.resources import Refusal, ResourceRefused
from surveyor.store import records

router = APIRouter(prefix="/api/v1", responses=error_responses(400, 401, 403, 404, 409, 422))
_STATUS = {Refusal.NOT_FOUND: 404, Refusal.IN_USE: 409, Refusal.INVALID: 400}


@contextmanager
def resource_rules(state: ConsoleState) -> Iterator[Connection]:
    """One write transaction of the resource rules; a refusal becomes the API's answer."""
    try:
        with state.db.write() as conn:
            yield conn
    except ResourceRefused as exc:
        raise ApiError(_STATUS[exc.refusal], exc.code, exc.message, exc.details) from exc


def _changes(body: BaseModel, *, nullable: Collection[str] = ()) -> dict[str, Any]:
    """What a PATCH body changes: the fields it sets, where a null clears only a `nullable`
    field (anywhere else it is as good as absent)."""
    given = body.model_dump(exclude_unset=True)
    return {key: value for key, value in given.items() if value is not None or key in nullable}


@router.get("/sites", response_model=list[SiteOut], tags=["sites"])
def list_sites(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    with state.db.read() as conn:
        found = records.list_sites(conn, principal.organization_id, limit=limit, after_id=after)
    return [presenters.site_out(site) for site in found]


@router.post("/sites", status_code=201, response_model=SiteOut, tags=["sites"])
def create_site(body: SiteIn, principal: Admin, state: State) -> Any:
    with resource_rules(state) as conn:
        return presenters.site_out(
            rules.create_site(conn, principal, body.model_dump(), now=state.clock.now())
        )


@router.get("/sites/{site_id}", response_model=SiteOut, tags=["sites"])
def get_site(site_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        site = records.get_site(conn, principal.organization_id, site_id)
    if site is None:
        raise not_found("site", site_id)
    return presenters.site_out(site)


@router.patch("/sites/{site_id}", response_model=SiteOut, tags=["sites"])
def update_site(site_id: IdPath, body: SiteUpdate, principal: Admin, state: State) -> Any:
    changes = _changes(body)
    with resource_rules(state) as conn:
        return presenters.site_out(
            rules.update_site(conn, principal, site_id, changes, now=state.clock.now())
        )


@router.delete("/sites/{site_id}", status_code=204, tags=["sites"])
def delete_site(site_id: IdPath, principal: Admin, state: State) -> Response:
    """Delete a site; refused (409) for the organization's last site, and while its tasks
    run on or upload to explorers."""
    with resource_rules(state) as conn:
        rules.delete_site(conn, principal, site_id, now=state.clock.now())
    return Response(status_code=204)


@router.get("/hosted-zones", response_model=list[HostedZoneOut], tags=["hosted zones"])
def list_zones(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    with state.db.read() as conn:
        zones = records.list_zones(conn, principal.organization_id, limit=limit, after_id=after)
        return [presenters.zone_out(view) for view in rules.zone_views(conn, zones)]


@router.post(
    "/hosted-zones",
    status_code=201,
    response_model=HostedZoneOut,
    tags=["hosted zones"],
)
def create_zone(body: HostedZoneIn, principal: Admin, state: State) -> Any:
    with resource_rules(state) as conn:
        return presenters.zone_out(
            rules.create_zone(conn, principal, body.model_dump(), now=state.clock.now())
        )


@router.get(
    "/hosted-zones/{zone_id}",
    response_model=HostedZoneOut,
    tags=["hosted zones"],
)
def get_zone(zone_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        zone = records.get_zone(conn, principal.organization_id, zone_id)
        if zone is None:
            raise not_found("hosted zone", zone_id)
        return presenters.zone_out(rules.zone_view(conn, zone))


@router.patch(
    "/hosted-zones/{zone_id}",
    response_model=HostedZoneOut,
    tags=["hosted zones"],
)
def update_zone(zone_id: IdPath, body: HostedZoneUpdate, principal: Admin, state: State) -> Any:
    changes = _changes(body)
    with resource_rules(state) as conn:
        return presenters.zone_out(
            rules.update_zone(conn, principal, zone_id, changes, now=state.clock.now())
        )


@router.delete("/hosted-zones/{zone_id}", status_code=204, tags=["hosted zones"])
def delete_zone(zone_id: IdPath, principal: Admin, state: State) -> Response:
    """Delete a hosted zone (its explorers leave it); refused (409) while its tasks run on
    or upload to explorers."""
    with resource_rules(state) as conn:
        rules.delete_zone(conn, principal, zone_id, now=state.clock.now())
    return Response(status_code=204)


def _explorer_out(conn: Connection, state: ConsoleState, explorer: Explorer) -> ExplorerOut:
    (out,) = presenters.explorers_out(
        conn,
        explorer.organization_id,
        [explorer],
        now=state.clock.now(),
        window=state.settings.online_window_seconds,
    )
    return out


@router.get("/explorers", response_model=list[ExplorerOut], tags=["explorers"])
def list_explorers(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    org = principal.organization_id
    with state.db.read() as conn:
        found = records.list_explorers(conn, org, limit=limit, after_id=after)
        return presenters.explorers_out(
            conn, org, found, now=state.clock.now(), window=state.settings.online_window_seconds
        )


@router.get("/explorers/{explorer_id}", response_model=ExplorerOut, tags=["explorers"])
def get_explorer(explorer_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        explorer = records.get_explorer(conn, principal.organization_id, explorer_id)
        if explorer is None:
            raise not_found("explorer", explorer_id)
        return _explorer_out(conn, state, explorer)


@router.patch("/explorers/{explorer_id}", response_model=ExplorerOut, tags=["explorers"])
def update_explorer(
    explorer_id: IdPath, body: ExplorerUpdate, principal: Admin, state: State
) -> Any:
    changes = _changes(body, nullable={"site_id"})
    with resource_rules(state) as conn:
        explorer = rules.update_explorer(
            conn, principal, explorer_id, changes, now=state.clock.now()
        )
        return _explorer_out(conn, state, explorer)


@router.delete("/explorers/{explorer_id}", status_code=204, tags=["explorers"])
def delete_explorer(explorer_id: IdPath, principal: Admin, state: State) -> Response:
    """Delete an explorer and revoke its secret; refused (409) while a task occupies it
    (scanning, stopping or uploading its data)."""
    with resource_rules(state) as conn:
        rules.delete_explorer(conn, principal, explorer_id, now=state.clock.now())
    return Response(status_code=204)
