"""Reports in the store: the counts a report is built from, the stored results, and the tasks
that initialize and refresh them (each report's daily recurring refresh is created with it).

The counts are SQL aggregates grouped by the few values reports show (site, OS text, device
type, online, service), so building the Organization overview reads each asset once in the
database and brings back only groups, whatever the size of the inventory. The External
assets report reads assets' addresses and names in pages (whether an address or a name is
public is decided in Python, core/reports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, insert, literal, select, update

from surveyor.core import recurrence
from surveyor.core.kinds import REPORT
from surveyor.core.reports import (
    HISTORY_DAYS,
    REPORT_PARAM,
    REPORTS,
    AssetGroup,
    ExposedService,
    ExternalAsset,
    Inventory,
    ReportDefinition,
    RunCounts,
    ServiceGroup,
    external_facts,
    history_start,
)
from surveyor.core.task import Task
from surveyor.core.tasks import WaitReason
from surveyor.store import tasks as task_store
from surveyor.store.records import count_records
from surveyor.store.schema import (
    asset_outliers,
    assets,
    organizations,
    processing_runs,
    reports,
    services,
    sites,
    tasks,
)
from surveyor.store.system_tasks import SYSTEM, WAITING, queue_new_task

#: When the daily refresh runs (UTC).
DAILY_AT = "03:00"
#: An asset is unusual among its site's peers from this outlier score.
UNUSUAL_SCORE = 60


@dataclass(frozen=True)
class StoredReport:
    """A report of an organization as stored: its result (None until first computed), when
    and by which task, and its daily refresh's template."""

    id: int
    organization_id: int
    report: str
    result: dict[str, Any] | None
    refreshed_at: datetime | None
    task_id: int | None
    schedule_id: int | None
    created_at: datetime


def _stored(row: Any) -> StoredReport:
    return StoredReport(
        id=row.id,
        organization_id=row.organization_id,
        report=row.report,
        result=row.result,
        refreshed_at=row.refreshed_at,
        task_id=row.task_id,
        schedule_id=row.schedule_id,
        created_at=row.created_at,
    )


def stored_reports(conn: Connection, organization_id: int) -> dict[str, StoredReport]:
    """The organization's initialized reports by report id."""
    rows = conn.execute(select(reports).where(reports.c.organization_id == organization_id))
    return {row.report: _stored(row) for row in rows}


def stored_report(conn: Connection, organization_id: int, report_id: str) -> StoredReport | None:
    row = conn.execute(
        select(reports).where(
            reports.c.organization_id == organization_id, reports.c.report == report_id
        )
    ).first()
    return _stored(row) if row is not None else None


def save_result(
    conn: Connection,
    organization_id: int,
    report_id: str,
    result: dict[str, Any],
    *,
    task_id: int,
    now: datetime,
) -> None:
    """Store a report's newest result (the report row exists once it was initialized; a task
    refreshing one that was not creates the row)."""
    values = {"result": result, "refreshed_at": now, "task_id": task_id, "updated_at": now}
    done = conn.execute(
        update(reports)
        .where(reports.c.organization_id == organization_id, reports.c.report == report_id)
        .values(**values)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(reports).values(
                organization_id=organization_id, report=report_id, created_at=now, **values
            )
        )


# Tasks ------------------------------------------------------------------------------------------


def _task_values(
    organization_id: int, report: ReportDefinition, actor: str, user_id: int | None
) -> dict[str, Any]:
    return {
        "organization_id": organization_id,
        "site_id": None,
        "name": report.name,
        "description": report.description,
        "type": REPORT.type,
        "params": {REPORT_PARAM: report.id},
        "created_by": actor,
        "created_by_user_id": user_id,
    }


def waiting_refresh(conn: Connection, organization_id: int, report_id: str) -> Task | None:
    """A refresh of the report that has not started yet, if any."""
    for row in conn.execute(
        select(tasks.c.id, tasks.c.params).where(
            tasks.c.organization_id == organization_id,
            tasks.c.type == REPORT.type,
            tasks.c.recur.is_(False),
            tasks.c.status.in_(WAITING),
            tasks.c.removed_at.is_(None),
        )
    ):
        if (row.params or {}).get(REPORT_PARAM) == report_id:
            return task_store.get_task(conn, organization_id, row.id)
    return None


def _daily_refresh(
    conn: Connection,
    organization_id: int,
    report: ReportDefinition,
    *,
    actor: str,
    user_id: int | None,
    now: datetime,
) -> Task:
    rec = recurrence.parse_recurrence("daily", time=DAILY_AT, timezone="UTC", now=now)
    frequency, rule, timezone = rec.to_stored()
    return task_store.create_task(
        conn,
        {
            **_task_values(organization_id, report, actor, user_id),
            "recur": True,
            "recur_frequency": frequency,
            "recur_rule": rule,
            "timezone": timezone,
            "recur_next": recurrence.next_occurrence(rec, now),
            "wait_reason": WaitReason.NOT_DUE.value,
        },
        actor=actor,
        now=now,
    )


