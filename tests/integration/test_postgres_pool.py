"""A pooled PostgreSQL connection that the server has closed is replaced when it is taken
from the pool, without a round trip before every transaction; a read without a snapshot
runs without a transaction, and hands its connection back as it found it.

PostgreSQL only: SQLite opens a file, there is no server to close a connection."""

from __future__ import annotations

import select
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, exc, text

from surveyor.store.engine import Database, make_engine, normalize_url

#: How long the server may take to close a connection it was told to end.
CLOSE_SECONDS = 10.0


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def end_backend(engine: Engine, pid: int) -> None:
    """End the server process of `pid`, as an administrator (or a restart) would, and wait
    until its goodbye reached the pooled connection's socket."""
    pooled = engine.raw_connection()  # the pool's only connection, handed back at once
    socket = pooled.driver_connection.pgconn.socket
    pooled.close()
    admin = create_engine(engine.url)
    try:
        with admin.connect() as conn:
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert ended.scalar_one()
    finally:
        admin.dispose()
    closed = select.poll()
    closed.register(socket, select.POLLIN)
    assert closed.poll(CLOSE_SECONDS * 1000), "the server did not close the connection"


@pytest.fixture
def pooled(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_the_server_closed_is_replaced_on_checkout(pooled: Engine) -> None:
    first = backend_pid(pooled)
    end_backend(pooled, first)

    with Database(pooled).read() as conn:
        second = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    assert second != first


@pytest.mark.postgres
def test_without_the_check_the_first_statement_on_it_fails(postgres_url: str) -> None:
    """The control: a plain pool hands out the closed connection."""
    plain = create_engine(normalize_url(postgres_url), pool_size=1, max_overflow=0)
    try:
        end_backend(plain, backend_pid(plain))
        with pytest.raises(exc.OperationalError), plain.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        plain.dispose()


@pytest.mark.postgres
def test_a_healthy_idle_connection_is_kept(pooled: Engine) -> None:
    first = backend_pid(pooled)

    with Database(pooled).read() as conn:
        again = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    assert again == first


def transaction_times(conn: Connection) -> tuple[datetime, datetime]:
    """`now()` of two statements 10 ms apart: equal inside one transaction."""
    first = conn.execute(text("SELECT now()")).scalar_one()
    conn.execute(text("SELECT pg_sleep(0.01)"))
    return first, conn.execute(text("SELECT now()")).scalar_one()


@pytest.mark.postgres
def test_a_read_without_snapshot_opens_no_transaction_and_leaves_the_pool_as_it_was(
    pooled: Engine,
) -> None:
    db = Database(pooled)
    with db.read_without_snapshot() as conn:
        first, second = transaction_times(conn)
    assert second > first, "each statement ran in a transaction of its own"

    # The pool's only connection is back in transactions for the next reader.
    with db.read() as conn:
        first, second = transaction_times(conn)
    assert second == first
