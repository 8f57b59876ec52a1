"""Which scheduler fires: on PostgreSQL the holder of an advisory lock, on SQLite the only one.

Several consoles may share one PostgreSQL. Each asks for a session-level advisory lock on a
connection of its own, kept open; the one that gets it leads until its connection ends (the
server then releases the lock and another console takes over within a tick). Leadership is an
economy, not the guarantee: due rows are locked while fired and runs are unique per template
and occurrence, so even two schedulers that both believe they lead fire each occurrence once.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from surveyor.store import leader_lock

log = logging.getLogger("surveyor.scheduler")

#: The advisory lock key of the scheduler ("SurvSchd" in ASCII).
SCHEDULER_LOCK_KEY = 0x5375_7276_5363_6864


class Leadership(Protocol):
    def is_leader(self) -> bool:
        """Whether this scheduler should fire now; takes the lead if it is free."""
        ...

    def release(self) -> None:
        """Give the lead up (when the console stops)."""
        ...


class SoleScheduler:
    """SQLite: one console process owns the file, so its scheduler always leads. Were a second
    one started, `BEGIN IMMEDIATE` serializes their writes and the unique index holds."""

    def is_leader(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLockLeader:
    """PostgreSQL: lead while holding `pg_try_advisory_lock` on a dedicated connection."""

    def __init__(self, engine: Engine, *, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock's connection while leading (for diagnostics)."""
        if self._conn is None:
            return None
        return leader_lock.backend_pid(self._conn)

    def is_leader(self) -> bool:
        if self._conn is not None:
            if leader_lock.still_connected(self._conn):
                return True
            log.warning("the scheduler lost its leader connection; trying to lead again")
            self._discard()
        return self._try_acquire()

    def _try_acquire(self) -> bool:
        try:
            conn = leader_lock.lock_connection(self.engine)
        except SQLAlchemyError:
            log.warning("the scheduler cannot reach the database to take the lead")
            return False
        try:
            acquired = leader_lock.try_lock(conn, self.key)
        except SQLAlchemyError:
            _drop(conn)
            return False
        if not acquired:
            conn.close()
            return False
        self._conn = conn
        log.info("this console's scheduler leads")
        return True

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _drop(conn)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            leader_lock.unlock(conn, self.key)
            conn.close()
        except SQLAlchemyError:
            _drop(conn)


def _drop(conn: Connection) -> None:
    """Close a connection that failed, without raising: its session (and lock) is gone."""
    with contextlib.suppress(SQLAlchemyError):
        conn.invalidate()
    with contextlib.suppress(SQLAlchemyError):
        conn.close()


def leadership_for(engine: Engine) -> Leadership:
    """The leadership fitting the backend."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLeader(engine)
    return SoleScheduler()
