"""The change bus: task changes published once after their commit, to the subscribers that
want them, in this process and (PostgreSQL) in every other."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select

from surveyor.console.live import TaskFeed
from surveyor.core.clock import FakeClock
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.processing import queue
from surveyor.processing.worker import wake_on_queued
from surveyor.service.scheduling import COPIED_FROM_TEMPLATE
from surveyor.store import tasks as task_store
from surveyor.store.change_bus import (
    MAX_PAYLOAD_BYTES,
    ChangeBus,
    Interest,
    decode_payload,
    encode_payloads,
    everything,
)
from surveyor.store.changes import ChangeKind, TaskChange
from surveyor.store.engine import Database, make_engine
from tests.integration.test_scheduler_console import NIGHTLY, TickWatcher, console_with_scheduler
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import ExplorerUnderTest, create_scan, enroll
from tests.support.inventory_data import Place, host, make_place, queue_hosts

WAIT_SECONDS = 30.0
ON_POSTGRESQL = pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)


class Heard:
    """What a subscriber was told; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.batches: list[Sequence[TaskChange]] = []
        self._told = threading.Condition()

    def __call__(self, changes: Sequence[TaskChange]) -> None:
        with self._told:
            self.batches.append(changes)
            self._told.notify_all()

    @property
    def changes(self) -> list[TaskChange]:
        return [change for batch in self.batches for change in batch]

    def wait_for(self, wanted: Callable[[TaskChange], bool]) -> TaskChange:
        with self._told:
            self._told.wait_for(lambda: any(wanted(c) for c in self.changes), WAIT_SECONDS)
            found = [change for change in self.changes if wanted(change)]
        assert found, f"no such change was heard; heard {self.changes}"
        return found[0]


@contextmanager
def listening(db: Database, where: Interest = everything) -> Iterator[tuple[ChangeBus, Heard]]:
    """A change bus opened on `db`, and what one subscriber to it hears."""
    bus = ChangeBus()
    bus.open(db)
    heard = Heard()
    bus.subscribe(heard, where=where)
    try:
        yield bus, heard
    finally:
        bus.close()


def new_scan(conn: Connection, place: Place, **values: Any) -> Task:
    return task_store.create_task(
        conn,
        {
            "organization_id": place.organization_id,
            "site_id": place.site_id,
            "name": "scan",
            "type": TaskType.SCAN.value,
            **values,
        },
        actor="tester",
    )


# Published once, after the commit


def test_a_transactions_changes_are_published_once_after_it_committed(db: Database) -> None:
    place = make_place(db)
    with listening(db) as (_, heard), db.write() as conn:
        task = new_scan(conn, place)
        assert heard.batches == [], "nothing is published before the commit"
        task_store.transition(
            conn, place.organization_id, task.id, TaskStatus.ACTIVE, actor="explorer"
        )
        task_store.edit_task(
            conn, place.organization_id, task.id, {"name": "renamed"}, actor="x", message=""
        )
        assert heard.batches == []

    [batch] = heard.batches
    created, launched, renamed = batch
    assert created.kind is ChangeKind.CREATED
    assert (created.organization_id, created.task_id) == (place.organization_id, task.id)
    assert (created.task_type, created.status) == (TaskType.SCAN, TaskStatus.NEW)
    assert launched.kind is ChangeKind.STATUS
    assert (launched.previous_status, launched.status) == (TaskStatus.NEW, TaskStatus.ACTIVE)
    assert renamed.kind is ChangeKind.EDITED
    assert renamed.fields == {"name"}


def test_a_rolled_back_transaction_publishes_nothing(db: Database) -> None:
    place = make_place(db)

    def create_then_fail() -> None:
        with db.write() as conn:
            new_scan(conn, place)
            raise RuntimeError("changed our mind")

    with listening(db) as (_, heard):
        with pytest.raises(RuntimeError, match="changed our mind"):
            create_then_fail()
        with db.write():
            pass  # the next transaction on the connection publishes no leftovers

    assert heard.batches == []


