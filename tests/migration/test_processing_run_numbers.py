"""The migration that keeps every processing run numbers the runs of an existing database,
on both backends, and tasks start with their data complete (not partial)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, select

from surveyor.store.migrate import alembic_config, upgrade

#: The revision that numbers processing runs, and the one before it.
NUMBERING = "0009"
BEFORE = ScriptDirectory.from_config(alembic_config()).get_revision(NUMBERING).down_revision
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def insert(conn: Connection, table_name: str, /, **values: Any) -> int:
    """A row in a table as the older schema has it (reflected: no defaults of today's)."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


def a_task(conn: Connection, organization_id: int, name: str) -> int:
    return insert(
        conn,
        "tasks",
        organization_id=organization_id,
        name=name,
        description="",
        type="scan",
        status="processed",
        params={},
        stats={},
        progress_collect=1.0,
        progress_process=1.0,
        created_by="test",
        created_at=NOW,
        updated_at=NOW,
        recur=False,
        grace_period=3600,
        hidden=False,
        size_data=10,
        size_results=0,
        targets="",
        version=1,
    )


def a_run(conn: Connection, organization_id: int, task_id: int) -> int:
    counts = dict.fromkeys(("new", "changed", "offline", "online", "unchanged", "ignored"), 0)
    return insert(
        conn,
        "processing_runs",
        task_id=task_id,
        organization_id=organization_id,
        worker="w",
        observed_at=NOW,
        started_at=NOW,
        records_total=0,
        records_done=0,
        phase="done",
        **counts,
    )


def test_existing_runs_are_numbered_per_task_in_the_order_they_started(
    fresh_engine: Engine,
) -> None:
    upgrade(fresh_engine, BEFORE)
    with fresh_engine.begin() as conn:
        org = insert(conn, "organizations", name="Acme", scope_cap=65536, created_at=NOW)
        one, two = a_task(conn, org, "one"), a_task(conn, org, "two")
        runs = [a_run(conn, org, one), a_run(conn, org, two), a_run(conn, org, one)]

    upgrade(fresh_engine)

    with fresh_engine.connect() as conn:
        table = Table("processing_runs", MetaData(), autoload_with=conn)
        numbers = dict(conn.execute(select(table.c.id, table.c.number)).all())
        tasks = Table("tasks", MetaData(), autoload_with=conn)
        partial = set(conn.execute(select(tasks.c.data_partial)).scalars())
    assert numbers == {runs[0]: 1, runs[1]: 1, runs[2]: 2}
    assert partial == {False}
