"""Sites, hosted zones and explorers: what creating, editing and deleting them means, for
`/api/v1/sites`, `/api/v1/hosted-zones`, `/api/v1/explorers` and the web pages alike.

Deleting is refused while the thing is in use: an organization keeps at least one site, and
a site, a hosted zone or an explorer stays while one of its tasks occupies an explorer
(`EXPLORER_OCCUPYING_STATUSES`: scanning, stopping, or uploading its data), so that no
running or uploading task loses its explorer, zone or site. Every change is audited in the
organization.

The functions take an open write connection, so each action is one transaction, and the
acting principal; another organization's row is simply not found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from surveyor.core.resources import Explorer, HostedZone, Site
from surveyor.core.targets import DEFAULT_IPV6_MIN_PREFIX, TargetError, parse_targets
from surveyor.core.tasks import TaskStatus
from surveyor.service.audit import record
from surveyor.store import explorers as explorer_store
from surveyor.store import records
from surveyor.store.accounts import Principal

#: The scope fields of a site, checked when they are set.
SCOPE_FIELDS = ("scope", "excludes", "allowed_scope")


class Refusal(StrEnum):
    """Why a change to a site, hosted zone or explorer is refused."""

    NOT_FOUND = "not_found"
    IN_USE = "in_use"
    INVALID = "invalid"


class ResourceRefused(Exception):
    """A refused change; `code` is the API's error code, `message` says why in words."""

    def __init__(
        self,
        refusal: Refusal,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.code = code
        self.message = message
        self.details = dict(details or {})


def _not_found(kind: str, object_id: int) -> ResourceRefused:
    return ResourceRefused(Refusal.NOT_FOUND, "not_found", f"{kind} {object_id} does not exist")


# Sites


def check_scopes(values: Mapping[str, Any]) -> None:
    """Refuse a malformed scope, excludes or allowed scope, naming the field and token."""
    for field in SCOPE_FIELDS:
        if values.get(field) is None:
            continue
        try:
            # An allowed scope may be as large as an admin likes; scopes scans use are bounded.
            parse_targets(
                values[field],
                field=field,
                ipv6_min_prefix=None if field == "allowed_scope" else DEFAULT_IPV6_MIN_PREFIX,
            )
        except TargetError as exc:
            raise ResourceRefused(
                Refusal.INVALID, "invalid_scope", exc.message, {"field": field, "token": exc.token}
            ) from exc


def create_site(
    conn: Connection, actor: Principal, values: Mapping[str, Any], *, now: datetime
) -> Site:
    check_scopes(values)
    site = records.create_site(conn, actor.organization_id, values, now=now)
    record(
        conn,
        actor,
        "create",
        "site",
        site.id,
        now=now,
        details={"allowed_scope": site.allowed_scope},
    )
    return site


def update_site(
    conn: Connection, actor: Principal, site_id: int, changes: Mapping[str, Any], *, now: datetime
) -> Site:
    check_scopes(changes)
    site = records.update_site(conn, actor.organization_id, site_id, changes, now=now)
    if site is None:
        raise _not_found("site", site_id)
    scope = {"allowed_scope": changes["allowed_scope"]} if "allowed_scope" in changes else {}
    record(
        conn, actor, "edit", "site", site_id, now=now, details={"fields": sorted(changes), **scope}
    )
    return site


def delete_site(conn: Connection, actor: Principal, site_id: int, *, now: datetime) -> None:
    """Delete a site, unless it is the organization's last or its tasks occupy explorers."""
    org = actor.organization_id
    if records.get_site(conn, org, site_id) is None:
        raise _not_found("site", site_id)
    if records.count_sites(conn, org) == 1:
        raise ResourceRefused(
            Refusal.IN_USE,
            "conflict",
            "this is the organization's last site; create another before deleting it",
        )
    _refuse_while_occupied(
        explorer_store.occupying_tasks(conn, org, site_id=site_id), "of this site"
    )
    records.delete_site(conn, org, site_id)
    record(conn, actor, "delete", "site", site_id, now=now)


# Hosted zones


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A hosted zone as the API and the pages show it: with how many explorers it has."""

    zone: HostedZone
    explorer_count: int


def zone_views(conn: Connection, zones: Sequence[HostedZone]) -> list[ZoneView]:
    members = explorer_store.zone_member_counts(conn, [zone.id for zone in zones])
    return [ZoneView(zone, members.get(zone.id, 0)) for zone in zones]


def zone_view(conn: Connection, zone: HostedZone) -> ZoneView:
    return zone_views(conn, [zone])[0]


def create_zone(
    conn: Connection, actor: Principal, values: Mapping[str, Any], *, now: datetime
) -> ZoneView:
    zone = records.create_zone(conn, actor.organization_id, values, now=now)
    record(conn, actor, "create", "hosted_zone", zone.id, now=now)
    return zone_view(conn, zone)


def update_zone(
    conn: Connection, actor: Principal, zone_id: int, changes: Mapping[str, Any], *, now: datetime
) -> ZoneView:
    zone = records.update_zone(conn, actor.organization_id, zone_id, changes, now=now)
    if zone is None:
        raise _not_found("hosted zone", zone_id)
    record(
        conn, actor, "edit", "hosted_zone", zone_id, now=now, details={"fields": sorted(changes)}
    )
    return zone_view(conn, zone)


def delete_zone(conn: Connection, actor: Principal, zone_id: int, *, now: datetime) -> None:
    """Delete a hosted zone unless its tasks occupy explorers (its explorers leave it)."""
    org = actor.organization_id
    if records.get_zone(conn, org, zone_id) is None:
        raise _not_found("hosted zone", zone_id)
    _refuse_while_occupied(
        explorer_store.occupying_tasks(conn, org, hosted_zone_id=zone_id), "in this zone"
    )
    records.delete_zone(conn, org, zone_id)
    record(conn, actor, "delete", "hosted_zone", zone_id, now=now)


# Explorers


def _unknown_place(kind: str, object_id: int, field: str) -> ResourceRefused:
    """An explorer moved to a site or zone the organization does not have."""
    return ResourceRefused(
        Refusal.INVALID, "invalid_explorer", f"{kind} {object_id} does not exist", {"field": field}
    )


def update_explorer(
    conn: Connection,
    actor: Principal,
    explorer_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime,
) -> Explorer:
    """Move an explorer to a site or hosted zone (`hosted_zone_id` 0: out of its zone), or
    rename it; the site and zone must be the organization's."""
    org = actor.organization_id
    values = dict(changes)
    site_id = values.get("site_id")
    if site_id is not None and records.get_site(conn, org, site_id) is None:
        raise _unknown_place("site", site_id, "site_id")
    zone_id = values.get("hosted_zone_id")
    if zone_id == 0:
        values["hosted_zone_id"] = None
    elif zone_id is not None and records.get_zone(conn, org, zone_id) is None:
        raise _unknown_place("hosted zone", zone_id, "hosted_zone_id")
    explorer = records.update_explorer(conn, org, explorer_id, values, now=now)
    if explorer is None:
        raise _not_found("explorer", explorer_id)
    record(
        conn, actor, "edit", "explorer", explorer_id, now=now, details={"fields": sorted(values)}
    )
    return explorer


def delete_explorer(conn: Connection, actor: Principal, explorer_id: int, *, now: datetime) -> None:
    """Delete an explorer (its secret with it) unless a task occupies it."""
    org = actor.organization_id
    if records.get_explorer(conn, org, explorer_id) is None:
        raise _not_found("explorer", explorer_id)
    occupying = explorer_store.occupying_tasks(conn, org, explorer_id=explorer_id)
    if occupying:
        task_id, status = occupying[-1]
        raise ResourceRefused(
            Refusal.IN_USE,
            "conflict",
            f"this explorer is {_BUSY_WITH[status]} task {task_id}; {_UNTIL[status]}",
            {"task_id": task_id, "status": status.value},
        )
    records.delete_explorer(conn, org, explorer_id)
    record(conn, actor, "delete", "explorer", explorer_id, now=now)


# Tasks in the way of a deletion

#: What an explorer is doing for a task occupying it, and what to do about it.
_BUSY_WITH = {
    TaskStatus.ACTIVE: "running",
    TaskStatus.CONNECTING: "running",
    TaskStatus.STOPPING: "stopping",
    TaskStatus.SCANNED: "uploading the data of",
    TaskStatus.CONNECTED: "uploading the data of",
}
_UNTIL = {
    TaskStatus.ACTIVE: "stop it first",
    TaskStatus.CONNECTING: "stop it first",
    TaskStatus.STOPPING: "wait until it has stopped",
    TaskStatus.SCANNED: "wait until the upload has finished",
    TaskStatus.CONNECTED: "wait until the upload has finished",
}
_STOPPABLE = frozenset({TaskStatus.ACTIVE, TaskStatus.CONNECTING})


def _refuse_while_occupied(occupying: Iterable[tuple[int, TaskStatus]], whose: str) -> None:
    """Refuse to delete a site or zone while its tasks occupy explorers: those still running
    can be stopped; those stopping or uploading their data are waited for."""
    found = list(occupying)
    if not found:
        return
    task_ids = [task_id for task_id, _ in found]
    if any(status in _STOPPABLE for _, status in found):
        message = f"tasks {whose} are running; stop them first"
    else:
        message = f"tasks {whose} are stopping or uploading their data; wait until they finish"
    raise ResourceRefused(Refusal.IN_USE, "conflict", message, {"task_ids": task_ids})
