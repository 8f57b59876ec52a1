"""Writers of one SQLite file take turns in the process (`store/engine.py`), instead of each
meeting SQLite's busy wait, which sleeps with a growing back-off; PostgreSQL has no turn."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from surveyor.store import engine as engine_module
from surveyor.store.engine import Database, make_engine

WRITERS = 8
WRITES_EACH = 40


def _counter_table(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("CREATE TABLE write_turn_counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO write_turn_counter (n) VALUES (0)"))


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT n FROM write_turn_counter")).scalar_one())


def test_every_database_on_one_sqlite_file_shares_one_turn(db_engine: Engine) -> None:
    first, second = (
        Database(db_engine),
        Database(make_engine(db_engine.url.render_as_string(hide_password=False))),
    )
    try:
        if db_engine.dialect.name == "sqlite":
            assert first._write_turn is not None
            assert first._write_turn is second._write_turn
        else:
            assert first._write_turn is None
            assert second._write_turn is None
    finally:
        second.dispose()


def test_sqlite_files_have_turns_of_their_own(tmp_path: Path) -> None:
    one = Database(make_engine(f"sqlite:///{tmp_path / 'one.db'}"))
    other = Database(make_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    try:
        assert one._write_turn is not None
        assert other._write_turn is not None
        assert one._write_turn is not other._write_turn
    finally:
        one.dispose()
        other.dispose()


def test_concurrent_writers_through_two_databases_lose_no_write(tmp_path: Path) -> None:
    """Read-modify-write increments from many threads, half through each of two Database
    objects on the file: every increment lands, none is lost or refused."""
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    databases = [Database(make_engine(url)), Database(make_engine(url))]
    _counter_table(databases[0])
    failures: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        db = databases[number % 2]
        start.wait()
        try:
            for _ in range(WRITES_EACH):
                with db.write() as conn:
                    n = conn.execute(text("SELECT n FROM write_turn_counter")).scalar_one()
                    conn.execute(text("UPDATE write_turn_counter SET n = :n"), {"n": n + 1})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert _count(databases[0]) == WRITERS * WRITES_EACH
    finally:
        for db in databases:
            db.dispose()


def test_a_writer_kept_waiting_past_the_busy_timeout_fails_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn never makes a writer wait without end: past the busy timeout it goes on to
    SQLite's own wait, which refuses it ("database is locked"), and the holder's write and
    the data are untouched."""
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    url = f"sqlite:///{tmp_path / 'held.db'}"
    db = Database(make_engine(url))
    _counter_table(db)
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write() as conn:
            conn.execute(text("UPDATE write_turn_counter SET n = 1"))
            holding.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(timeout=60)
        with pytest.raises(OperationalError, match="database is locked"), db.write() as conn:
            conn.execute(text("UPDATE write_turn_counter SET n = 99"))
    finally:
        release.set()
        thread.join()
    assert _count(db) == 1
    with db.write() as conn:  # the turn is free again
        conn.execute(text("UPDATE write_turn_counter SET n = 2"))
    assert _count(db) == 2
    db.dispose()
