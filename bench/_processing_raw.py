"""The raw baseline: the scan's rows bulk-upserted with hand-written SQL, nothing else.

No matching, no comparison, no change report, no offline marking: every asset row is written
by id, every address and name inserted unless present, every service upserted on its
(asset, protocol, port) key, one `INSERT … ON CONFLICT` statement per table run by the
driver's `executemany` (sqlite3's C loop; psycopg's pipeline mode, which beat both multi-row
`VALUES` of 1,000 rows and `unnest` of arrays here). One transaction, timed from the first
statement to the commit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bench._processing_load import RawRows, _sqlite_time
from surveyor.store.engine import Database

ASSET_COLUMNS = (
    "id",
    "organization_id",
    "site_id",
    "address",
    "address_key",
    "addresses",
    "mac",
    "hostname",
    "hostnames",
    "os",
    "alive",
    "service_count",
    "state_hash",
    "first_seen",
    "last_seen",
    "changed_at",
)
ASSET_UPDATED = (*ASSET_COLUMNS[3:13], "last_seen", "changed_at")
ADDRESS_COLUMNS = ("asset_id", "address_key", "site_id", "address")
NAME_COLUMNS = ("asset_id", "name")
SERVICE_COLUMNS = (
    "asset_id",
    "proto",
    "port",
    "state",
    "name",
    "banner",
    "product",
    "http_status",
    "http_server",
    "http_title",
    "tls_subject",
    "tls_issuer",
    "tls_sans",
    "tls_not_before",
    "tls_not_after",
    "tls_sha256",
    "first_seen",
    "changed_at",
)
SERVICE_UPDATED = (*SERVICE_COLUMNS[3:16], "changed_at")


def _upsert(table: str, columns: Sequence[str], key: str, updated: Sequence[str]) -> str:
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updated)
        if updated
        else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {{values}} ON CONFLICT ({key}) {action}"
    )


STATEMENTS = (
    ("assets", ASSET_COLUMNS, _upsert("assets", ASSET_COLUMNS, "id", ASSET_UPDATED)),
    (
        "addresses",
        ADDRESS_COLUMNS,
        _upsert("asset_addresses", ADDRESS_COLUMNS, "asset_id, address_key", ()),
    ),
    ("names", NAME_COLUMNS, _upsert("asset_names", NAME_COLUMNS, "asset_id, name", ())),
    (
        "services",
        SERVICE_COLUMNS,
        _upsert("services", SERVICE_COLUMNS, "asset_id, proto, port", SERVICE_UPDATED),
    ),
)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _sqlite_time(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return json.dumps(value)
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(value)
    return value


def encode(rows: RawRows, sqlite: bool) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements and their parameters, prepared before the timing starts."""
    value = _sqlite_value if sqlite else _pg_value
    encoded = []
    for name, columns, statement in STATEMENTS:
        found = getattr(rows, name)
        encoded.append((statement, [tuple(value(row[c]) for c in columns) for row in found]))
    return encoded


def run_raw(db: Database, rows: RawRows) -> float:
    """Upsert the rows; the seconds it took."""
    sqlite = db.is_sqlite
    work = encode(rows, sqlite)
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        started = time.perf_counter()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
            for statement, params in work:
                width = len(params[0]) if params else 0
                row = "(" + ", ".join("?" for _ in range(width)) + ")"
                cursor.executemany(statement.format(values=row), params)
            cursor.execute("COMMIT")
        else:
            for statement, params in work:
                width = len(params[0]) if params else 0
                row = "(" + ", ".join("%s" for _ in range(width)) + ")"
                cursor.executemany(statement.format(values=row), params)
            driver.commit()
        return time.perf_counter() - started
    finally:
        raw.close()
