"""The store's one write path for task rows: every write, one row or many, stamps the row,
records its events and notes one typed change per row written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.core.tasks import EventKind, TaskStatus, TaskType
from surveyor.store import accounts
from surveyor.store import tasks as store
from surveyor.store.changes import ChangeKind, take_changes
from surveyor.store.engine import Database
from surveyor.store.records import create_record
from surveyor.store.schema import sites, task_events
from surveyor.store.schema import tasks as tasks_table

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest.fixture
def org(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        organization = accounts.create_organization(conn, "Acme")
        site = create_record(conn, sites, organization["id"], {"name": "HQ", "scope": "127.0.0.1"})
    return {"id": organization["id"], "site_id": site["id"]}


def _values(org: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {
        "organization_id": org["id"],
        "site_id": org["site_id"],
        "name": "nightly sweep",
        "type": TaskType.SCAN.value,
        **values,
    }


def _events(db: Database, task_id: int) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            select(task_events.c.kind, task_events.c.message)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.id)
        ).all()
    return [(row.kind, row.message) for row in rows]


def test_each_single_row_write_notes_one_typed_change(db: Database, org: dict[str, Any]) -> None:
    with db.write() as conn:
        take_changes(conn)  # notes a pooled connection kept from earlier transactions
        task = store.create_task(conn, _values(org), actor="a", now=NOW)
        store.edit_task(conn, org["id"], task.id, {"name": "renamed"}, actor="a", message="e")
        store.transition(conn, org["id"], task.id, TaskStatus.ACTIVE, actor="a")
        changes = take_changes(conn)
    assert [(c.kind, c.task_id, c.status, c.previous_status) for c in changes] == [
        (ChangeKind.CREATED, task.id, "new", None),
        (ChangeKind.EDITED, task.id, "new", None),
        (ChangeKind.STATUS, task.id, "active", "new"),
    ]
    assert "name" in changes[1].fields
    assert {c.organization_id for c in changes} == {org["id"]}
    assert {c.task_type for c in changes} == {"scan"}


def test_a_bulk_update_stamps_every_row_records_its_events_and_notes_each_change(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        created = [
            store.create_task(conn, _values(org, name=f"t{n}"), actor="a", now=NOW)
            for n in range(3)
        ]
        take_changes(conn)
    chosen = [created[0].id, created[2].id]
    later = NOW + timedelta(minutes=5)
    with db.write() as conn:
        take_changes(conn)
        written = store.update_tasks(
            conn,
            tasks_table.c.id.in_(chosen),
            {"wait_reason": None},
            now=later,
            event=store.TaskEvent(EventKind.DUE, "scheduler", "its start time has come"),
        )
        changes = take_changes(conn)
    assert sorted(row.id for row in written) == chosen
    assert sorted(c.task_id for c in changes) == chosen
    assert {c.kind for c in changes} == {ChangeKind.EDITED}
    assert {c.fields for c in changes} == {frozenset({"wait_reason"})}
    with db.read() as conn:
        after = {t.id: t for t in (store.get_task(conn, org["id"], c.id) for c in created)}
    for task in created:
        stored = after[task.id]
        if task.id in chosen:
            assert (stored.version, stored.updated_at) == (task.version + 1, later)
            assert _events(db, task.id)[-1] == ("due", "its start time has come")
        else:
            assert (stored.version, stored.updated_at) == (task.version, NOW)
            assert _events(db, task.id)[-1] == ("created", "created")
        assert (stored.tab, stored.tab_sort) == (task.tab, task.tab_sort)


@pytest.mark.parametrize("column", ["status", "hidden", "removed_at", "recur", "params", "tab"])
def test_a_bulk_update_refuses_the_columns_that_move_a_task_between_tabs(
    db: Database, org: dict[str, Any], column: str
) -> None:
    with db.write() as conn:
        task = store.create_task(conn, _values(org), actor="a", now=NOW)
    with db.write() as conn, pytest.raises(ValueError, match="write_task"):
        store.update_tasks(conn, tasks_table.c.id == task.id, {column: None}, now=NOW)


def test_a_bulk_update_re_sorts_the_tab_that_sorts_by_what_it_writes(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        template = store.create_task(
            conn,
            _values(org, recur=True, recur_frequency="daily", recur_next=NOW),
            actor="a",
            now=NOW,
        )
    assert (template.tab, template.tab_sort) == ("recurring", NOW)
    chosen = tasks_table.c.id == template.id
    tomorrow = NOW + timedelta(days=1)
    with db.write() as conn:
        store.update_tasks(conn, chosen, {"recur_next": tomorrow}, now=NOW)
        moved = store.get_task(conn, org["id"], template.id)
        store.update_tasks(conn, chosen, {"recur_next": None}, now=NOW)
        ended = store.get_task(conn, org["id"], template.id)
    assert moved is not None
    assert ended is not None
    assert moved.tab_sort == tomorrow
    assert ended.tab_sort == store.FAR_FUTURE


def test_spawned_runs_are_counted_and_noted_as_created(db: Database, org: dict[str, Any]) -> None:
    with db.write() as conn:
        template = store.create_task(
            conn,
            _values(org, recur=True, recur_frequency="daily", recur_next=NOW),
            actor="a",
            now=NOW,
        )
        take_changes(conn)  # the template's own, and any a pooled connection kept
        runs = store.spawn_runs(
            conn,
            [template.id],
            NOW,
            copied=["organization_id", "site_id", "name", "type", "params", "targets"],
            fixed={"stats": {}, "wait_reason": None},
            actor="scheduler",
            created_message="created by its recurring task",
            spawned_message=("run ", " spawned"),
            now=NOW,
        )
        changes = take_changes(conn)
        counts = store.count_tasks(conn, org["id"])
        run = store.get_task(conn, org["id"], runs[0].run_id)
    assert [(c.kind, c.task_id, c.status, c.template) for c in changes] == [
        (ChangeKind.CREATED, runs[0].run_id, "new", False)
    ]
    assert run is not None
    assert (run.tab, run.tab_sort, run.version) == ("scheduled", NOW, 1)
    assert counts["scheduled"] == 1
    assert _events(db, template.id)[-1] == ("spawned", f"run {run.id} spawned")
