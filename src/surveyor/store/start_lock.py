"""Starts one at a time: the consoles sharing a database bring its schema up to date, create
the first organization on an empty one and give organizations their system templates, each in
turn. Two consoles started together on an empty PostgreSQL database would otherwise both
create the migrations' version table, or both the first organization, and one would fail to
start.

PostgreSQL: a session-level advisory lock, waited for, on a connection of its own. SQLite (one
machine): an exclusive `flock` on a file beside the database. An in-memory SQLite database has
one process: nothing to wait for."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, func, select

from surveyor.store.leader_lock import lock_connection, unlock

#: The advisory lock key of starts ("SurvStrt" in ASCII).
START_KEY = 0x5375_7276_5374_7274


@contextmanager
def one_start_at_a_time(engine: Engine) -> Iterator[None]:
    """Hold the database's start lock for the block, waiting for any other start first."""
    if engine.dialect.name == "postgresql":
        with lock_connection(engine) as conn:
            conn.execute(select(func.pg_advisory_lock(START_KEY)))
            try:
                yield
            finally:
                unlock(conn, START_KEY)
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    descriptor = os.open(f"{database}-start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing it lets the lock go
