"""Which scheduler fires: an advisory-lock leader on PostgreSQL, the only one on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select, text

from surveyor.scheduler.leader import (
    AdvisoryLockLeader,
    SoleScheduler,
    leadership_for,
)
from surveyor.store.engine import Database


@pytest.fixture
def leaders(postgres_engine: Engine) -> Iterator[tuple[AdvisoryLockLeader, AdvisoryLockLeader]]:
    first, second = AdvisoryLockLeader(postgres_engine), AdvisoryLockLeader(postgres_engine)
    try:
        yield first, second
    finally:
        first.release()
        second.release()


@pytest.mark.postgres
def test_only_one_console_leads_at_a_time_on_postgresql(
    leaders: tuple[AdvisoryLockLeader, AdvisoryLockLeader],
) -> None:
    first, second = leaders

    assert first.is_leader()
    assert not second.is_leader()
    assert first.is_leader()


@pytest.mark.postgres
def test_another_console_leads_once_the_leader_lets_go(
    leaders: tuple[AdvisoryLockLeader, AdvisoryLockLeader],
) -> None:
    first, second = leaders
    assert first.is_leader()

    first.release()

    assert second.is_leader()
    assert not first.is_leader()


@pytest.mark.postgres
def test_another_console_leads_when_the_leaders_connection_is_lost(
    leaders: tuple[AdvisoryLockLeader, AdvisoryLockLeader], postgres_engine: Engine
) -> None:
    first, second = leaders
    assert first.is_leader()
    leader_pid = first.backend_pid

    with postgres_engine.begin() as conn:
        # With a timeout, PostgreSQL answers once the leader's server process has exited.
        assert conn.execute(select(func.pg_terminate_backend(leader_pid, 10_000))).scalar_one()

    assert second.is_leader()
    assert not first.is_leader()


@pytest.mark.postgres
def test_the_leader_holds_its_lock_on_an_idle_connection_not_an_open_transaction(
    leaders: tuple[AdvisoryLockLeader, AdvisoryLockLeader], postgres_engine: Engine
) -> None:
    first, _ = leaders
    assert first.is_leader()

    with postgres_engine.begin() as conn:
        state = conn.execute(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": first.backend_pid},
        ).scalar_one()

    assert state == "idle"


def test_each_backend_gets_its_kind_of_leadership(db: Database) -> None:
    leadership = leadership_for(db.engine)
    try:
        expected = SoleScheduler if db.is_sqlite else AdvisoryLockLeader
        assert isinstance(leadership, expected)
        assert leadership.is_leader()
    finally:
        leadership.release()
