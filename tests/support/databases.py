"""Databases for tests that start real processes: a fresh PostgreSQL database each."""

from __future__ import annotations

import uuid

from sqlalchemy import make_url, text

from surveyor.store.engine import make_engine


def fresh_database(postgres_url: str, *, prefix: str = "acceptance") -> str:
    """A new, empty database on the session's PostgreSQL server (`postgres_url`); its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