def request_refresh(
    conn: Connection,
    organization_id: int,
    report: ReportDefinition,
    *,
    actor: str = SYSTEM,
    user_id: int | None = None,
    now: datetime,
) -> Task:
    """Queue a task that computes the report, initializing it first (its row, and its daily
    refresh) when the organization has not got it yet. A refresh that already waits is the
    answer instead of a second one (coalesced)."""
    stored = stored_report(conn, organization_id, report.id)
    if stored is None:
        template = _daily_refresh(
            conn, organization_id, report, actor=actor, user_id=user_id, now=now
        )
        conn.execute(
            insert(reports).values(
                organization_id=organization_id,
                report=report.id,
                schedule_id=template.id,
                created_at=now,
                updated_at=now,
            )
        )
        message = "the report is initialized"
    else:
        waiting = waiting_refresh(conn, organization_id, report.id)
        if waiting is not None:
            return waiting
        message = "a refresh was asked for"
    return queue_new_task(
        conn,
        organization_id,
        {**_task_values(organization_id, report, actor, user_id), "start_time": now},
        actor=actor,
        message=message,
        now=now,
    )


def organizations_to_initialize(conn: Connection, *, limit: int) -> list[int]:
    """Organizations that have an inventory (an asset) but not every report yet."""
    have = (
        select(func.count())
        .select_from(reports)
        .where(reports.c.organization_id == organizations.c.id)
        .scalar_subquery()
    )
    has_assets = select(assets.c.id).where(assets.c.organization_id == organizations.c.id).exists()
    return list(
        conn.execute(
            select(organizations.c.id)
            .where(have < len(REPORTS), has_assets)
            .order_by(organizations.c.id)
            .limit(limit)
        ).scalars()
    )


def initialize_missing(conn: Connection, organization_id: int, *, now: datetime) -> list[Task]:
    """Initialize (as the system) every report the organization has not got yet."""
    have = set(
        conn.execute(
            select(reports.c.report).where(reports.c.organization_id == organization_id)
        ).scalars()
    )
    return [
        request_refresh(conn, organization_id, report, now=now)
        for report in REPORTS
        if report.id not in have
    ]


# Counts ---------------------------------------------------------------------------------------


def site_names(conn: Connection, organization_id: int) -> dict[int, str]:
    rows = conn.execute(
        select(sites.c.id, sites.c.name).where(sites.c.organization_id == organization_id)
    )
    return {row.id: row.name for row in rows}


def asset_groups(conn: Connection, organization_id: int, *, now: datetime) -> list[AssetGroup]:
    """The organization's assets grouped by site, OS text, device type and being online,
    read from `ix_assets_report_groups` alone: it holds every column used, already in group
    order, so neither the table nor a sort is needed. The unusual ones (scored at least
    `UNUSUAL_SCORE`) are counted apart, from `asset_outliers`: only they are looked up."""
    since = now - timedelta(days=HISTORY_DAYS)
    new = func.sum(case((assets.c.first_seen >= since, 1), else_=0))
    grouped = (assets.c.site_id, assets.c.os, assets.c.device_type, assets.c.alive)
    rows = conn.execute(
        select(
            *grouped,
            func.count().label("assets"),
            func.coalesce(func.sum(assets.c.service_count), 0).label("services"),
            new.label("new"),
        )
        .where(assets.c.organization_id == organization_id)
        .group_by(*grouped)
    ).all()
    unusual = {
        (row.site_id, row.os, row.device_type, bool(row.alive)): int(row.unusual)
        for row in conn.execute(
            select(*grouped, func.count().label("unusual"))
            .select_from(asset_outliers.join(assets, assets.c.id == asset_outliers.c.asset_id))
            .where(
                asset_outliers.c.organization_id == organization_id,
                asset_outliers.c.score >= UNUSUAL_SCORE,
            )
            .group_by(*grouped)
        )
    }
    return [
        AssetGroup(
            row.site_id,
            row.os or "",
            row.device_type or "",
            bool(row.alive),
            int(row.assets),
            int(row.services or 0),
            int(row.new or 0),
            unusual.get((row.site_id, row.os, row.device_type, bool(row.alive)), 0),
        )
        for row in rows
    ]


def _only_organization(conn: Connection, organization_id: int) -> bool:
    others = conn.execute(
        select(organizations.c.id).where(organizations.c.id != organization_id).limit(1)
    ).first()
    return others is None


