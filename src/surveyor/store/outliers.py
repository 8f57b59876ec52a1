"""Outlier scores in the store (`asset_outliers`): the features of a site's assets read in
pages with the scores they have, the scores written in batches, the coalesced request for an
Outlier calculation, and the Assets list sorted by score."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select, text

from surveyor.core.inventory import Asset
from surveyor.core.kinds import OUTLIER
from surveyor.core.outliers import ServiceFacts
from surveyor.core.task import Task
from surveyor.store.cursors import decode_cursor, encode_cursor, keyset_page, page_size
from surveyor.store.inventory import (
    SCORE_COLUMNS,
    AssetPage,
    InvalidAssetCursor,
    searched_assets,
    select_assets,
)
from surveyor.store.schema import asset_outliers, assets
from surveyor.store.system_tasks import request_system_task

OUTLIER_TASK_NAME = "Outlier calculation"


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What the outlier features read of one asset, and the score and reasons it has (its
    reasons as the stored JSON text), None while it has none."""

    id: int
    os: str
    hostname: str | None
    recorded_type: str | None
    services: tuple[ServiceFacts, ...]
    score: int | None = None
    reasons: str | None = None


#: The three reads of `site_asset_facts`, run on the driver's own cursor: a calculation reads
#: every asset and service of its site, and at a million assets building rows through the
#: SQL layer costs more than the queries. `{p}` is the driver's placeholder.
_PAGE_ASSETS = (
    "SELECT id, os, hostname, device_type FROM assets "
    "WHERE site_id = {p} AND id > {p} ORDER BY id LIMIT {p}"
)
_PAGE_SERVICES = (
    "SELECT asset_id, proto, port, name, product, tls_subject, tls_issuer FROM services "
    "WHERE asset_id >= {p} AND asset_id <= {p} AND state = 'open' "
    "ORDER BY asset_id, port, proto"
)
# The reasons as their text: a calculation compares texts, and parses none.
_PAGE_SCORES = (
    "SELECT asset_id, score, CAST(reasons AS TEXT) FROM asset_outliers "
    "WHERE asset_id >= {p} AND asset_id <= {p}"
)
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _driver_sql(conn: Connection, sql: str) -> str:
    return sql.format(p=_PLACEHOLDERS[conn.dialect.paramstyle])


