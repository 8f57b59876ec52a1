"""The hot listings' prepared reads (`store/prepared.py`) give what SQLAlchemy's own execution
gives for the same statement, on both backends: the same rows, the same values, the same types,
page after page of every tab, with and without hidden tasks, and a template's runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select

from surveyor.core.task import Task
from surveyor.core.tasks import ALL_VIEW, Tab, TaskStatus, TaskType
from surveyor.store import accounts
from surveyor.store import tasks as store
from surveyor.store.engine import Database
from surveyor.store.prepared import PreparedSelect, decode_rows
from surveyor.store.schema import tasks

#: Every column a task row has, so that each type (times, JSON, booleans, floats, big
#: integers, nulls) goes through the prepared read.
ALL_COLUMNS = tuple(column.name for column in tasks.columns)
STARTED = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def create(db: Database, org: int, name: str, **values: Any) -> Task:
    with db.write() as conn:
        return store.create_task(
            conn,
            {"organization_id": org, "name": name, "type": TaskType.SCAN.value, **values},
            actor="tester@example.test",
        )


def move(db: Database, org: int, task: Task, *steps: TaskStatus) -> None:
    with db.write() as conn:
        for step in steps:
            store.transition(conn, org, task.id, step, actor="system", now=STARTED)


@pytest.fixture
def org(db: Database) -> int:
    """An organization with tasks in several tabs, some hidden, with values of every kind."""
    with db.write() as conn:
        organization = int(accounts.create_organization(conn, "Acme")["id"])
        other = int(accounts.create_organization(conn, "Other")["id"])
    for number in range(4):
        create(db, other, f"other {number}", params={"targets": "127.0.0.1"})
    for number in range(5):
        create(
            db,
            organization,
            f"waiting {number}",
            params={"targets": f"127.0.0.{number + 1}", "deep": {"list": [1, 2.5, None, "é"]}},
            start_time=STARTED + timedelta(days=number, microseconds=number),
        )
    for number in range(4):
        task = create(db, organization, f"running {number}", params={"targets": "127.0.0.9"})
        move(db, organization, task, TaskStatus.ACTIVE)
    for number in range(3):
        task = create(db, organization, f"stopped {number}", params={"huge": 2**70})
        move(db, organization, task, TaskStatus.ACTIVE, TaskStatus.CANCELED)
        with db.write() as conn:
            store.write_task(
                conn,
                store.get_task(conn, organization, task.id),
                {
                    "progress_collect": 0.25 * number,
                    "change_summary": {"new": number, "offline": 1},
                    "stats": {"ratio": 1e-7, "names": ["a", "日本"]},
                    "size_data": 2**40 + number,
                    "data_partial": number % 2 == 0,
                    "hidden": number == 1,
                },
            )
    template = create(
        db,
        organization,
        "weekly",
        params={"targets": "127.0.0.10"},
        recur=True,
        recur_frequency="weekly",
        recur_rule="FREQ=WEEKLY;BYDAY=MO",
        timezone="UTC",
        recur_next=STARTED,
    )
    for offset in range(5):
        occurrence = STARTED + timedelta(hours=offset)
        create(
            db,
            organization,
            f"weekly run {offset}",
            parent_id=template.id,
            occurrence_at=occurrence,
            params={"targets": "127.0.0.10"},
        )
    return organization


def same_values(read: list[list[Any]], executed: list[Any], *, types: bool = True) -> None:
    """The same rows of the same values; of the same types too, unless `types` is False (a
    `Task` holds its status and type as enums)."""
    assert len(read) == len(executed)
    for got, want in zip(read, executed, strict=True):
        assert got == list(want)
        if types:
            assert [type(value) for value in got] == [type(value) for value in want]


def test_a_prepared_read_gives_what_execute_gives(db: Database, org: int) -> None:
    statement = (
        select(*(tasks.c[name] for name in ALL_COLUMNS))
        .where(tasks.c.organization_id == bindparam("org", type_=tasks.c.organization_id.type))
        .order_by(tasks.c.id)
    )
    prepared = PreparedSelect(statement)
    with db.read() as conn:
        executed = conn.execute(statement, {"org": org}).all()
        assert len(executed) == 18
        same_values(prepared.rows(conn, {"org": org}), executed)
        # A second call uses the compiled text and decoders kept from the first.
        same_values(prepared.rows(conn, {"org": org}), executed)
        same_values(decode_rows(conn, statement, {"org": org}), executed)
        with pytest.raises(ValueError, match="no value named"):
            prepared.rows(conn, {"organisation": org})


@pytest.mark.parametrize("include_hidden", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 50])
def test_every_tab_page_by_page_is_what_the_task_path_reads(
    db: Database, org: int, include_hidden: bool, limit: int
) -> None:
    """`list_task_columns` (prepared, and undecoded with a search) against `list_tasks`, page
    after page: the same tasks, columns and cursors."""
    search = tasks.c.name.is_not(None)  # matches all: the searched (unprepared) statement
    for view in [*(tab.value for tab in Tab), ALL_VIEW]:
        for clause in (None, search):
            cursor: str | None = None
            walked = 0
            while True:
                with db.read() as conn:
                    columns = store.list_task_columns(
                        conn,
                        org,
                        ALL_COLUMNS,
                        view=view,
                        search=clause,
                        include_hidden=include_hidden,
                        limit=limit,
                        cursor=cursor,
                    )
                    page = store.list_tasks(
                        conn,
                        org,
                        view=view,
                        search=clause,
                        include_hidden=include_hidden,
                        limit=limit,
                        cursor=cursor,
                    )
                wanted = [[getattr(task, name) for name in ALL_COLUMNS] for task in page.items]
                same_values(columns.rows, wanted, types=False)
                assert columns.next_cursor == page.next_cursor
                walked += len(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
            with db.read() as conn:
                counted = store.count_tasks(conn, org, include_hidden=include_hidden)
            assert walked == counted[view], (view, clause is not None)


def test_a_templates_runs_page_by_page_are_what_the_task_path_reads(db: Database, org: int) -> None:
    with db.read() as conn:
        template = next(
            task
            for task in store.list_tasks(conn, org, view=ALL_VIEW, limit=100).items
            if task.name == "weekly"
        )
        every = store.list_runs(conn, template, limit=100)
        assert len(every) == 5
        before: int | None = None
        seen = []
        while True:
            runs = store.list_run_columns(conn, template, ALL_COLUMNS, limit=2, before_id=before)
            expected = store.list_runs(conn, template, limit=2, before_id=before)
            same_values(
                runs,
                [[getattr(run, name) for name in ALL_COLUMNS] for run in expected],
                types=False,
            )
            if not runs:
                break
            seen += [run[0] for run in runs]
            before = runs[-1][0]
    assert seen == [run.id for run in every]
