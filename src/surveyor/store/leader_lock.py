"""The scheduler's leader lock: a PostgreSQL session-level advisory lock held on a connection
of its own (the rules of leading are scheduler/leader.py's)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError


def lock_connection(engine: Engine) -> Connection:
    """A connection outside any transaction, for holding a session-level lock."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def try_lock(conn: Connection, key: int) -> bool:
    """Take the advisory lock `key` for this connection's session if it is free."""
    return bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one())


def unlock(conn: Connection, key: int) -> None:
    conn.execute(select(func.pg_advisory_unlock(key)))


def still_connected(conn: Connection) -> bool:
    """Whether the connection (and so the session holding the lock) is alive."""
    try:
        conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def backend_pid(conn: Connection) -> int:
    """The server process of this connection."""
    return int(conn.execute(select(func.pg_backend_pid())).scalar_one())
