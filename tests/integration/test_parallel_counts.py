"""Searched tab counts read side by side (`store/parallel_reads.py`): each tab counted by a
statement of its own, on the caller's connection and on helpers' connections of their own,
give exactly what one statement gives, cap and all.

Runs on SQLite (a file: several connections) and PostgreSQL.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Integer,
    String,
    bindparam,
    event,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.parallel_reads import MOST, CountPiece, ParallelReads
from surveyor.store.schema import tasks
from surveyor.store.task_search import compile_task_search
from tests.conftest import empty_postgres

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
#: (tab, status) of the tasks, by how many of each.
PLACES = {
    ("active", "active"): 7,
    ("processing", "processing"): 5,
    ("scheduled", "new"): 9,
    ("failed", "canceled"): 11,
    ("completed", "processed"): 23,
    ("recurring", "new"): 3,
}
NAMES = ("weekly sweep dmz", "nightly scan lab", "audit open rdp", "rescan after chg")


@dataclass(frozen=True)
class Seeded:
    db: Database
    org: int


@pytest.fixture
def side_by_side(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """A database with tasks in every tab, whose counts are read on three connections at
    once, whatever their size."""
    with _seeded(db_engine, monkeypatch) as seeded:
        yield seeded


@pytest.fixture
def on_postgresql(postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """`side_by_side` on PostgreSQL alone."""
    empty_postgres(postgres_engine)
    with _seeded(postgres_engine, monkeypatch) as seeded:
        yield seeded


@contextmanager
def _seeded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    monkeypatch.setattr(task_store, "SIDE_BY_SIDE_FROM_ENTRIES", 1)
    db = Database(engine, read_workers=3)
    with db.write() as conn:
        org = int(accounts.create_organization(conn, "Acme")["id"])
        number = 0
        for (tab, status), count in PLACES.items():
            for _ in range(count):
                number += 1
                at = NOW - timedelta(hours=number)
                conn.execute(
                    insert(tasks).values(
                        organization_id=org,
                        name=f"{NAMES[number % len(NAMES)]} {number}",
                        type="scan",
                        status=status,
                        tab=tab,
                        tab_sort=at,
                        hidden=number % 10 == 0,
                        recur=tab == "recurring",
                        created_at=at,
                        updated_at=at,
                        created_by="ada@example.test" if number % 3 else "bob@example.test",
                    )
                )
        task_store.rebuild_tab_counts(conn)
    try:
        yield Seeded(db, org)
    finally:
        db.parallel_reads.close()


@pytest.mark.parametrize(
    "query",
    [
        "name:scan",
        "name:audit OR created_by:bob",
        "NOT name:sweep",
        "created_at:<2days",
        "name:nothing-like-this",
        "hidden:true name:a",
        "status:canceled OR status:active",
    ],
)
@pytest.mark.parametrize("cap", [1, 4, 10_000])
def test_side_by_side_counts_are_the_counts_of_one_statement(
    side_by_side: Seeded, query: str, cap: int
) -> None:
    db, org = side_by_side.db, side_by_side.org
    with db.read() as conn:
        found = compile_task_search(conn, query, now=NOW)
        alone = task_store.count_search(conn, org, found, cap=cap)
        beside = task_store.count_search(conn, org, found, cap=cap, reads=db.parallel_reads)
        exact = task_store.count_search(conn, org, found, exact=True)
        exact_beside = task_store.count_search(
            conn, org, found, exact=True, reads=db.parallel_reads
        )
    assert exact_beside == exact
    assert beside == alone
    assert beside.counts == {tab: min(n, cap) for tab, n in exact.counts.items()}
    assert beside.capped == {tab for tab, n in exact.counts.items() if n > cap}


@pytest.fixture
def readers(side_by_side: Seeded) -> Iterator[list[str]]:
    """The threads that run each tab's count, in order. The caller's first count (it takes
    the largest tab before any helper starts) waits until a helper has begun one (10 s at
    the most): otherwise the caller could read every tab before a helper starts."""
    names: list[str] = []
    caller = threading.current_thread().name
    helper_began = threading.Event()

    def seen(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context.compiled is None or "count_tab" not in context.compiled.binds:
            return
        name = threading.current_thread().name
        names.append(name)
        if name != caller:
            helper_began.set()
        elif names.count(caller) == 1:
            helper_began.wait(10)

    engine = side_by_side.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield names
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_the_tabs_are_read_on_the_callers_connection_and_on_helpers(
    side_by_side: Seeded, readers: list[str]
) -> None:
    db, org = side_by_side.db, side_by_side.org
    with db.read() as conn:
        found = compile_task_search(conn, "name:a", now=NOW)
        counted = task_store.count_search(conn, org, found, reads=db.parallel_reads)
        expected = task_store.count_search(conn, org, found, exact=True)
    assert counted.counts == expected.counts
    assert len(readers) == len(PLACES)  # one statement a tab
    assert threading.current_thread().name in readers  # it takes the largest tab at once
    assert any(name.startswith("surveyor-read") for name in readers)
    # An exact count of a search without a rare substring is read the same way.
    readers.clear()
    with db.read() as conn:
        found = compile_task_search(conn, "NOT name:sweep", now=NOW)
        assert found.candidates is None
        exact = task_store.count_search(conn, org, found, exact=True, reads=db.parallel_reads)
        assert exact == task_store.count_search(conn, org, found, exact=True)
    assert len(readers) == len(PLACES)


def _tab_count() -> Any:
    """How many tasks a tab holds, up to `MOST`."""
    return select(func.count()).select_from(
        select(literal(1))
        .where(tasks.c.tab == bindparam("count_tab", type_=String()))
        .limit(bindparam(MOST, type_=Integer()))
        .subquery()
    )


def test_a_group_counts_no_further_than_its_limit(side_by_side: Seeded) -> None:
    completed = CountPiece("completed", {"count_tab": "completed"})
    failed = CountPiece("failed", {"count_tab": "failed"})
    pieces = [completed] * 3 + [failed]
    one_by_one = ParallelReads(side_by_side.db.read_without_snapshot, 1)
    with side_by_side.db.read() as conn:
        # Three pieces of 23 towards a limit of 30, one after the other: the first counts
        # 23, the second what is left (7), the third is never read.
        assert one_by_one.count(conn, _tab_count(), pieces, limit=30) == {
            "completed": 30,
            "failed": 11,
        }
        # Side by side, pieces taken at once each count up to the limit: at least it.
        beside = side_by_side.db.parallel_reads.count(conn, _tab_count(), pieces, limit=30)
        assert beside["completed"] >= 30
        assert beside["failed"] == 11
        # Under the limit every piece counts in full.
        assert side_by_side.db.parallel_reads.count(conn, _tab_count(), pieces, limit=1_000) == {
            "completed": 69,
            "failed": 11,
        }


def test_a_piece_that_fails_fails_the_count(side_by_side: Seeded) -> None:
    db = side_by_side.db
    broken = (
        select(func.count())
        .select_from(text("no_such_table"))
        .where(text(f":count_tab = :count_tab AND :{MOST} > 0"))
    )
    pieces = [CountPiece(tab, {"count_tab": tab}) for tab, _status in PLACES]
    with pytest.raises(DBAPIError, match="no_such_table"), db.read() as conn:
        db.parallel_reads.count(conn, broken, pieces, limit=10)
    # The database is as usable as before.
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(tasks)).scalar_one() == 58


def test_with_one_worker_everything_is_read_on_the_callers_connection(
    side_by_side: Seeded,
) -> None:
    alone = ParallelReads(side_by_side.db.read_without_snapshot, 1)
    pieces = [CountPiece(tab, {"count_tab": tab}) for tab, _status in PLACES]
    with side_by_side.db.read() as conn:
        summed = alone.count(conn, _tab_count(), pieces, limit=1_000)
    assert summed == {tab: count for (tab, _status), count in PLACES.items()}
    alone.close()


def test_one_tab_expected_under_the_cap_is_read_in_stretches_of_time(
    on_postgresql: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, a search that can match in one tab only, requires an indexed
    substring and is expected under the cap is read in as many stretches of creation time
    as there are workers, side by side; the counts are those of one statement. (So few
    rows hold the substring here that the count would go through the trigram index: not
    below `FEW_CANDIDATES` = 0.)"""
    monkeypatch.setattr(task_store, "FEW_CANDIDATES", 0)
    db, org = on_postgresql.db, on_postgresql.org
    stretches: list[tuple[datetime, datetime]] = []

    def seen(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context.compiled is not None and "count_from" in context.compiled.binds:
            params = context.compiled_parameters[0]
            stretches.append((params["count_from"], params["count_to"]))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for query in ("name:scan status:processed", "name:scan status:processed created_at:<2days"):
            stretches.clear()
            with db.read() as conn:
                found = compile_task_search(conn, query, now=NOW)
                assert found.tabs == {"completed"}
                beside = task_store.count_search(conn, org, found, reads=db.parallel_reads)
                alone = task_store.count_search(conn, org, found)
                exact = task_store.count_search(conn, org, found, exact=True)
            assert beside == alone, query
            assert beside.counts == exact.counts, query
            assert beside.counts["completed"] > 0, query
            # Three stretches that cover all time between them, in order.
            assert len(stretches) == 3, query
            ordered = sorted(stretches)
            assert ordered[0][0].year == 1
            assert ordered[-1][1].year == 9999
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ordered))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
