"""The one transition path on a real database: table enforced, events written, no stale writes."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from surveyor.core.kinds import allowed_transitions
from surveyor.core.task import Task
from surveyor.core.tasks import (
    IllegalTransition,
    Tab,
    TaskStatus,
    TaskType,
)
from surveyor.store import accounts
from surveyor.store import tasks as store
from surveyor.store.engine import Database
from surveyor.store.records import create_record
from surveyor.store.schema import sites, task_events
from surveyor.store.schema import tasks as tasks_table

S = TaskStatus


@pytest.fixture
def org(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        organization = accounts.create_organization(conn, "Acme")
        site = create_record(conn, sites, organization["id"], {"name": "HQ", "scope": "127.0.0.1"})
    return {"id": organization["id"], "site_id": site["id"]}


def new_task(
    db: Database, org: dict[str, Any], task_type: TaskType = TaskType.SCAN, **values: Any
) -> Task:
    with db.write() as conn:
        return store.create_task(
            conn,
            {
                "organization_id": org["id"],
                "site_id": org["site_id"],
                "name": "nightly sweep",
                "type": task_type.value,
                **values,
            },
            actor="tester@example.test",
        )


def path_to(task_type: TaskType, goal: TaskStatus) -> list[TaskStatus]:
    """The shortest chain of allowed transitions from `new` to `goal`."""
    table = allowed_transitions(task_type, template=False)
    queue: deque[list[TaskStatus]] = deque([[S.NEW]])
    seen = {S.NEW}
    while queue:
        path = queue.popleft()
        if path[-1] is goal:
            return path[1:]
        for before, after in table:
            if before is path[-1] and after not in seen:
                seen.add(after)
                queue.append([*path, after])
    raise AssertionError(f"{goal} unreachable for {task_type}")


def drive(db: Database, org: dict[str, Any], task: Task, steps: list[TaskStatus]) -> Task:
    for step in steps:
        with db.write() as conn:
            task = store.transition(conn, org["id"], task.id, step, actor="system")
    return task


def event_count(db: Database, task_id: int) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(task_events)
                .where(task_events.c.task_id == task_id)
            ).scalar_one()
        )


@pytest.mark.parametrize(
    "task_type", [TaskType.SCAN, TaskType.CONNECTOR, TaskType.IMPORT, TaskType.REPORT]
)
def test_every_allowed_transition_changes_the_status_and_records_an_event(
    db: Database, org: dict[str, Any], task_type: TaskType
) -> None:
    for before, after in allowed_transitions(task_type, template=False):
        task = new_task(db, org, task_type, size_data=10)
        task = drive(db, org, task, path_to(task_type, before))
        events_before = event_count(db, task.id)
        with db.write() as conn:
            moved = store.transition(
                conn, org["id"], task.id, after, actor="alice", message="because"
            )
        assert moved.status == after.value
        with db.read() as conn:
            stored = store.get_task(conn, org["id"], task.id)
            last = (
                conn.execute(
                    select(task_events)
                    .where(task_events.c.task_id == task.id)
                    .order_by(task_events.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .one()
            )
        assert stored is not None
        assert stored.status == after.value
        assert stored.version == task.version + 1
        assert event_count(db, task.id) == events_before + 1
        assert (last["from_status"], last["to_status"]) == (before.value, after.value)
        assert last["actor"] == "alice"
        assert last["message"] == "because"
        assert last["at"].tzinfo is not None


@pytest.mark.parametrize("task_type", [TaskType.SCAN, TaskType.CONNECTOR, TaskType.IMPORT])
def test_every_other_transition_is_refused_and_changes_nothing(
    db: Database, org: dict[str, Any], task_type: TaskType
) -> None:
    table = allowed_transitions(task_type, template=False)
    reachable = {before for before, _ in table} | {after for _, after in table}
    for before in reachable:
        task = drive(db, org, new_task(db, org, task_type), path_to(task_type, before))
        events_before = event_count(db, task.id)
        for requested in TaskStatus:
            if (before, requested) in table:
                continue
            with db.write() as conn, pytest.raises(IllegalTransition) as refused:
                store.transition(conn, org["id"], task.id, requested, actor="mallory")
            assert refused.value.current is before
        with db.read() as conn:
            unchanged = store.get_task(conn, org["id"], task.id)
        assert unchanged is not None
        assert unchanged.status == before.value
        assert unchanged.version == task.version
        assert event_count(db, task.id) == events_before


def test_a_stale_writer_never_overwrites_a_newer_status(db: Database, org: dict[str, Any]) -> None:
    task = new_task(db, org)
    with db.read() as conn:
        stale_copy = store.get_task(conn, org["id"], task.id)
    assert stale_copy is not None
    drive(db, org, task, [S.ACTIVE, S.SCANNED])
    with db.write() as conn, pytest.raises(store.StaleTask):
        store.write_task(conn, stale_copy, {"status": S.CANCELED.value})
    with db.read() as conn:
        fresh = store.get_task(conn, org["id"], task.id)
    assert fresh is not None
    assert fresh.status == "scanned"


def test_a_transition_decides_on_the_freshest_status_not_the_callers_view(
    db: Database, org: dict[str, Any]
) -> None:
    task = drive(db, org, new_task(db, org), [S.ACTIVE, S.STOPPING, S.STOPPED])
    with db.write() as conn, pytest.raises(IllegalTransition) as refused:
        store.transition(conn, org["id"], task.id, S.SCANNED, actor="explorer:1")
    assert refused.value.current is S.STOPPED


def test_expected_statuses_narrow_what_a_caller_may_start_from(
    db: Database, org: dict[str, Any]
) -> None:
    task = new_task(db, org)
    with db.write() as conn, pytest.raises(IllegalTransition):
        store.transition(
            conn, org["id"], task.id, S.CANCELED, actor="explorer:1", expected=[S.ACTIVE]
        )


def test_pipeline_timestamps_are_set_as_the_task_moves(db: Database, org: dict[str, Any]) -> None:
    task = drive(
        db,
        org,
        new_task(db, org),
        [S.ACTIVE, S.SCANNED, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED],
    )
    assert task.data_acquisition_started_at <= task.data_acquisition_ended_at
    assert task.data_acquisition_ended_at <= task.data_processing_started_at
    assert task.data_processing_started_at <= task.data_processing_ended_at
    assert task.finished_at == task.data_processing_ended_at


def test_tasks_move_between_tabs_with_their_status(db: Database, org: dict[str, Any]) -> None:
    task = new_task(db, org)
    seen = [task.tab]
    for step in [S.ACTIVE, S.SCANNED, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED]:
        task = drive(db, org, task, [step])
        seen.append(task.tab)
    assert seen == ["scheduled", "active", "processing", "processing", "processing", "completed"]


def test_a_requeued_task_keeps_its_place_in_the_processing_queue(
    db: Database, org: dict[str, Any]
) -> None:
    first = drive(
        db, org, new_task(db, org), [S.ACTIVE, S.SCANNED, S.PROCESSING_QUEUED, S.PROCESSING]
    )
    second = drive(db, org, new_task(db, org), [S.ACTIVE, S.SCANNED, S.PROCESSING_QUEUED])
    first = drive(db, org, first, [S.PROCESSING_QUEUED])
    with db.read() as conn:
        page = store.list_tasks(conn, org["id"], view=Tab.PROCESSING.value)
    assert [t.id for t in page.items] == [first.id, second.id]


def test_keyset_pages_walk_a_tab_without_gaps_or_repeats(db: Database, org: dict[str, Any]) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    created = [new_task(db, org, start_time=base + timedelta(minutes=i % 7)).id for i in range(23)]
    seen: list[int] = []
    cursor = None
    while True:
        with db.read() as conn:
            page = store.list_tasks(conn, org["id"], view="scheduled", limit=5, cursor=cursor)
        seen.extend(t.id for t in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    with db.read() as conn:
        starts = {
            t.id: t.start_time
            for t in store.list_tasks(conn, org["id"], view="scheduled", limit=100).items
        }
    assert [starts[i] for i in seen] == sorted(starts[i] for i in seen)


def test_a_cursor_from_another_tab_is_refused(db: Database, org: dict[str, Any]) -> None:
    for _ in range(3):
        new_task(db, org)
    with db.read() as conn:
        page = store.list_tasks(conn, org["id"], view="scheduled", limit=1)
        assert page.next_cursor is not None
        with pytest.raises(store.InvalidCursor):
            store.list_tasks(conn, org["id"], view="failed", cursor=page.next_cursor)
        with pytest.raises(store.InvalidCursor):
            store.list_tasks(conn, org["id"], view="failed", cursor="not-a-cursor")


def test_counts_cover_every_tab_and_skip_hidden_tasks(db: Database, org: dict[str, Any]) -> None:
    new_task(db, org)
    drive(db, org, new_task(db, org), [S.ACTIVE])
    drive(db, org, new_task(db, org), [S.CANCELED])
    hidden = new_task(db, org)
    with db.write() as conn:
        store.edit_task(conn, org["id"], hidden.id, {"hidden": True}, actor="a", message="h")
        counts = store.count_tasks(conn, org["id"])
        with_hidden = store.count_tasks(conn, org["id"], include_hidden=True)
    assert counts == {
        "active": 1,
        "processing": 0,
        "scheduled": 1,
        "failed": 1,
        "completed": 0,
        "recurring": 0,
        "all": 3,
    }
    assert with_hidden["scheduled"] == 2
    assert with_hidden["all"] == 4


def test_another_organizations_task_is_not_found(db: Database, org: dict[str, Any]) -> None:
    task = new_task(db, org)
    with db.write() as conn:
        other = accounts.create_organization(conn, "Other")
        assert store.get_task(conn, other["id"], task.id) is None
        with pytest.raises(store.TaskNotFound):
            store.transition(conn, other["id"], task.id, S.STOPPED, actor="x")


def test_a_rolled_back_write_leaves_the_tab_counts_alone(db: Database, org: dict[str, Any]) -> None:
    new_task(db, org)

    def abandoned_write() -> None:
        with db.write() as conn:
            values = {"organization_id": org["id"], "name": "doomed", "type": "scan"}
            store.create_task(conn, values, actor="tester")
            raise RuntimeError("abandon this transaction")

    with pytest.raises(RuntimeError):
        abandoned_write()
    with db.read() as conn:
        assert store.count_tasks(conn, org["id"])["scheduled"] == 1


def test_rebuilding_the_tab_counts_matches_a_real_count(db: Database, org: dict[str, Any]) -> None:
    drive(db, org, new_task(db, org), [S.ACTIVE])
    new_task(db, org)
    with db.write() as conn:
        before = store.count_tasks(conn, org["id"])
        store.rebuild_tab_counts(conn)
    with db.read() as conn:
        assert store.count_tasks(conn, org["id"]) == before
        searched = store.count_tasks(conn, org["id"], search=tasks_table.c.id > 0)
    assert searched == before


def test_times_of_any_year_keep_their_order(db: Database, org: dict[str, Any]) -> None:
    early = new_task(db, org, start_time=datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    late = new_task(db, org, start_time=datetime(2026, 1, 1, tzinfo=UTC))
    with db.read() as conn:
        page = store.list_tasks(conn, org["id"], view="scheduled")
        stored = store.get_task(conn, org["id"], early.id)
    assert [t.id for t in page.items] == [early.id, late.id]
    assert stored is not None
    assert stored.start_time == datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