def test_a_commit_that_fails_publishes_nothing(db: Database) -> None:
    place = make_place(db)

    def refuse(_conn: Connection) -> None:
        raise RuntimeError("the commit failed")

    with listening(db) as (_, heard):
        event.listen(db.engine, "commit", refuse)
        try:
            with pytest.raises(RuntimeError), db.write() as conn:
                new_scan(conn, place)
        finally:
            event.remove(db.engine, "commit", refuse)
        with db.write():
            pass

    assert heard.batches == []


def test_a_commit_outside_the_database_leaves_no_changes_for_the_next_transaction(
    db: Database,
) -> None:
    place = make_place(db)
    with listening(db) as (_, heard):
        with db.engine.begin() as conn:
            new_scan(conn, place)
        with db.write() as conn:
            later = new_scan(conn, place)

    assert [change.task_id for change in heard.changes] == [later.id]


def test_spawned_runs_are_published_as_created(db: Database) -> None:
    place = make_place(db)
    with db.write() as conn:
        template = new_scan(conn, place, recur=True)
    occurrence = datetime(2030, 1, 1, 3, tzinfo=UTC)
    fixed = {
        "status": TaskStatus.NEW.value,
        "recur": False,
        "hidden": False,
        "stats": {},
        "created_at": occurrence,
        "updated_at": occurrence,
        "version": 1,
    }
    fixed |= task_store.placement(
        {**fixed, "start_time": occurrence, "removed_at": None}, previous=None, now=occurrence
    )
    with listening(db) as (_, heard), db.write() as conn:
        [run] = task_store.spawn_runs(
            conn,
            [template.id],
            occurrence,
            copied=COPIED_FROM_TEMPLATE,
            fixed=fixed,
            actor="scheduler",
            created_message="created",
            spawned_message=("spawned run ", ""),
            now=occurrence,
        )

    [created] = heard.changes
    assert (created.kind, created.task_id, created.template) == (
        ChangeKind.CREATED,
        run.run_id,
        False,
    )


# Subscribers: explorers' held polls


