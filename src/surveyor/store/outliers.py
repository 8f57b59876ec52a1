"""Outlier scores in the store: the features of a site's assets read in pages, the scores
written in batches, the coalesced request for an Outlier calculation, and the Assets list
sorted by score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update

from surveyor.core.inventory import Asset
from surveyor.core.kinds import OUTLIER
from surveyor.core.outliers import ServiceFacts
from surveyor.core.task import Task
from surveyor.store.cursors import decode_cursor, encode_cursor
from surveyor.store.inventory import MAX_PAGE_SIZE, AssetPage, InvalidAssetCursor
from surveyor.store.schema import assets, services
from surveyor.store.system_tasks import request_system_task

OUTLIER_TASK_NAME = "Outlier calculation"
#: The device type column when the inventory records one; else it is read from the OS.
_RECORDED_TYPE = assets.c.get("device_type")


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What the outlier features read of one asset."""

    id: int
    os: str
    hostname: str | None
    recorded_type: str | None
    services: tuple[ServiceFacts, ...]


def site_asset_facts(
    conn: Connection, site_id: int, *, after_id: int, limit: int
) -> list[AssetFacts]:
    """One page of a site's assets in id order (those with ids above `after_id`), with their
    open services."""
    columns: list[Any] = [assets.c.id, assets.c.os, assets.c.hostname]
    if _RECORDED_TYPE is not None:
        columns.append(_RECORDED_TYPE.label("recorded_type"))
    rows = conn.execute(
        select(*columns)
        .where(assets.c.site_id == site_id, assets.c.id > after_id)
        .order_by(assets.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    found: dict[int, list[ServiceFacts]] = {row.id: [] for row in rows}
    service_rows = conn.execute(
        select(
            services.c.asset_id,
            services.c.proto,
            services.c.port,
            services.c.name,
            services.c.product,
            services.c.tls_subject,
            services.c.tls_issuer,
        )
        .where(
            services.c.asset_id >= rows[0].id,
            services.c.asset_id <= rows[-1].id,
            services.c.state == "open",
        )
        .order_by(services.c.asset_id, services.c.port, services.c.proto)
    )
    for service in service_rows:
        listed = found.get(service.asset_id)
        if listed is not None:
            listed.append(
                ServiceFacts(
                    service.proto,
                    service.port,
                    service.name,
                    service.product,
                    service.tls_subject,
                    service.tls_issuer,
                )
            )
    return [
        AssetFacts(
            row.id,
            row.os or "",
            row.hostname,
            getattr(row, "recorded_type", None),
            tuple(found[row.id]),
        )
        for row in rows
    ]


def write_scores(conn: Connection, scores: Sequence[tuple[int, int, Sequence[str]]]) -> None:
    """Write (asset id, score, reasons) for a batch of assets."""
    if not scores:
        return
    conn.execute(
        update(assets)
        .where(assets.c.id == bindparam("asset_id"))
        .values(outlier=bindparam("score"), outlier_reasons=bindparam("reasons")),
        [
            {"asset_id": asset_id, "score": score, "reasons": list(reasons)}
            for asset_id, score, reasons in scores
        ],
    )


def request_outlier_calculation(
    conn: Connection, organization_id: int, site_id: int, *, now: datetime
) -> Task | None:
    """Queue an Outlier calculation of a site, unless one already waits there (coalesced:
    at most one waits per site); the task queued, or None."""
    return request_system_task(
        conn,
        organization_id,
        OUTLIER.type,
        site_id=site_id,
        name=OUTLIER_TASK_NAME,
        description="scores how unusual each asset of the site is among its peers",
        message="the site's inventory changed",
        now=now,
    )


# The Assets list by score -------------------------------------------------------------------


def _encode_cursor(asset: Asset) -> str:
    return encode_cursor([asset.outlier, asset.id])


def _decode_cursor(cursor: str) -> tuple[int | None, int]:
    try:
        score, last_id = decode_cursor(cursor)
        if not (score is None or type(score) is int) or type(last_id) is not int:
            raise TypeError
    except (ValueError, TypeError) as exc:
        raise InvalidAssetCursor(
            "the cursor is malformed; use the next_cursor of a previous page"
        ) from exc
    return score, last_id


def list_assets_by_outlier(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> AssetPage:
    """One page of an organization's assets, most unusual first (unscored ones last), by
    keyset pagination."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    clause: ColumnElement[bool] = assets.c.organization_id == organization_id
    if search is not None:
        clause = and_(clause, search)
    if cursor:
        score, last_id = _decode_cursor(cursor)
        if score is None:
            clause = and_(clause, assets.c.outlier.is_(None), assets.c.id > last_id)
        else:
            clause = and_(
                clause,
                or_(
                    assets.c.outlier < score,
                    and_(assets.c.outlier == score, assets.c.id > last_id),
                    assets.c.outlier.is_(None),
                ),
            )
    rows = (
        conn.execute(
            select(assets)
            .where(clause)
            .order_by(assets.c.outlier.is_(None), assets.c.outlier.desc(), assets.c.id)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    items = [Asset.from_row(row) for row in rows[:limit]]
    return AssetPage(items, _encode_cursor(items[-1]) if len(rows) > limit else None)
