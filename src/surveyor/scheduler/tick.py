"""One pass of the scheduler at a given time: cancel launches whose grace period ran out, mark
one-off tasks due, fire due templates, queue the due tasks of kinds nobody collects, and
prepare the templates due next. The service calls `tick` in a loop; tests call it with
explicit times.

Only tasks whose kind waits for a runner (`core.kinds`: an explorer, a connector runner) are
canceled for their grace period; the processing queue never refuses a task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from surveyor.core import kinds
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.recurrence import Recurrence, RecurrenceError, next_occurrence
from surveyor.core.tasks import (
    TERMINAL_STATUSES,
    EventKind,
    IllegalTransition,
    TaskStatus,
    WaitReason,
)
from surveyor.scheduler import firing
from surveyor.scheduler.firing import Firing, Verdict
from surveyor.scheduler.leader import Leadership, leadership_for
from surveyor.scheduler.reports import initialize_reports
from surveyor.service import launch
from surveyor.service.scheduling import COPIED_FROM_TEMPLATE
from surveyor.service.tasks import stored_recurrence
from surveyor.store import explorers as explorer_store
from surveyor.store import queries as query_store
from surveyor.store import schedules
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.scheduler")

#: The actor of every event the scheduler records.
SCHEDULER_ACTOR = "scheduler"
#: The `created` event of a spawned run.
CREATED_MESSAGE = "created by its recurring task"
#: What every new run starts with besides what it copies from its template
#: (`service.scheduling.COPIED_FROM_TEMPLATE`), as `store.tasks.create_task` would set it.
NEW_RUN_VALUES = {"recur": False, "hidden": False, "stats": {}, "wait_reason": None}
#: How often the scheduler looks for organizations due an hourly Query refresh.
QUERY_SWEEP_EVERY = timedelta(minutes=1)
#: The event message of a Query task the hourly refresh requested.
HOURLY_QUERY_REFRESH = "the hourly refresh of the pinned queries"
#: The most templates fired per transaction: a batch's statements then cost little per run.
DEFAULT_BATCH_SIZE = 1000
#: The first batch of a tick is this small, and each next one BATCH_GROWTH times the last, up
#: to the batch size: the first runs of a busy second are stored within tens of milliseconds.
FIRST_BATCH_SIZE = 100
BATCH_GROWTH = 3
#: Transactions firing at once. On PostgreSQL most of a batch's work is the server's: a second
#: connection keeps it busy while this process plans the next batch, and lets a second core
#: share it (rows are locked with SKIP LOCKED: the two never take the same template). SQLite
#: has one writer: one is enough.
FIRING_CONNECTIONS = {"postgresql": 2}
#: How often waiting tasks are checked against their grace period (at least 60 s long).
GRACE_SWEEP_EVERY = timedelta(seconds=5)
#: Templates due this soon have their next occurrence computed while the scheduler is idle,
#: so that firing many at once is only database work.
LOOK_AHEAD = timedelta(minutes=2)
#: The longest a tick spends preparing; the rest waits for the next tick.
LOOK_AHEAD_BUDGET_SECONDS = 0.2
MAX_PREPARED = 200_000
MAX_BATCHES_PER_TICK = 100
_ONE_OFF_BATCH = 1000
_CANCEL_BATCH = 200
_PREPARE_BATCH = 500
_LAST_ID = 2**63 - 1


@dataclass(frozen=True)
class BatchResult:
    """One committed transaction of fired templates."""

    templates: int
    spawned: int
    committed_at: datetime


@dataclass
class TickReport:
    """What one tick did; `next_due` is when there is work next (None: nothing scheduled)."""

    now: datetime
    leader: bool = True
    spawned: int = 0
    skipped: int = 0
    coalesced: int = 0
    adopted: int = 0
    became_due: int = 0
    queued: int = 0
    canceled: int = 0
    #: Organizations whose reports were initialized (docs/reports.md).
    reports_initialized: int = 0
    batches: list[BatchResult] = field(default_factory=list)
    next_due: datetime | None = None
    prepared: bool = True
    #: Query tasks requested for organizations whose hourly refresh was due.
    queries_requested: int = 0

    def add_firing(self, other: TickReport) -> None:
        """Count in what another connection of the same tick fired."""
        self.spawned += other.spawned
        self.skipped += other.skipped
        self.coalesced += other.coalesced
        self.adopted += other.adopted
        self.batches = sorted([*self.batches, *other.batches], key=lambda b: b.committed_at)


class _Budget:
    """Batches a tick may still fire, shared by its connections."""

    def __init__(self, batches: int) -> None:
        self._left = batches
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


@dataclass(frozen=True)
class _Prepared:
    """A template's next occurrence after `recur_next`, computed ahead of its due time."""

    version: int
    recur_next: datetime
    recurrence: Recurrence
    following: datetime | None