def held_poll(explorer: ExplorerUnderTest) -> tuple[threading.Thread, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def wait_for_work() -> None:
        answer["task"] = explorer.poll(wait=25)

    waiter = threading.Thread(target=wait_for_work)
    waiter.start()
    return waiter, answer


def parked_poll(console: ConsoleUnderTest, explorer: ExplorerUnderTest) -> Callable[[], Any]:
    """Hold a poll of `explorer` until it waits; the returned function gives its answer."""
    waiter, answer = held_poll(explorer)
    signal = console.client.app.state.console.explorer_work
    assert signal.wait_parked(1, WAIT_SECONDS), "the poll never waited"

    def answered() -> Any:
        waiter.join(WAIT_SECONDS)
        return answer.get("task")

    return answered


@pytest.fixture
def slow_rechecks(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleUnderTest]:
    """A console whose held polls would not look at the database again for ten minutes."""
    with running_console(db, tmp_path, monkeypatch, poll_recheck_seconds=600) as running:
        yield running


def test_a_held_poll_gets_a_scan_created_through_the_api_at_once(
    slow_rechecks: ConsoleUnderTest,
) -> None:
    explorer = enroll(slow_rechecks)
    answered = parked_poll(slow_rechecks, explorer)

    scan = create_scan(slow_rechecks, explorer_id=explorer.id)

    task = answered()
    assert task is not None, "the poll was not woken"
    assert task["id"] == scan["id"]


def test_a_held_poll_gets_a_scan_created_with_the_web_form_at_once(
    slow_rechecks: ConsoleUnderTest,
) -> None:
    explorer = enroll(slow_rechecks)
    browser, csrf = signed_in(slow_rechecks, "operator")
    answered = parked_poll(slow_rechecks, explorer)

    created = browser.post(
        "/tasks/new",
        data={
            "csrf_token": csrf,
            "name": "from the form",
            "targets": "127.0.0.1",
            "ports": "default",
            "when": "now",
            "runner": f"explorer:{explorer.id}",
        },
    )

    assert created.status_code == 303, created.text
    task = answered()
    assert task is not None, "the poll was not woken"
    assert task["name"] == "from the form"


# Subscribers: processing workers, the live event stream


def test_a_task_queued_for_processing_wakes_idle_workers(db: Database, tmp_path: Path) -> None:
    place = make_place(db)
    bus = ChangeBus()
    bus.open(db)
    wakeup = queue.Wakeup()
    wake_on_queued(bus, [wakeup])
    try:
        with db.write() as conn:
            new_scan(conn, place)
        assert not wakeup.wait(0), "a new scan is not work for a worker"
        queue_hosts(db, tmp_path, place, [host("127.0.0.1")])
        # Published before the write returned: no need to wait.
        assert wakeup.wait(0), "the queued task woke the worker"
    finally:
        bus.close()


def test_the_live_feed_looks_at_once_when_a_task_changes(db: Database) -> None:
    place = make_place(db)
    bus = ChangeBus()
    bus.open(db)
    feed = TaskFeed(db, poll_seconds=600, changes=bus)

    def create() -> int:
        with db.write() as conn:
            return new_scan(conn, place).id

    async def scenario() -> tuple[int, Any]:
        stream, _ = await feed.subscribe(place.organization_id)
        parked = await asyncio.to_thread(feed.news.wait_parked, 1, WAIT_SECONDS)
        assert parked, "the feed never waited"
        task_id = await asyncio.to_thread(create)
        async with asyncio.timeout(WAIT_SECONDS):
            item = await stream.get()
        return task_id, item

    try:
        task_id, item = asyncio.run(scenario())
    finally:
        bus.close()
    assert item is not None, "the feed ended instead"
    assert (item.event, item.data["task_id"], item.data["kind"]) == ("task", task_id, "created")


# Across processes (PostgreSQL)


@pytest.fixture
def other_database(postgres_url: str) -> Iterator[Database]:
    """The same PostgreSQL through an engine of its own, as another process has."""
    other = Database(make_engine(postgres_url))
    yield other
    other.dispose()


@pytest.fixture
def second_console(
    console: ConsoleUnderTest,
    other_database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConsoleUnderTest]:
    """A second console beside `console`, on its own engine; its polls recheck rarely."""
    with running_console(
        other_database, tmp_path, monkeypatch, poll_recheck_seconds=600
    ) as running:
        yield running


@ON_POSTGRESQL
def test_a_scan_created_through_one_console_wakes_a_poll_held_by_another(
    console: ConsoleUnderTest, second_console: ConsoleUnderTest
) -> None:
    explorer = enroll(console)
    elsewhere = ExplorerUnderTest(
        second_console.client, explorer.id, explorer.name, explorer.secret
    )
    answered = parked_poll(second_console, elsewhere)

    scan = create_scan(console, explorer_id=explorer.id)

    task = answered()
    assert task is not None, "the other console's poll was not woken"
    assert task["id"] == scan["id"]


@ON_POSTGRESQL
def test_a_template_created_through_one_console_wakes_the_scheduler_of_another(
    console: ConsoleUnderTest,
    other_database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    due = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
    clock = FakeClock(due - timedelta(minutes=10))
    watcher = TickWatcher()
    # Without a wake-up, that scheduler would not look again for a minute.
    with console_with_scheduler(
        other_database, tmp_path, monkeypatch, clock, watcher, longest_sleep=60.0
    ):
        ticks = len(watcher.reports)
        created = console.admin.post("/api/v1/tasks", json=NIGHTLY)
        assert created.status_code == 201, created.text

        watcher.wait_for(ticks + 1)
        assert watcher.reports[-1].next_due == due


@ON_POSTGRESQL
def test_another_process_hears_a_change_once_it_committed(
    db: Database, other_database: Database
) -> None:
    place = make_place(db)
    with listening(other_database) as (_, heard), listening(db):
        with db.write() as conn:
            task = new_scan(conn, place)
        change = heard.wait_for(lambda change: change.task_id == task.id)

    assert change.kind is ChangeKind.CREATED
    assert (change.organization_id, change.status) == (place.organization_id, TaskStatus.NEW)


@ON_POSTGRESQL
def test_a_process_does_not_hear_its_own_changes_again_from_postgresql(
    db: Database, other_database: Database
) -> None:
    place = make_place(db)
    with listening(db) as (_, heard), listening(other_database):
        with db.write() as conn:
            mine = new_scan(conn, place)
        with other_database.write() as conn:
            theirs = new_scan(conn, place)
        # PostgreSQL delivers notifications in commit order: ours would come before theirs.
        heard.wait_for(lambda change: change.task_id == theirs.id)

    assert [change.task_id for change in heard.changes] == [mine.id, theirs.id]


@ON_POSTGRESQL
def test_a_burst_reaches_another_process_coalesced(db: Database, other_database: Database) -> None:
    place = make_place(db)
    with listening(other_database) as (_, heard), listening(db):
        with db.write() as conn:
            for _ in range(100):
                new_scan(conn, place)
        change = heard.wait_for(lambda change: change.kind is ChangeKind.CREATED)

    assert len(heard.batches) == 1
    assert change.task_id is None, "a burst travels without task ids"
    assert (change.organization_id, change.task_type) == (place.organization_id, TaskType.SCAN)


@ON_POSTGRESQL
def test_the_listener_reconnects_when_its_connection_drops(
    db: Database, other_database: Database
) -> None:
    place = make_place(db)
    with listening(other_database) as (bus, heard), listening(db):
        relay = bus.relay
        assert relay is not None
        connected = relay.connections
        with db.write() as conn:
            conn.execute(select(func.pg_terminate_backend(relay.backend_pid)))
        assert relay.wait_connected(connected + 1, WAIT_SECONDS), "it did not reconnect"

        with db.write() as conn:
            task = new_scan(conn, place)
        heard.wait_for(lambda change: change.task_id == task.id)


# Payloads


def changes_of(count: int, **values: Any) -> list[TaskChange]:
    return [
        TaskChange(
            kind=ChangeKind.STATUS,
            organization_id=1 + n % 3,
            task_id=n,
            task_type=TaskType.SCAN.value,
            status=TaskStatus.PROCESSING_QUEUED.value,
            previous_status=TaskStatus.SCANNED.value,
            fields=frozenset({"status", "size_data"}),
            **values,
        )
        for n in range(1, count + 1)
    ]


def test_a_few_changes_travel_with_their_tasks() -> None:
    sent = changes_of(3)

    [payload] = encode_payloads("me", sent)

    assert decode_payload(payload) == ("me", sent)


def test_many_changes_travel_coalesced_within_the_size_postgresql_accepts() -> None:
    sent = changes_of(10_000)

    payloads = encode_payloads("me", sent)

    assert all(len(payload.encode()) < MAX_PAYLOAD_BYTES for payload in payloads)
    received = [change for payload in payloads for change in decode_payload(payload)[1]]
    assert {change.organization_id for change in received} == {1, 2, 3}
    assert all(change.task_id is None for change in received)
    assert all(change.previous_status == TaskStatus.SCANNED for change in received)
    assert len(received) == 3


def test_progress_does_not_travel() -> None:
    progress = TaskChange(
        kind=ChangeKind.EDITED,
        organization_id=1,
        task_id=1,
        task_type=TaskType.SCAN.value,
        status=TaskStatus.ACTIVE.value,
        fields=frozenset({"progress_collect", "stats", "last_report_at"}),
    )

    assert encode_payloads("me", [progress]) == []


def test_a_payload_that_is_not_a_change_is_refused() -> None:
    for garbage in ("", "{}", '{"from": "x", "changes": [[1]]}', "not json"):
        with pytest.raises(ValueError, match="not a change bus payload"):
            decode_payload(garbage)
