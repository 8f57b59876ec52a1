"""`/api/v1/sites`, `/api/v1/hosted-zones`, `/api/v1/explorers`: organization resources."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import Connection, func, select

from surveyor.console.auth import Admin, Viewer
from surveyor.console.errors import ApiError, ErrorResponse, not_found
from surveyor.console.schemas import (
    MAX_ID,
    ExplorerOut,
    ExplorerUpdate,
    HostedZoneIn,
    HostedZoneOut,
    HostedZoneUpdate,
    IdPath,
    SiteIn,
    SiteOut,
    SiteUpdate,
)
from surveyor.console.state import ConsoleState, console_state
from surveyor.core.targets import (
    DEFAULT_IPV6_MIN_PREFIX,
    TargetError,
    build_scope,
    parse_targets,
)
from surveyor.core.tasks import TaskStatus
from surveyor.service import explorers as explorer_service
from surveyor.store import records
from surveyor.store.records import audit
from surveyor.store.schema import explorers, hosted_zones, sites, tasks

router = APIRouter(prefix="/api/v1")
State = Annotated[ConsoleState, Depends(console_state)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 422)
}
Limit = Annotated[int, Query(ge=1, le=1000)]
After = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="the last id of the previous page")
]


def _scope_size(scope: str, excludes: str) -> int:
    try:
        return build_scope(parse_targets(scope), parse_targets(excludes)).size
    except TargetError:
        return 0


def _check_scope(values: Mapping[str, Any], field: str) -> None:
    if values.get(field) is None:
        return
    try:
        # An allowed scope may be as large as an admin likes; scopes scans use are bounded.
        parse_targets(
            values[field],
            field=field,
            ipv6_min_prefix=None if field == "allowed_scope" else DEFAULT_IPV6_MIN_PREFIX,
        )
    except TargetError as exc:
        raise ApiError(
            400, "invalid_scope", exc.message, {"field": field, "token": exc.token}
        ) from exc


def site_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "scope_size": _scope_size(row["scope"], row["excludes"])}


@router.get("/sites", response_model=list[SiteOut], tags=["sites"], responses=_ERRORS)
def list_sites(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    with state.db.read() as conn:
        rows = records.list_records(
            conn, sites, principal.organization_id, limit=limit, after_id=after
        )
    return [site_out(row) for row in rows]


@router.post("/sites", status_code=201, response_model=SiteOut, tags=["sites"], responses=_ERRORS)
def create_site(body: SiteIn, principal: Admin, state: State) -> Any:
    values = body.model_dump()
    for field in ("scope", "excludes", "allowed_scope"):
        _check_scope(values, field)
    with state.db.write() as conn:
        row = records.create_record(conn, sites, principal.organization_id, values)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="create",
            object_type="site",
            object_id=row["id"],
            details={"allowed_scope": row["allowed_scope"]},
        )
    return site_out(row)


@router.get("/sites/{site_id}", response_model=SiteOut, tags=["sites"], responses=_ERRORS)
def get_site(site_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        row = records.get_record(conn, sites, principal.organization_id, site_id)
    if row is None:
        raise not_found("site", site_id)
    return site_out(row)


@router.patch("/sites/{site_id}", response_model=SiteOut, tags=["sites"], responses=_ERRORS)
def update_site(site_id: IdPath, body: SiteUpdate, principal: Admin, state: State) -> Any:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    for field in ("scope", "excludes", "allowed_scope"):
        _check_scope(changes, field)
    with state.db.write() as conn:
        row = records.update_record(conn, sites, principal.organization_id, site_id, changes)
        if row is None:
            raise not_found("site", site_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="edit",
            object_type="site",
            object_id=site_id,
            details={
                "fields": sorted(changes),
                **(
                    {"allowed_scope": changes["allowed_scope"]}
                    if "allowed_scope" in changes
                    else {}
                ),
            },
        )
    return site_out(row)


def _in_use(conn: Connection, column: Any, record_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(tasks)
            .where(
                column == record_id,
                tasks.c.removed_at.is_(None),
                tasks.c.status.in_(
                    [
                        TaskStatus.ACTIVE.value,
                        TaskStatus.STOPPING.value,
                        TaskStatus.CONNECTING.value,
                    ]
                ),
            )
        ).scalar_one()
    )


@router.delete("/sites/{site_id}", status_code=204, tags=["sites"], responses=_ERRORS)
def delete_site(site_id: IdPath, principal: Admin, state: State) -> Response:
    with state.db.write() as conn:
        if records.get_record(conn, sites, principal.organization_id, site_id) is None:
            raise not_found("site", site_id)
        if records.count_records(conn, sites, principal.organization_id) == 1:
            raise ApiError(
                409,
                "conflict",
                "this is the organization's last site; create another before deleting it",
            )
        if _in_use(conn, tasks.c.site_id, site_id):
            raise ApiError(409, "conflict", "tasks of this site are running; stop them first")
        records.delete_record(conn, sites, principal.organization_id, site_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="delete",
            object_type="site",
            object_id=site_id,
        )
    return Response(status_code=204)


def zone_out(conn: Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    members = conn.execute(
        select(func.count()).select_from(explorers).where(explorers.c.hosted_zone_id == row["id"])
    ).scalar_one()
    return {**row, "explorer_count": int(members)}


@router.get(
    "/hosted-zones", response_model=list[HostedZoneOut], tags=["hosted zones"], responses=_ERRORS
)
def list_zones(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    with state.db.read() as conn:
        rows = records.list_records(
            conn, hosted_zones, principal.organization_id, limit=limit, after_id=after
        )
        return [zone_out(conn, row) for row in rows]


@router.post(
    "/hosted-zones",
    status_code=201,
    response_model=HostedZoneOut,
    tags=["hosted zones"],
    responses=_ERRORS,
)
def create_zone(body: HostedZoneIn, principal: Admin, state: State) -> Any:
    with state.db.write() as conn:
        row = records.create_record(
            conn, hosted_zones, principal.organization_id, body.model_dump()
        )
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="create",
            object_type="hosted_zone",
            object_id=row["id"],
        )
        return zone_out(conn, row)


@router.get(
    "/hosted-zones/{zone_id}",
    response_model=HostedZoneOut,
    tags=["hosted zones"],
    responses=_ERRORS,
)
def get_zone(zone_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        row = records.get_record(conn, hosted_zones, principal.organization_id, zone_id)
        if row is None:
            raise not_found("hosted zone", zone_id)
        return zone_out(conn, row)


@router.patch(
    "/hosted-zones/{zone_id}",
    response_model=HostedZoneOut,
    tags=["hosted zones"],
    responses=_ERRORS,
)
def update_zone(zone_id: IdPath, body: HostedZoneUpdate, principal: Admin, state: State) -> Any:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with state.db.write() as conn:
        row = records.update_record(conn, hosted_zones, principal.organization_id, zone_id, changes)
        if row is None:
            raise not_found("hosted zone", zone_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="edit",
            object_type="hosted_zone",
            object_id=zone_id,
            details={"fields": sorted(changes)},
        )
        return zone_out(conn, row)


@router.delete("/hosted-zones/{zone_id}", status_code=204, tags=["hosted zones"], responses=_ERRORS)
def delete_zone(zone_id: IdPath, principal: Admin, state: State) -> Response:
    with state.db.write() as conn:
        if records.get_record(conn, hosted_zones, principal.organization_id, zone_id) is None:
            raise not_found("hosted zone", zone_id)
        if _in_use(conn, tasks.c.hosted_zone_id, zone_id):
            raise ApiError(409, "conflict", "tasks in this zone are running; stop them first")
        records.delete_record(conn, hosted_zones, principal.organization_id, zone_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="delete",
            object_type="hosted_zone",
            object_id=zone_id,
        )
    return Response(status_code=204)


def explorer_out(conn: Connection, row: Mapping[str, Any], *, online_window: int) -> dict[str, Any]:
    current = explorer_service.current_tasks(conn, row["organization_id"])
    return explorer_service.explorer_view(row, current, now=datetime.now(UTC), window=online_window)


@router.get("/explorers", response_model=list[ExplorerOut], tags=["explorers"], responses=_ERRORS)
def list_explorers(principal: Viewer, state: State, limit: Limit = 100, after: After = None) -> Any:
    window = state.settings.online_window_seconds
    with state.db.read() as conn:
        rows = records.list_records(
            conn, explorers, principal.organization_id, limit=limit, after_id=after
        )
        current = explorer_service.current_tasks(conn, principal.organization_id)
        now = datetime.now(UTC)
        return [
            explorer_service.explorer_view(row, current, now=now, window=window) for row in rows
        ]


@router.get(
    "/explorers/{explorer_id}", response_model=ExplorerOut, tags=["explorers"], responses=_ERRORS
)
def get_explorer(explorer_id: IdPath, principal: Viewer, state: State) -> Any:
    with state.db.read() as conn:
        row = records.get_record(conn, explorers, principal.organization_id, explorer_id)
        if row is None:
            raise not_found("explorer", explorer_id)
        return explorer_out(conn, row, online_window=state.settings.online_window_seconds)


@router.patch(
    "/explorers/{explorer_id}", response_model=ExplorerOut, tags=["explorers"], responses=_ERRORS
)
def update_explorer(
    explorer_id: IdPath, body: ExplorerUpdate, principal: Admin, state: State
) -> Any:
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k == "site_id"}
    with state.db.write() as conn:
        if (
            changes.get("site_id") is not None
            and records.get_record(conn, sites, principal.organization_id, changes["site_id"])
            is None
        ):
            raise ApiError(
                400,
                "invalid_explorer",
                f"site {changes['site_id']} does not exist",
                {"field": "site_id"},
            )
        if changes.get("hosted_zone_id") == 0:
            changes["hosted_zone_id"] = None
        elif (
            changes.get("hosted_zone_id") is not None
            and records.get_record(
                conn, hosted_zones, principal.organization_id, changes["hosted_zone_id"]
            )
            is None
        ):
            raise ApiError(
                400,
                "invalid_explorer",
                f"hosted zone {changes['hosted_zone_id']} does not exist",
                {"field": "hosted_zone_id"},
            )
        row = records.update_record(
            conn, explorers, principal.organization_id, explorer_id, changes
        )
        if row is None:
            raise not_found("explorer", explorer_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="edit",
            object_type="explorer",
            object_id=explorer_id,
            details={"fields": sorted(changes)},
        )
        return explorer_out(conn, row, online_window=state.settings.online_window_seconds)


@router.delete("/explorers/{explorer_id}", status_code=204, tags=["explorers"], responses=_ERRORS)
def delete_explorer(explorer_id: IdPath, principal: Admin, state: State) -> Response:
    with state.db.write() as conn:
        if records.get_record(conn, explorers, principal.organization_id, explorer_id) is None:
            raise not_found("explorer", explorer_id)
        if _in_use(conn, tasks.c.explorer_id, explorer_id):
            raise ApiError(409, "conflict", "this explorer is running a task; stop it first")
        records.delete_record(conn, explorers, principal.organization_id, explorer_id)
        audit(
            conn,
            organization_id=principal.organization_id,
            actor=principal.email,
            action="delete",
            object_type="explorer",
            object_id=explorer_id,
        )
    return Response(status_code=204)
