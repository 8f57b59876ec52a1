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
    found: dict[int, list[ServiceFacts]] = {row[0]: [] for row in rows}
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
    ).all()
    for asset_id, *service in service_rows:
        listed = found.get(asset_id)
        if listed is not None:
            listed.append(ServiceFacts(*service))
    recorded = _RECORDED_TYPE is not None
    return [
        AssetFacts(
            row[0],
            row[1] or "",
            row[2],
            row[3] if recorded else None,
            tuple(found[row[0]]),
        )
        for row in rows
    ]


#: Asset ids in one UPDATE of `write_scores` (well under every backend's bind limit).
_IDS_PER_STATEMENT = 1000
_WRITE_SCORE = (
    update(assets)
    .where(assets.c.id.in_(bindparam("asset_ids", expanding=True)))
    .values(outlier=bindparam("score"), outlier_reasons=bindparam("reasons"))
)


def write_scores(
    conn: Connection, groups: Sequence[tuple[int, Sequence[str], Sequence[int]]]
) -> None:
    """Write (score, reasons, asset ids) for a batch of assets: one statement for the assets
    of a batch that share their score and reasons."""
    for score, reasons, asset_ids in groups:
        for start in range(0, len(asset_ids), _IDS_PER_STATEMENT):
            conn.execute(
                _WRITE_SCORE,
                {
                    "asset_ids": list(asset_ids[start : start + _IDS_PER_STATEMENT]),
                    "score": score,
                    "reasons": list(reasons),
                },
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