def site_asset_facts(
    conn: Connection, site_id: int, *, after_id: int, limit: int
) -> list[AssetFacts]:
    """One page of a site's assets in id order (those with ids above `after_id`), with their
    open services and their scores as written."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_driver_sql(conn, _PAGE_ASSETS), (site_id, after_id, limit))
        rows = cursor.fetchall()
        if not rows:
            return []
        first, last = rows[0][0], rows[-1][0]
        found: dict[int, list[ServiceFacts]] = {row[0]: [] for row in rows}
        cursor.execute(_driver_sql(conn, _PAGE_SERVICES), (first, last))
        make = ServiceFacts._make
        for service in cursor.fetchall():
            listed = found.get(service[0])
            if listed is not None:
                listed.append(make(service[1:]))
        cursor.execute(_driver_sql(conn, _PAGE_SCORES), (first, last))
        scored: dict[int, tuple[int, str]] = {
            asset_id: (score, reasons) for asset_id, score, reasons in cursor.fetchall()
        }
    finally:
        cursor.close()
    unscored = (None, None)
    return [
        AssetFacts(
            row[0],
            row[1] or "",
            row[2],
            row[3],
            tuple(found[row[0]]),
            *scored.get(row[0], unscored),
        )
        for row in rows
    ]


def reasons_text(reasons: Sequence[str]) -> str:
    """Reasons as `write_scores` stores them (and `AssetFacts.reasons` reads them back)."""
    return json.dumps(list(reasons))


#: Rows of one `write_scores` statement on PostgreSQL (each array is one parameter).
_ROWS_PER_STATEMENT = 5000
#: Each asset's score and reasons, kept only for assets that still exist, and taking their
#: organization from the asset. PostgreSQL: one statement for many rows, from arrays: the
#: asset ids, their scores, and for each the number of its reasons among the distinct texts
#: (each parsed once; a batch shares few).
_UPSERT_POSTGRESQL = text(
    "INSERT INTO asset_outliers (asset_id, organization_id, score, reasons) "
    "SELECT a.id, a.organization_id, u.score, t.reasons "
    "FROM unnest(CAST(:asset_ids AS BIGINT[]), CAST(:scores AS INTEGER[]), "
    "CAST(:numbers AS INTEGER[])) AS u(asset_id, score, number) "
    "JOIN unnest(CAST(:texts AS JSON[])) WITH ORDINALITY AS t(reasons, number) "
    "ON t.number = u.number "
    "JOIN assets a ON a.id = u.asset_id "
    "ON CONFLICT (asset_id) DO UPDATE SET score = excluded.score, reasons = excluded.reasons"
)
#: SQLite: the same for one row, run for many (`executemany`, with no per-row work here).
_UPSERT_SQLITE = (
    "INSERT INTO asset_outliers (asset_id, organization_id, score, reasons) "
    "SELECT id, organization_id, ?, ? FROM assets WHERE id = ? "
    "ON CONFLICT (asset_id) DO UPDATE SET score = excluded.score, reasons = excluded.reasons"
)


def write_scores(conn: Connection, scored: Sequence[tuple[int, int, str]]) -> None:
    """Write (asset id, score, reasons as `reasons_text` gives them) for a batch of assets:
    their rows in `asset_outliers`, new or replaced. An asset deleted meanwhile is left out.
    Only these narrow rows change: no row or index of the assets."""
    if not scored:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            _UPSERT_SQLITE, [(score, reasons, asset_id) for asset_id, score, reasons in scored]
        )
        return
    for start in range(0, len(scored), _ROWS_PER_STATEMENT):
        part = scored[start : start + _ROWS_PER_STATEMENT]
        texts: dict[str, int] = {}
        # Numbered from 1, as WITH ORDINALITY counts.
        numbers = [texts.setdefault(row[2], len(texts) + 1) for row in part]
        conn.execute(
            _UPSERT_POSTGRESQL,
            {
                "asset_ids": [row[0] for row in part],
                "scores": [row[1] for row in part],
                "numbers": numbers,
                "texts": list(texts),
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
    """One page of an organization's assets, most unusual first (unscored ones last, in id
    order), by keyset pagination: the scored ones read by `ix_asset_outliers_rank`, then, once
    they run out, the unscored ones."""
    limit = page_size(limit)
    clause = searched_assets(organization_id, search)
    score, last_id = _decode_cursor(cursor) if cursor else (-1, 0)
    rows: list[Any] = []
    unscored_after = 0
    if score is None:
        unscored_after = last_id
    else:
        scored = and_(clause, asset_outliers.c.organization_id == organization_id)
        if cursor:
            # A range of the index (scores up to the last one), then past the last asset.
            scored = and_(
                scored,
                asset_outliers.c.score <= score,
                or_(asset_outliers.c.score < score, asset_outliers.c.asset_id > last_id),
            )
        rows = list(
            conn.execute(
                select(*assets.c, *SCORE_COLUMNS)
                .select_from(asset_outliers.join(assets, assets.c.id == asset_outliers.c.asset_id))
                .where(scored)
                .order_by(asset_outliers.c.score.desc(), asset_outliers.c.asset_id)
                .limit(limit + 1)
            ).mappings()
        )
    if len(rows) <= limit:
        rows += conn.execute(
            select_assets()
            .where(clause, asset_outliers.c.asset_id.is_(None), assets.c.id > unscored_after)
            .order_by(assets.c.id)
            .limit(limit + 1 - len(rows))
        ).mappings()
    return AssetPage(*keyset_page(rows, limit, Asset.from_row, _encode_cursor))
