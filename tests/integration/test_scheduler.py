"""The scheduler on a real database (SQLite and PostgreSQL), driven tick by tick by a test clock."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from surveyor.core.clock import FakeClock
from surveyor.core.task import Task
from surveyor.core.tasks import Tab, TaskStatus, TaskType, WaitReason
from surveyor.scheduler.tick import Scheduler, TickReport
from surveyor.service import scheduling
from surveyor.service import tasks as task_service
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.change_bus import ChangeBus
from surveyor.store.changes import TaskChange
from surveyor.store.engine import Database
from surveyor.store.records import create_record
from surveyor.store.schema import sites, task_events, tasks

S = TaskStatus
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: The first occurrence of the default schedule, daily at 03:00 UTC.
FIRST = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
DAILY_AT_3 = {"frequency": "daily", "time": "03:00", "timezone": "UTC"}


@dataclass
class Schedules:
    """Templates and tasks created through the service layer, a test clock, a scheduler."""

    db: Database
    principal: accounts.Principal
    clock: FakeClock
    scheduler: Scheduler

    def recurring(
        self,
        name: str = "nightly sweep",
        *,
        recur: dict[str, Any] | None = None,
        grace: int = 3600,
        targets: str = "127.0.0.1",
    ) -> Task:
        body = {
            "name": name,
            "params": {"targets": targets},
            "recur": recur or DAILY_AT_3,
            "grace_period": grace,
        }
        with self.db.write() as conn:
            return task_service.create_task(conn, self.principal, body, now=self.clock.now())

    def one_off(
        self,
        name: str = "one-off",
        *,
        start_time: datetime | None = None,
        grace: int = 3600,
        task_type: TaskType = TaskType.SCAN,
    ) -> Task:
        with self.db.write() as conn:
            if task_type is not TaskType.SCAN:
                return task_store.create_task(
                    conn,
                    {
                        "organization_id": self.principal.organization_id,
                        "name": name,
                        "type": task_type.value,
                        "start_time": start_time or self.clock.now(),
                        "grace_period": grace,
                    },
                    actor="tester",
                    now=self.clock.now(),
                )
            body: dict[str, Any] = {
                "name": name,
                "params": {"targets": "127.0.0.1"},
                "grace_period": grace,
            }
            if start_time is not None:
                body["start_time"] = start_time
            return task_service.create_task(conn, self.principal, body, now=self.clock.now())

    def tick(self, at: datetime) -> TickReport:
        self.clock.set(at)
        return self.scheduler.tick(at)

    def task(self, task_id: int) -> Task:
        with self.db.read() as conn:
            found = task_store.get_task(
                conn, self.principal.organization_id, task_id, include_removed=True
            )
        assert found is not None
        return found

    def runs(self, template: Task) -> list[Task]:
        """The template's runs, oldest first."""
        with self.db.read() as conn:
            return list(reversed(task_store.list_runs(conn, template, limit=1000)))

    def events(self, task_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            query = select(task_events).where(task_events.c.task_id == task_id)
            if kind is not None:
                query = query.where(task_events.c.kind == kind)
            return [dict(row) for row in conn.execute(query.order_by(task_events.c.id)).mappings()]

    def messages(self, task_id: int, kind: str) -> list[str]:
        return [event["message"] for event in self.events(task_id, kind)]

    def move(self, task_id: int, *steps: TaskStatus) -> Task | None:
        """Walk a task through transitions, as an explorer or worker would."""
        task = None
        for step in steps:
            with self.db.write() as conn:
                task = task_store.transition(
                    conn, self.principal.organization_id, task_id, step, actor="explorer"
                )
        return task

    def finish(self, task_id: int) -> None:
        self.move(task_id, S.ACTIVE, S.STOPPING, S.STOPPED)

    def set_wait_reason(self, task_id: int, reason: WaitReason) -> None:
        with self.db.write() as conn:
            task_store.edit_task(
                conn,
                self.principal.organization_id,
                task_id,
                {"wait_reason": reason.value},
                actor="launcher",
                message=reason.value,
            )


@pytest.fixture
def schedules(db: Database) -> Iterator[Schedules]:
    with db.write() as conn:
        org = accounts.create_organization(conn, "Acme")
        create_record(
            conn,
            sites,
            org["id"],
            {"name": "HQ", "scope": "127.0.0.1", "allowed_scope": "127.0.0.0/24"},
        )
        user = accounts.create_user(conn, "operator@example.test", password=None)
        accounts.set_membership(conn, org["id"], user["id"], accounts.Role.OPERATOR)
    principal = accounts.Principal(
        user["id"], user["email"], org["id"], accounts.Role.OPERATOR, False
    )
    clock = FakeClock(CREATED)
    scheduler = Scheduler(db, clock=clock, grace_sweep_every=timedelta(0))
    try:
        yield Schedules(db, principal, clock, scheduler)
    finally:
        scheduler.close()


# Recurring templates


def test_a_template_spawns_a_run_at_its_occurrence_and_not_before(schedules: Schedules) -> None:
    template = schedules.recurring(targets="127.0.0.1, 127.0.0.2")
    assert template.recur_next == FIRST

    assert schedules.tick(FIRST - SECOND).spawned == 0
    report = schedules.tick(FIRST)

    assert report.spawned == 1
    [run] = schedules.runs(template)
    assert run.status == S.NEW
    assert run.recur is False
    assert run.name == "nightly sweep"
    assert run.params == template.params
    assert run.targets == template.targets == "127.0.0.1,127.0.0.2"
    assert (run.start_time, run.occurrence_at) == (FIRST, FIRST)
    assert run.tab == Tab.SCHEDULED
    assert schedules.messages(run.id, "created") == ["created by its recurring task"]
    after = schedules.task(template.id)
    assert after.recur_last == FIRST
    assert after.recur_last_task_id == run.id
    assert after.recur_next == FIRST + DAY
    assert after.tab_sort == FIRST + DAY
    assert schedules.messages(template.id, "spawned") == [
        f"run {run.id} spawned for 2026-03-02 03:00 UTC"
    ]


def test_ticking_again_at_the_same_moment_spawns_nothing_more(schedules: Schedules) -> None:
    template = schedules.recurring()

    schedules.tick(FIRST)
    again = schedules.tick(FIRST + SECOND)

    assert again.spawned == 0
    assert len(schedules.runs(template)) == 1


def test_each_occurrence_spawns_its_own_run_once_the_previous_one_finished(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()

    for day in range(3):
        schedules.tick(FIRST + day * DAY)
        schedules.finish(schedules.task(template.id).recur_last_task_id)

    runs = schedules.runs(template)
    assert [run.occurrence_at for run in runs] == [FIRST, FIRST + DAY, FIRST + 2 * DAY]
    assert schedules.task(template.id).recur_next == FIRST + 3 * DAY


def test_an_occurrence_whose_previous_run_has_not_finished_is_skipped_and_recorded(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()
    schedules.tick(FIRST)
    [first_run] = schedules.runs(template)
    schedules.move(first_run.id, S.ACTIVE)

    report = schedules.tick(FIRST + DAY)

    assert (report.spawned, report.skipped) == (0, 1)
    assert len(schedules.runs(template)) == 1
    assert schedules.messages(template.id, "skipped") == [
        f"skipped the run of 2026-03-03 03:00 UTC: the previous run (task {first_run.id}) "
        "has not finished"
    ]
    waiting = schedules.task(template.id)
    assert waiting.wait_reason == WaitReason.PREVIOUS_RUN_ACTIVE
    assert waiting.recur_next == FIRST + 2 * DAY
    assert waiting.recur_last_task_id == first_run.id

    schedules.move(first_run.id, S.SCANNED, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED)
    assert schedules.tick(FIRST + 2 * DAY).spawned == 1
    assert schedules.task(template.id).wait_reason == WaitReason.NOT_DUE


def test_occurrences_missed_while_no_scheduler_ran_are_coalesced_into_one_run_within_grace(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()

    report = schedules.tick(FIRST + 2 * DAY + 10 * MINUTE)

    assert (report.spawned, report.coalesced) == (1, 2)
    [run] = schedules.runs(template)
    assert run.occurrence_at == FIRST + 2 * DAY
    assert schedules.messages(template.id, "coalesced") == [
        "2 runs missed (2026-03-02 03:00 UTC, 2026-03-03 03:00 UTC) were coalesced into "
        f"run {run.id} of 2026-03-04 03:00 UTC"
    ]
    assert schedules.task(template.id).recur_next == FIRST + 3 * DAY


def test_occurrences_missed_beyond_the_grace_period_are_skipped_saying_how_many_and_which(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()

    report = schedules.tick(FIRST + 2 * DAY + 2 * HOUR)

    assert (report.spawned, report.skipped) == (0, 3)
    assert schedules.runs(template) == []
    assert schedules.messages(template.id, "skipped") == [
        "skipped 3 runs (2026-03-02 03:00 UTC, 2026-03-03 03:00 UTC, 2026-03-04 03:00 UTC): "
        "the latest was 2 hours late, more than its 1 hour grace period"
    ]
    after = schedules.task(template.id)
    assert after.recur_next == FIRST + 3 * DAY
    assert after.recur_last is None


def test_the_grace_period_of_each_template_decides_whether_a_late_occurrence_runs(
    schedules: Schedules,
) -> None:
    patient = schedules.recurring("patient", grace=3 * 3600)
    strict = schedules.recurring("strict", grace=60)

    schedules.tick(FIRST + 2 * HOUR)

    assert len(schedules.runs(patient)) == 1
    assert schedules.runs(strict) == []
    assert schedules.messages(strict.id, "skipped") == [
        "skipped the run of 2026-03-02 03:00 UTC: it was 2 hours late, "
        "more than its 1 minute grace period"
    ]


def test_editing_a_template_changes_its_future_runs_only(schedules: Schedules) -> None:
    template = schedules.recurring(targets="127.0.0.1")
    schedules.tick(FIRST)
    [first_run] = schedules.runs(template)
    schedules.finish(first_run.id)

    with schedules.db.write() as conn:
        task_service.update_task(
            conn,
            schedules.principal,
            template.id,
            {"params": {"targets": "127.0.0.9"}},
            now=schedules.clock.now(),
        )
    schedules.tick(FIRST + DAY)

    first, second = schedules.runs(template)
    assert first.params["targets"] == "127.0.0.1"
    assert second.params["targets"] == "127.0.0.9"


def test_a_paused_template_never_fires_and_resumes_from_now_without_catching_up(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()
    with schedules.db.write() as conn:
        task_service.pause_task(conn, schedules.principal, template.id, now=schedules.clock.now())

    assert schedules.tick(FIRST + HOUR).spawned == 0
    with schedules.db.write() as conn:
        resumed = task_service.resume_task(
            conn, schedules.principal, template.id, now=FIRST + DAY + 5 * HOUR
        )
    assert resumed.recur_next == FIRST + 2 * DAY

    quiet = schedules.tick(FIRST + DAY + 6 * HOUR)
    assert (quiet.spawned, quiet.skipped, quiet.coalesced) == (0, 0, 0)
    assert schedules.tick(FIRST + 2 * DAY).spawned == 1
    assert [run.occurrence_at for run in schedules.runs(template)] == [FIRST + 2 * DAY]


def test_a_removed_template_never_fires_and_its_past_runs_stay(schedules: Schedules) -> None:
    template = schedules.recurring()
    schedules.tick(FIRST)
    [run] = schedules.runs(template)
    schedules.finish(run.id)

    with schedules.db.write() as conn:
        task_service.remove_task(conn, schedules.principal, template.id, now=schedules.clock.now())

    assert schedules.tick(FIRST + DAY).spawned == 0
    assert [past.id for past in schedules.runs(template)] == [run.id]
    assert schedules.task(run.id).status == S.STOPPED


def test_run_now_counts_as_the_previous_run_of_the_next_occurrence(schedules: Schedules) -> None:
    template = schedules.recurring()
    with schedules.db.write() as conn:
        run = task_service.run_now(conn, schedules.principal, template.id, now=FIRST - 10 * MINUTE)
    schedules.move(run.id, S.ACTIVE)

    report = schedules.tick(FIRST)

    assert (report.spawned, report.skipped) == (0, 1)
    assert (
        f"the previous run (task {run.id}) has not finished"
        in (schedules.messages(template.id, "skipped")[0])
    )


def test_a_schedule_that_ends_fires_its_last_run_and_says_so(schedules: Schedules) -> None:
    template = schedules.recurring(recur={"frequency": "once", "start": FIRST})

    schedules.tick(FIRST)
    schedules.tick(FIRST + 30 * DAY)

    assert len(schedules.runs(template)) == 1
    after = schedules.task(template.id)
    assert after.recur_next is None
    assert after.status == S.NEW
    assert schedules.messages(template.id, "ended") == ["the schedule has no further runs"]


def test_a_template_whose_schedule_cannot_be_read_stops_with_an_event(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()
    with schedules.db.write() as conn:
        conn.execute(update(tasks).where(tasks.c.id == template.id).values(recur_rule="not a rule"))

    report = schedules.tick(FIRST)

    assert report.spawned == 0
    assert schedules.task(template.id).recur_next is None
    [message] = schedules.messages(template.id, "skipped")
    assert message.startswith("stopped scheduling: its schedule cannot be read")


def test_a_run_spawned_by_the_scheduler_is_the_run_the_service_would_spawn(
    schedules: Schedules,
) -> None:
    fired = schedules.recurring("same")
    by_hand = schedules.recurring("same")
    schedules.tick(FIRST - 10 * MINUTE)
    with schedules.db.write() as conn:
        expected = task_service.spawn_run(
            conn, schedules.task(by_hand.id), occurrence=FIRST, actor="scheduler", now=FIRST
        )

    schedules.tick(FIRST)

    [run] = schedules.runs(fired)
    different = {"id", "parent_id"}
    assert {k: v for k, v in run.as_row().items() if k not in different} == {
        k: v for k, v in expected.as_row().items() if k not in different
    }


def test_a_template_prepared_ahead_and_then_edited_fires_by_its_new_schedule(
    schedules: Schedules,
) -> None:
    moved = schedules.recurring("moved")
    retargeted = schedules.recurring("retargeted")
    assert schedules.tick(FIRST - MINUTE).prepared  # both next occurrences computed ahead

    with schedules.db.write() as conn:
        task_service.update_task(
            conn,
            schedules.principal,
            moved.id,
            {"recur": {**DAILY_AT_3, "time": "04:00"}},
            now=FIRST - MINUTE,
        )
        task_service.update_task(
            conn,
            schedules.principal,
            retargeted.id,
            {"params": {"targets": "127.0.0.5"}},
            now=schedules.clock.now(),
        )
    schedules.tick(FIRST)

    assert schedules.runs(moved) == []
    assert schedules.task(moved.id).recur_next == FIRST + HOUR
    [run] = schedules.runs(retargeted)
    assert run.params["targets"] == "127.0.0.5"
    assert schedules.task(retargeted.id).recur_next == FIRST + DAY


def test_many_due_templates_fire_in_batches_of_one_transaction_each(
    schedules: Schedules,
) -> None:
    templates = [schedules.recurring(f"sweep {n}") for n in range(10)]
    schedules.scheduler.batch_size = 4

    report = schedules.tick(FIRST)

    assert report.spawned == 10
    # On PostgreSQL two connections fire at once, so the short batch may not come last.
    assert sorted(batch.spawned for batch in report.batches) == [2, 4, 4]
    assert all(len(schedules.runs(template)) == 1 for template in templates)


def test_two_connections_firing_at_once_spawn_every_run_once(schedules: Schedules) -> None:
    templates = [schedules.recurring(f"sweep {n}") for n in range(30)]
    schedules.scheduler.batch_size = 4
    schedules.scheduler.firing_connections = 2

    report = schedules.tick(FIRST)

    assert report.spawned == sum(batch.spawned for batch in report.batches) == 30
    assert all(batch.templates <= 4 for batch in report.batches)
    assert [len(schedules.runs(template)) for template in templates] == [1] * 30
    assert {schedules.task(t.id).recur_next for t in templates} == {FIRST + DAY}


def test_an_occurrence_another_scheduler_fired_is_adopted_not_duplicated(
    schedules: Schedules,
) -> None:
    taken = schedules.recurring("taken")
    free = schedules.recurring("free")
    # Another scheduler inserted the run of `taken` but has not advanced the template yet.
    with schedules.db.write() as conn:
        elsewhere = task_store.create_task(
            conn, scheduling.run_values(taken, FIRST), actor="other", now=FIRST
        )

    report = schedules.tick(FIRST)

    assert (report.spawned, report.adopted) == (1, 1)
    assert [run.id for run in schedules.runs(taken)] == [elsewhere.id]
    assert len(schedules.runs(free)) == 1
    after = schedules.task(taken.id)
    assert after.recur_next == FIRST + DAY
    assert after.recur_last_task_id == elsewhere.id


def test_one_batch_spawns_skips_and_adopts_each_template_by_its_own_schedule(
    schedules: Schedules,
) -> None:
    daily = schedules.recurring("daily")
    weekly = schedules.recurring(
        "weekly",
        recur={"frequency": "weekly", "weekdays": ["mo"], "time": "03:00", "timezone": "UTC"},
    )
    busy = schedules.recurring("busy")
    taken = schedules.recurring("taken")
    schedules.tick(FIRST)
    busy_run = schedules.task(busy.id).recur_last_task_id
    for template in (daily, busy, taken):
        if template is not busy:
            schedules.finish(schedules.task(template.id).recur_last_task_id)
    schedules.move(busy_run, S.ACTIVE)
    with schedules.db.write() as conn:
        elsewhere = task_store.create_task(
            conn, scheduling.run_values(taken, FIRST + DAY), actor="other", now=FIRST + DAY
        )

    report = schedules.tick(FIRST + DAY)

    assert (report.spawned, report.skipped, report.adopted) == (1, 1, 1)
    assert sum(batch.templates for batch in report.batches) == 3
    [_, daily_run] = schedules.runs(daily)
    assert daily_run.occurrence_at == FIRST + DAY
    assert schedules.messages(daily_run.id, "created") == ["created by its recurring task"]
    assert schedules.messages(daily.id, "spawned")[-1] == (
        f"run {daily_run.id} spawned for 2026-03-03 03:00 UTC"
    )
    moved = {t.name: schedules.task(t.id) for t in (daily, weekly, busy, taken)}
    assert moved["daily"].recur_next == FIRST + 2 * DAY
    assert moved["daily"].recur_last_task_id == daily_run.id
    assert moved["weekly"].recur_next == FIRST + 7 * DAY  # not due: untouched
    assert moved["busy"].recur_next == FIRST + 2 * DAY
    assert moved["busy"].wait_reason == WaitReason.PREVIOUS_RUN_ACTIVE
    assert moved["busy"].recur_last_task_id == busy_run
    assert moved["taken"].recur_last_task_id == elsewhere.id
    assert moved["taken"].recur_last == FIRST + DAY
    # The run fired elsewhere got no second `created` event and its template no `spawned` one.
    assert schedules.messages(elsewhere.id, "created") == ["created"]
    assert len(schedules.messages(taken.id, "spawned")) == 1


def test_the_next_due_moment_is_the_earliest_occurrence_or_start_time(
    schedules: Schedules,
) -> None:
    schedules.recurring()
    assert schedules.tick(CREATED).next_due == FIRST

    schedules.one_off(start_time=FIRST - HOUR)
    assert schedules.tick(CREATED + SECOND).next_due == FIRST - HOUR


def test_nothing_scheduled_means_no_next_due_moment(schedules: Schedules) -> None:
    assert schedules.tick(CREATED).next_due is None


class NeverLeads:
    def is_leader(self) -> bool:
        return False

    def release(self) -> None:
        return None


def test_a_scheduler_that_does_not_lead_fires_nothing(schedules: Schedules) -> None:
    template = schedules.recurring()
    follower = Scheduler(schedules.db, clock=FakeClock(FIRST), leadership=NeverLeads())

    report = follower.tick(FIRST)

    assert not report.leader
    assert (report.spawned, report.skipped) == (0, 0)
    assert schedules.runs(template) == []
    assert schedules.task(template.id).recur_next == FIRST


# One-off tasks and the launch grace period


def test_a_one_off_task_becomes_due_at_its_start_time_and_stays_new(
    schedules: Schedules,
) -> None:
    task = schedules.one_off(start_time=FIRST)
    assert task.wait_reason == WaitReason.NOT_DUE

    schedules.tick(FIRST - SECOND)
    assert schedules.task(task.id).wait_reason == WaitReason.NOT_DUE

    assert schedules.tick(FIRST).became_due == 1
    due = schedules.task(task.id)
    assert (due.status, due.wait_reason) == (S.NEW, None)
    assert schedules.messages(task.id, "due") == ["its start time has come"]


def test_a_due_run_that_cannot_launch_within_its_grace_period_is_canceled_saying_why(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()
    schedules.tick(FIRST)
    [run] = schedules.runs(template)
    schedules.set_wait_reason(run.id, WaitReason.EXPLORER_OFFLINE)

    assert schedules.tick(FIRST + HOUR).canceled == 0
    assert schedules.tick(FIRST + HOUR + SECOND).canceled == 1

    canceled = schedules.task(run.id)
    reason = "could not launch within its 1 hour grace period: its explorer was offline"
    assert (canceled.status, canceled.error) == (S.CANCELED, reason)
    [transition] = [
        e for e in schedules.events(run.id, "transition") if e["to_status"] == S.CANCELED
    ]
    assert (transition["from_status"], transition["actor"]) == (S.NEW, "scheduler")
    assert transition["message"] == reason


def test_a_run_canceled_for_its_grace_period_does_not_hold_up_the_next_occurrence(
    schedules: Schedules,
) -> None:
    template = schedules.recurring()
    schedules.tick(FIRST)

    report = schedules.tick(FIRST + DAY)

    assert (report.canceled, report.spawned, report.skipped) == (1, 1, 0)
    first, second = schedules.runs(template)
    assert first.error == "could not launch within its 1 hour grace period: " + (
        "no explorer picked it up"
    )
    assert second.status == S.NEW


def test_each_waiting_task_keeps_its_own_grace_period(schedules: Schedules) -> None:
    short = schedules.one_off("short", start_time=FIRST, grace=600)
    long = schedules.one_off("long", start_time=FIRST, grace=7200)

    schedules.tick(FIRST + HOUR)

    assert schedules.task(short.id).status == S.CANCELED
    assert schedules.task(short.id).error.startswith(
        "could not launch within its 10 minutes grace period"
    )
    assert schedules.task(long.id).status == S.NEW


def test_a_launched_task_is_never_canceled_for_its_grace_period(schedules: Schedules) -> None:
    task = schedules.one_off(start_time=FIRST)
    schedules.move(task.id, S.ACTIVE)

    assert schedules.tick(FIRST + DAY).canceled == 0
    assert schedules.task(task.id).status == S.ACTIVE


def test_tasks_that_wait_for_the_processing_queue_are_not_canceled_for_grace(
    schedules: Schedules,
) -> None:
    report = schedules.one_off("weekly report", start_time=FIRST, task_type=TaskType.REPORT)

    schedules.tick(FIRST + DAY)

    # A report is processed (nothing collects it): once due it is queued, never canceled.
    assert schedules.task(report.id).status == S.PROCESSING_QUEUED


def test_the_grace_sweep_runs_at_most_every_few_seconds(schedules: Schedules) -> None:
    schedules.scheduler.grace_sweep_every = timedelta(seconds=5)
    task = schedules.one_off(start_time=FIRST)
    schedules.tick(FIRST + HOUR)

    assert schedules.tick(FIRST + HOUR + 2 * SECOND).canceled == 0
    assert schedules.tick(FIRST + HOUR + 6 * SECOND).canceled == 1
    assert schedules.task(task.id).status == S.CANCELED


# Waking the scheduler


@contextmanager
def schedule_wakeups(db: Database) -> Iterator[list[Sequence[TaskChange]]]:
    """The batches of changes that would wake a scheduler, as the change bus tells them."""
    bus = ChangeBus()
    bus.open(db)
    woken: list[Sequence[TaskChange]] = []
    bus.subscribe(woken.append, where=scheduling.schedule_changed)
    try:
        yield woken
    finally:
        bus.close()


def test_creating_editing_or_resuming_a_schedule_wakes_the_scheduler_once_committed(
    schedules: Schedules,
) -> None:
    with schedule_wakeups(schedules.db) as woken:
        with schedules.db.write() as conn:
            template = task_service.create_task(
                conn,
                schedules.principal,
                {"name": "nightly", "params": {}, "recur": DAILY_AT_3},
                now=CREATED,
            )
            assert woken == []  # not before the schedule can be read
        assert len(woken) == 1
        schedules.one_off(start_time=FIRST)
        with schedules.db.write() as conn:
            task_service.pause_task(
                conn, schedules.principal, template.id, now=schedules.clock.now()
            )
        with schedules.db.write() as conn:
            task_service.resume_task(conn, schedules.principal, template.id, now=CREATED)
        with schedules.db.write() as conn:
            task_service.update_task(
                conn, schedules.principal, template.id, {"recur": DAILY_AT_3}, now=CREATED
            )

    assert len(woken) == 4  # created, created for later, resumed, rescheduled; not paused


def test_a_task_that_starts_now_does_not_wake_the_scheduler(schedules: Schedules) -> None:
    with schedule_wakeups(schedules.db) as woken:
        schedules.one_off()

    assert woken == []


def test_skip_and_coalesce_events_can_be_told_apart_by_kind(schedules: Schedules) -> None:
    template = schedules.recurring()
    schedules.tick(FIRST + DAY + 5 * MINUTE)

    kinds = [event["kind"] for event in schedules.events(template.id)]

    assert kinds == ["created", "spawned", "coalesced"]
    assert re.fullmatch(
        r"1 runs? missed \(.*\) were coalesced into run \d+ of .*",
        (schedules.messages(template.id, "coalesced")[0]),
    )
