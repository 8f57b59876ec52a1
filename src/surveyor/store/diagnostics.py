"""What `surveyor doctor` reads from the database: its clock, and the version each explorer
last reported. Nothing here writes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from surveyor.store.engine import normalize_url
from surveyor.store.location import DatabaseLocation
from surveyor.store.revision import CONNECT_TIMEOUT_SECONDS
from surveyor.store.schema import explorers, organizations


def read_catalogue(conn: Connection) -> int:
    """How many tables the database has: reading it proves the database answers (an SQLite
    file that is not a database fails here, not at connect)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    return int(conn.execute(text(query)).scalar_one())


def database_now(conn: Connection) -> datetime:
    """The database server's clock, now (not the transaction's start), as aware UTC."""
    if conn.dialect.name == "postgresql":
        moment = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        assert isinstance(moment, datetime)
        return moment.astimezone(UTC)
    raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ExplorerVersion:
    """An explorer and the Surveyor version it reported at its last check-in."""

    organization: str
    name: str
    version: str
    last_checkin_at: datetime | None


def explorer_versions(conn: Connection) -> list[ExplorerVersion]:
    """Every explorer that has checked in, in every organization."""
    rows = conn.execute(
        select(
            organizations.c.name.label("organization"),
            explorers.c.name,
            explorers.c.version,
            explorers.c.last_checkin_at,
        )
        .join(organizations, organizations.c.id == explorers.c.organization_id)
        .where(explorers.c.version != "")
        .order_by(organizations.c.name, explorers.c.name)
    ).mappings()
    return [
        ExplorerVersion(row["organization"], row["name"], row["version"], row["last_checkin_at"])
        for row in rows
    ]


def open_for_reading(location: DatabaseLocation) -> Engine:
    """An engine that only looks: an SQLite file opened read-only (nothing created, no mode
    changed, unlike `make_engine`), PostgreSQL with a short connect timeout."""
    path = location.sqlite_path
    if path is not None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
        )
    return create_engine(
        normalize_url(location.url),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