def service_groups(
    conn: Connection, organization_id: int, *, per_site: bool = True
) -> list[ServiceGroup]:
    """The organization's open services grouped by site (unless `per_site` is false: then
    their site is 0), protocol, port and name. Across sites in the only organization of the
    install, every service is the organization's: no join to the assets is needed."""
    if not per_site and _only_organization(conn, organization_id):
        rows = conn.execute(
            select(services.c.proto, services.c.port, services.c.name, func.count().label("n"))
            .where(services.c.state == "open")
            .group_by(services.c.proto, services.c.port, services.c.name)
        )
        return [ServiceGroup(0, row.proto, row.port, row.name or "", int(row.n)) for row in rows]
    site = assets.c.site_id if per_site else literal(0)
    query = (
        select(
            site.label("site_id"),
            services.c.proto,
            services.c.port,
            services.c.name,
            func.count().label("assets"),
        )
        .select_from(services.join(assets, assets.c.id == services.c.asset_id))
        .where(assets.c.organization_id == organization_id, services.c.state == "open")
        .group_by(services.c.proto, services.c.port, services.c.name)
    )
    if per_site:
        query = query.group_by(assets.c.site_id)
    return [
        ServiceGroup(row.site_id, row.proto, row.port, row.name or "", int(row.assets))
        for row in conn.execute(query)
    ]


def run_counts(conn: Connection, organization_id: int, *, now: datetime) -> list[RunCounts]:
    """The new and offline counts of the processing runs that ended in the history window."""
    rows = conn.execute(
        select(processing_runs.c.ended_at, processing_runs.c.new, processing_runs.c.offline).where(
            processing_runs.c.organization_id == organization_id,
            processing_runs.c.ended_at >= history_start(now),
        )
    )
    return [RunCounts(row.ended_at, int(row.new), int(row.offline)) for row in rows]


def inventory_counts(
    conn: Connection, organization_id: int, *, now: datetime, services_per_site: bool = True
) -> Inventory:
    """What the overview (`services_per_site=False`: it counts services across sites) and the
    comparison are built from."""
    return Inventory(
        sites=site_names(conn, organization_id),
        assets=asset_groups(conn, organization_id, now=now),
        services=service_groups(conn, organization_id, per_site=services_per_site),
        runs=run_counts(conn, organization_id, now=now),
    )


def external_pages(
    conn: Connection, organization_id: int, *, after_id: int, limit: int
) -> tuple[list[ExternalAsset], int | None]:
    """One page of the organization's assets in id order (ids above `after_id`): those with
    a public address or name, with their open services; and the last id read (None when
    there were no more)."""
    rows = conn.execute(
        select(
            assets.c.id,
            assets.c.address,
            assets.c.addresses,
            assets.c.hostnames,
            sites.c.name.label("site"),
        )
        .select_from(assets.join(sites, sites.c.id == assets.c.site_id))
        .where(assets.c.organization_id == organization_id, assets.c.id > after_id)
        .order_by(assets.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return [], None
    found: dict[int, ExternalAsset] = {}
    for row in rows:
        public_addresses, public_names = external_facts(
            row.addresses or [row.address], row.hostnames or []
        )
        if public_addresses or public_names:
            found[row.id] = ExternalAsset(
                row.id, row.site, row.address, public_addresses, public_names
            )
    if found:
        exposed: dict[int, list[ExposedService]] = {asset_id: [] for asset_id in found}
        for service in conn.execute(
            select(
                services.c.asset_id,
                services.c.proto,
                services.c.port,
                services.c.name,
                services.c.product,
                services.c.tls_subject,
                services.c.tls_issuer,
                services.c.tls_not_after,
            )
            .where(services.c.asset_id.in_(list(found)), services.c.state == "open")
            .order_by(services.c.asset_id, services.c.proto, services.c.port)
        ):
            exposed[service.asset_id].append(
                ExposedService(
                    service.proto,
                    service.port,
                    service.name or "",
                    service.product or "",
                    service.tls_subject or "",
                    service.tls_issuer or "",
                    service.tls_not_after or "",
                )
            )
        for asset_id, listed in exposed.items():
            asset = found[asset_id]
            found[asset_id] = ExternalAsset(
                asset.id,
                asset.site,
                asset.address,
                asset.public_addresses,
                asset.public_names,
                tuple(listed),
            )
    return list(found.values()), rows[-1].id


def count_assets(conn: Connection, organization_id: int) -> int:
    return count_records(conn, assets, organization_id)


def latest_refresh(conn: Connection, organization_id: int, report_id: str) -> Task | None:
    """The report's most recent task that is not its template."""
    rows = conn.execute(
        select(tasks.c.id, tasks.c.params)
        .where(
            tasks.c.organization_id == organization_id,
            tasks.c.type == REPORT.type,
            tasks.c.recur.is_(False),
            tasks.c.removed_at.is_(None),
        )
        .order_by(tasks.c.id.desc())
    )
    for row in rows:
        if (row.params or {}).get(REPORT_PARAM) == report_id:
            return task_store.get_task(conn, organization_id, row.id)
    return None