@dataclass
class _Plan:
    template: dict[str, Any]
    firing: Firing | None
    error: str | None = None
    run_id: int | None = None
    adopted: bool = False


class Scheduler:
    """Fires the schedules stored in one database; safe to run in several processes."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        leadership: Leadership | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        grace_sweep_every: timedelta = GRACE_SWEEP_EVERY,
        look_ahead: timedelta = LOOK_AHEAD,
        firing_connections: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock or SYSTEM_CLOCK
        self.leadership = leadership or leadership_for(db.engine)
        self.batch_size = batch_size
        self.grace_sweep_every = grace_sweep_every
        self.look_ahead = look_ahead
        self.firing_connections = firing_connections or FIRING_CONNECTIONS.get(db.dialect, 1)
        self._last_sweep: datetime | None = None
        self._last_query_sweep: datetime | None = None
        self._prepared: dict[int, _Prepared] = {}
        self._prepared_through: tuple[datetime, int] | None = None

    def close(self) -> None:
        self.leadership.release()

    def tick(self, now: datetime | None = None) -> TickReport:
        """Do everything that is due at `now` (default: the clock's time)."""
        now = now or self.clock.now()
        report = TickReport(now=now)
        if not self.leadership.is_leader():
            report.leader = False
            self._forget_prepared()
            return report
        # Write transactions are opened only for work there is: on SQLite each one takes the
        # database's single write lock. Cancel first: a run that could not launch in time is
        # finished, so the occurrence after it is not skipped for it.
        if self._sweep_due(now):
            self._cancel_expired_launches(now, report)
            report.reports_initialized = initialize_reports(self.db, now)
            self._last_sweep = now
        with self.db.read() as conn:
            one_offs_due, templates_due = schedules.due_work(conn, now)
        if one_offs_due:
            self._mark_due_one_offs(now, report)
        if templates_due:
            self._fire_due(now, report)
        self._queue_due(now, report)
        self._request_query_refreshes(now, report)
        with self.db.read() as conn:
            report.next_due = schedules.next_due_at(conn, now)
        report.prepared = self._prepare_upcoming(now)
        return report

    def seconds_until_next(self, report: TickReport, *, longest: float) -> float:
        """How long to sleep after `report`: until the next due moment, at most `longest`;
        not at all while templates due soon are still being prepared."""
        if not report.prepared:
            return 0.0
        if report.next_due is None:
            return longest
        wait = (report.next_due - self.clock.now()).total_seconds()
        return max(0.0, min(longest, wait))

    def _sweep_due(self, now: datetime) -> bool:
        last = self._last_sweep
        return last is None or now < last or now - last >= self.grace_sweep_every

    # Firing

    def _fire_due(self, now: datetime, report: TickReport) -> None:
        """Fire every due template, batch after batch, each batch one transaction (at most
        MAX_BATCHES_PER_TICK; the rest next tick), on `firing_connections` at once."""
        budget = _Budget(MAX_BATCHES_PER_TICK)
        if self.firing_connections <= 1:
            self._fire_batches(now, report, budget)
            return
        parts = [TickReport(now=now) for _ in range(self.firing_connections)]
        errors: list[BaseException] = []

        def fire(part: TickReport) -> None:
            try:
                self._fire_batches(now, part, budget)
            except BaseException as exc:  # raised again in the ticking thread
                errors.append(exc)

        helpers = [threading.Thread(target=fire, args=(part,)) for part in parts[1:]]
        for helper in helpers:
            helper.start()
        fire(parts[0])
        for helper in helpers:
            helper.join()
        for part in parts:
            report.add_firing(part)
        if errors:
            raise errors[0]

    def _fire_batches(self, now: datetime, report: TickReport, budget: _Budget) -> None:
        limit = min(FIRST_BATCH_SIZE, self.batch_size)
        while budget.take():
            if self._fire_batch(now, report, limit) < limit:
                return
            limit = min(BATCH_GROWTH * limit, self.batch_size)

    def _fire_batch(self, now: datetime, report: TickReport, limit: int) -> int:
        """Fire up to `limit` due templates in one transaction; how many it held."""
        with self.db.write() as conn:
            templates = schedules.lock_due_templates(conn, now, limit)
            if not templates:
                return 0
            plans = [self._plan(template, now) for template in templates]
            self._spawn_runs(conn, plans, now)
            self._advance(conn, plans, now, self._events(plans, report))
        spawned = sum(1 for plan in plans if plan.run_id is not None and not plan.adopted)
        report.batches.append(BatchResult(len(templates), spawned, self.clock.now()))
        return len(templates)

    def _plan(self, template: dict[str, Any], now: datetime) -> _Plan:
        prepared = self._prepared.pop(template["id"], None)
        known_next: list[datetime] | None = None
        if (
            prepared is not None
            and prepared.version == template["version"]
            and prepared.recur_next == template["recur_next"]
        ):
            recurrence = prepared.recurrence
            known_next = [prepared.following] if prepared.following else []
        else:
            try:
                recurrence = stored_recurrence(
                    template["recur_frequency"], template["recur_rule"], template["timezone"]
                )
            except RecurrenceError as exc:
                return _Plan(template, None, error=f"its schedule cannot be read ({exc.message})")
        last_status = template["last_run_status"]
        previous_active = (
            last_status is not None and TaskStatus(last_status) not in TERMINAL_STATUSES
        )
        decision = firing.decide_firing(
            recurrence,
            recur_next=template["recur_next"],
            now=now,
            grace=timedelta(seconds=template["grace_period"]),
            previous_run_active=previous_active,
            known_next=known_next,
        )
        return _Plan(template, decision)

    def _spawn_runs(self, conn: Connection, plans: list[_Plan], now: datetime) -> None:
        """Spawn the runs of a batch with their events, a few statements per occurrence. A
        template whose occurrence another scheduler fired meanwhile adopts that run."""
        by_occurrence: dict[datetime, list[_Plan]] = defaultdict(list)
        for plan in plans:
            if plan.firing is not None and plan.firing.verdict is Verdict.SPAWN:
                by_occurrence[plan.firing.occurrence].append(plan)
        for occurrence, group in by_occurrence.items():
            runs = task_store.spawn_runs(
                conn,
                [plan.template["id"] for plan in group],
                occurrence,
                copied=COPIED_FROM_TEMPLATE,
                fixed=NEW_RUN_VALUES,
                actor=SCHEDULER_ACTOR,
                created_message=CREATED_MESSAGE,
                spawned_message=firing.spawn_message_around_id(occurrence),
                now=now,
            )
            spawned = {run.template_id: run.run_id for run in runs}
            taken = [plan for plan in group if plan.template["id"] not in spawned]
            found: dict[int, int] = {}
            if taken:
                found = schedules.find_runs(
                    conn, [plan.template["id"] for plan in taken], occurrence
                )
                log.info(
                    "%d templates had their run of %s fired by another scheduler",
                    len(taken),
                    firing.format_moment(occurrence),
                )
            for plan in group:
                template_id = plan.template["id"]
                if template_id in spawned:
                    plan.run_id = spawned[template_id]
                else:
                    # None if not visible yet: the template is fired again next tick.
                    plan.run_id = found.get(template_id)
                    plan.adopted = True

    def _events(
        self, plans: list[_Plan], report: TickReport
    ) -> dict[int, list[task_store.TaskEvent]]:
        """The template events of a batch other than spawns (recorded with the runs), by
        template, and the counts of the report."""
        events: dict[int, list[task_store.TaskEvent]] = {}
        for plan in plans:
            template = plan.template
            decision = plan.firing

            def said(kind: EventKind, message: str, template_id: int = template["id"]) -> None:
                events.setdefault(template_id, []).append(_event(kind, message))

            if decision is None:
                said(EventKind.SKIPPED, f"stopped scheduling: {plan.error}")
                continue
            if decision.verdict is Verdict.SPAWN:
                if plan.run_id is None:
                    continue
                if plan.adopted:
                    report.adopted += 1
                    continue
                report.spawned += 1
                if decision.not_run:
                    report.coalesced += decision.not_run
                    coalesced = firing.coalesce_message(decision, run_id=plan.run_id)
                    said(EventKind.COALESCED, coalesced)
            else:
                report.skipped += decision.not_run
                grace = timedelta(seconds=template["grace_period"])
                message = firing.skip_message(
                    decision, grace=grace, previous_run_id=template["recur_last_task_id"]
                )
                said(EventKind.SKIPPED, message)
            if decision.following is None:
                said(EventKind.ENDED, "the schedule has no further runs")
        return events

    def _advance(
        self,
        conn: Connection,
        plans: list[_Plan],
        now: datetime,
        events: Mapping[int, list[task_store.TaskEvent]],
    ) -> None:
        """Move every fired template to its next occurrence (its run becoming its last run)
        and every skipped one past what it skipped, in one statement, with their `events`;
        templates share a few moves (everything daily at 03:00 runs again tomorrow at 03:00)."""
        moves: dict[schedules.Advance, int] = {}
        rows: list[tuple[int, int, int | None]] = []
        for plan in plans:
            decision = plan.firing
            following = decision.following if decision is not None else None
            fired: datetime | None = None
            waiting: WaitReason | None = None
            if decision is None:
                pass  # its schedule cannot be read: it stops
            elif decision.verdict is Verdict.SPAWN:
                if plan.run_id is None:
                    continue  # taken elsewhere but not visible yet: fire again next tick
                fired = decision.occurrence
                waiting = WaitReason.NOT_DUE
            elif decision.verdict is Verdict.SKIP_PREVIOUS_RUN_ACTIVE:
                waiting = WaitReason.PREVIOUS_RUN_ACTIVE
            else:
                waiting = WaitReason.NOT_DUE
            move = schedules.Advance(
                recur_next=following,
                wait_reason=waiting.value if waiting is not None and following else None,
                fired=fired,
            )
            index = moves.setdefault(move, len(moves))
            rows.append((plan.template["id"], index, plan.run_id if fired else None))
        written = schedules.advance_templates(conn, list(moves), rows, now=now, events=events)
        if written != len(rows):
            raise task_store.StaleTask("a template vanished while it was being fired")

    # Preparing the templates due next

    def _prepare_upcoming(self, now: datetime) -> bool:
        """Compute the next occurrence of templates due within LOOK_AHEAD, for a bounded time;
        True once all of them are prepared. Entries are checked against the template's version
        when used, so an edit or a pause in between only costs the precomputation."""
        if len(self._prepared) > MAX_PREPARED:
            self._prepared = {k: p for k, p in self._prepared.items() if p.recur_next > now}
        cursor = self._prepared_through
        if cursor is None or cursor[0] < now:
            cursor = (now, _LAST_ID)
        until = now + self.look_ahead
        deadline = time.monotonic() + LOOK_AHEAD_BUDGET_SECONDS
        while True:
            with self.db.read() as conn:
                rows = schedules.upcoming_templates(conn, cursor, until, _PREPARE_BATCH)
            for row in rows:
                cursor = (row["recur_next"], row["id"])
                try:
                    recurrence = stored_recurrence(
                        row["recur_frequency"], row["recur_rule"], row["timezone"]
                    )
                except RecurrenceError:
                    continue  # reported when it comes due
                following = next_occurrence(recurrence, row["recur_next"])
                self._prepared[row["id"]] = _Prepared(
                    row["version"], row["recur_next"], recurrence, following
                )
                if time.monotonic() > deadline:
                    self._prepared_through = cursor
                    return False
            self._prepared_through = cursor
            if len(rows) < _PREPARE_BATCH:
                return True

    def _forget_prepared(self) -> None:
        self._prepared.clear()
        self._prepared_through = None

    # One-off tasks and launch grace

    def _mark_due_one_offs(self, now: datetime, report: TickReport) -> None:
        """Tasks whose start time has come stop waiting for it (they stay `new` until launched)."""
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.db.write() as conn:
                rows = schedules.lock_due_one_offs(conn, now, _ONE_OFF_BATCH)
                if not rows:
                    return
                schedules.clear_wait_reasons(
                    conn,
                    [row["id"] for row in rows],
                    now,
                    event=_event(EventKind.DUE, "its start time has come"),
                )
            report.became_due += len(rows)
            if len(rows) < _ONE_OFF_BATCH:
                return

    def _queue_due(self, now: datetime, report: TickReport) -> None:
        """Due tasks of kinds nobody collects go to the processing queue (runs spawned this
        tick too)."""
        types = kinds.queued_when_due()
        if not types:
            return
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.db.read() as conn:
                if not explorer_store.has_due_tasks(conn, types, now=now):
                    return
            with self.db.write() as conn:
                queued = launch.queue_due_tasks(
                    conn, now=now, actor=SCHEDULER_ACTOR, limit=_ONE_OFF_BATCH
                )
            report.queued += queued
            if queued < _ONE_OFF_BATCH:
                return

    def _request_query_refreshes(self, now: datetime, report: TickReport) -> None:
        """Queue a Query task for each organization whose pinned queries were not refreshed
        in the last hour (looked for at most once a minute)."""
        last = self._last_query_sweep
        if last is not None and last <= now < last + QUERY_SWEEP_EVERY:
            return
        self._last_query_sweep = now
        with self.db.read() as conn:
            due = query_store.organizations_due(conn, now=now)
        if not due:
            return
        with self.db.write() as conn:
            for organization_id in due:
                queued = query_store.request_query_refresh(
                    conn, organization_id, now=now, reason=HOURLY_QUERY_REFRESH
                )
                report.queries_requested += queued is not None

    def _cancel_expired_launches(self, now: datetime, report: TickReport) -> None:
        """Cancel tasks that could not launch within their grace period, saying why."""
        runner_types = kinds.launched_types()
        if not runner_types:
            return
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.db.read() as conn:
                if not schedules.expired_launches(conn, now, runner_types, 1):
                    return
            with self.db.write() as conn:
                rows = schedules.expired_launches(conn, now, runner_types, _CANCEL_BATCH)
                for row in rows:
                    expired = firing.launch_expired(row["start_time"], row["grace_period"], now)
                    if expired and self._cancel(conn, row, now):
                        report.canceled += 1
            if len(rows) < _CANCEL_BATCH:
                return

    def _cancel(self, conn: Connection, row: Mapping[str, Any], now: datetime) -> bool:
        error = firing.launch_expired_error(row["grace_period"], row["wait_reason"])
        try:
            with conn.begin_nested():
                task_store.transition(
                    conn,
                    row["organization_id"],
                    row["id"],
                    TaskStatus.CANCELED,
                    actor=SCHEDULER_ACTOR,
                    message=error,
                    changes={"error": error},
                    expected=[TaskStatus.NEW],
                    now=now,
                )
        except (IllegalTransition, task_store.TaskNotFound, task_store.StaleTask):
            return False  # it launched (or was stopped) meanwhile
        return True


def _event(kind: EventKind, message: str) -> task_store.TaskEvent:
    return task_store.TaskEvent(kind, SCHEDULER_ACTOR, message)
