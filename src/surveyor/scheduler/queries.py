"""The scheduler's SQL, one named statement per function, set-based.

Firing ten thousand templates in a second rules out statements per row: runs are copied from
their templates inside the database, one INSERT ... SELECT per occurrence, their events the
same way, and templates moving to the same next occurrence are updated together. Due rows
are locked for the transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
SQLite), which is what lets these updates skip `store.tasks.write_task`'s version check; they
still bump the version. Status changes go through `store.tasks.transition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Float,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from surveyor.core.tasks import TaskStatus, WaitReason
from surveyor.service.scheduling import COPIED_FROM_TEMPLATE
from surveyor.store.schema import UTCDateTime, task_events, tasks

#: The shortest grace period a task can have (the API refuses less); bounds the grace scan.
MIN_GRACE = timedelta(seconds=60)


#: What deciding about a template reads. What its run copies is copied by the database.
FIRING_COLUMNS = tuple(
    tasks.c[name]
    for name in (
        "id",
        "organization_id",
        "recur_frequency",
        "recur_rule",
        "timezone",
        "recur_next",
        "recur_last_task_id",
        "grace_period",
        "version",
    )
)
_runs = tasks.alias("run")


def _ids(name: str, ids: Sequence[int]) -> BindParameter[Any]:
    """A list of ids for `IN`, bound as one expanding parameter (cheap for thousands)."""
    return bindparam(name, list(ids), expanding=True)


def _active_templates() -> ColumnElement[bool]:
    return (
        tasks.c.recur.is_(True)
        & (tasks.c.status == TaskStatus.NEW.value)
        & tasks.c.removed_at.is_(None)
    )


def _waiting_tasks() -> ColumnElement[bool]:
    """Tasks (not templates) in `new`: not launched yet."""
    return (
        (tasks.c.status == TaskStatus.NEW.value)
        & tasks.c.recur.is_(False)
        & tasks.c.removed_at.is_(None)
    )


def due_work(conn: Connection, now: datetime) -> tuple[bool, bool]:
    """Whether any one-off task has reached its start time, and whether any template is due."""
    one_off = select(tasks.c.id).where(_due_one_offs(now)).limit(1)
    template = select(tasks.c.id).where(_active_templates(), tasks.c.recur_next <= now).limit(1)
    return (
        conn.execute(one_off).first() is not None,
        conn.execute(template).first() is not None,
    )


def lock_due_templates(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Active templates whose next occurrence is at or before `now`, earliest first, locked
    for this transaction; rows another scheduler holds are skipped, not waited for."""
    query = (
        select(*FIRING_COLUMNS)
        .where(_active_templates(), tasks.c.recur_next <= now)
        .order_by(tasks.c.recur_next)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def upcoming_templates(
    conn: Connection, after: tuple[datetime, int], until: datetime, limit: int
) -> list[dict[str, Any]]:
    """Active templates due after the keyset position `after` (recur_next, id) and by `until`,
    in that order: the ones to prepare before they are due."""
    moment, last_id = after
    query = (
        select(*FIRING_COLUMNS)
        .where(
            _active_templates(),
            or_(
                tasks.c.recur_next > moment,
                and_(tasks.c.recur_next == moment, tasks.c.id > last_id),
            ),
            tasks.c.recur_next <= until,
        )
        .order_by(tasks.c.recur_next, tasks.c.id)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def run_statuses(conn: Connection, run_ids: Sequence[int]) -> dict[int, str]:
    """The status of each of these runs (the previous runs of a batch of templates)."""
    if not run_ids:
        return {}
    rows = conn.execute(
        select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(_ids("run_ids", run_ids)))
    )
    return {row.id: row.status for row in rows}


def spawn_runs(
    conn: Connection,
    template_ids: Sequence[int],
    occurrence: datetime,
    fixed: Mapping[str, Any],
) -> dict[int, int]:
    """Insert one run of each template for `occurrence`, copied inside the database (the
    COPIED_FROM_TEMPLATE columns) with the `fixed` values of every new run; run id by template."""
    copied = [tasks.c[column] for column in COPIED_FROM_TEMPLATE]
    given = {
        "parent_id": tasks.c.id,
        "start_time": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        "occurrence_at": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        **{name: literal(value, tasks.c[name].type) for name, value in fixed.items()},
    }
    source = select(*copied, *given.values()).where(
        tasks.c.id.in_(_ids("template_ids", template_ids))
    )
    statement = (
        insert(tasks)
        .from_select([*COPIED_FROM_TEMPLATE, *given], source)
        .returning(tasks.c.parent_id, tasks.c.id)
    )
    return {row.parent_id: row.id for row in conn.execute(statement)}


def _runs_of(template_ids: Sequence[int], occurrence: datetime) -> ColumnElement[bool]:
    parents = _ids("parent_ids", template_ids)
    return tasks.c.parent_id.in_(parents) & (tasks.c.occurrence_at == occurrence)


def record_creations(
    conn: Connection,
    template_ids: Sequence[int],
    occurrence: datetime,
    *,
    actor: str,
    message: str,
    now: datetime,
) -> None:
    """The `created` event of the runs of these templates for `occurrence`, as
    `store.tasks.create_task` records it for every task."""
    source = select(
        tasks.c.id,
        tasks.c.organization_id,
        literal(now, UTCDateTime),
        literal("created"),
        literal(TaskStatus.NEW.value),
        literal(actor),
        literal(message),
    ).where(_runs_of(template_ids, occurrence))
    columns = ["task_id", "organization_id", "at", "kind", "to_status", "actor", "message"]
    conn.execute(insert(task_events).from_select(columns, source))


def record_spawns(
    conn: Connection,
    template_ids: Sequence[int],
    occurrence: datetime,
    *,
    actor: str,
    message_around_id: tuple[str, str],
    now: datetime,
) -> None:
    """The `spawned` event on each of these templates, naming its run for `occurrence`:
    the message is the two parts with the run's id between them."""
    before, after = message_around_id
    message = literal(before) + cast(tasks.c.id, String) + literal(after)
    source = select(
        tasks.c.parent_id,
        tasks.c.organization_id,
        literal(now, UTCDateTime),
        literal("spawned"),
        literal(actor),
        message,
    ).where(_runs_of(template_ids, occurrence))
    columns = ["task_id", "organization_id", "at", "kind", "actor", "message"]
    conn.execute(insert(task_events).from_select(columns, source))


def find_run(conn: Connection, template_id: int, occurrence: datetime) -> int | None:
    """The run a template already has for `occurrence` (spawned by another scheduler)."""
    return conn.execute(select(tasks.c.id).where(_runs_of([template_id], occurrence))).scalar()


def insert_events(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Record task events (task_id, organization_id, at, kind, actor, message)."""
    if events:
        rows = [{"from_status": None, "to_status": None, **event} for event in events]
        conn.execute(insert(task_events), rows)


def advance_templates(
    conn: Connection,
    template_ids: Sequence[int],
    *,
    recur_next: datetime | None,
    tab_sort: datetime | None,
    wait_reason: str | None,
    fired: datetime | None,
    now: datetime,
) -> int:
    """Move these templates, locked by this transaction, to their next occurrence; with
    `fired`, their run of that occurrence becomes their last run. Rows written."""
    values: dict[str, Any] = {
        "recur_next": literal(recur_next, UTCDateTime),
        "tab_sort": literal(tab_sort, UTCDateTime),
        "wait_reason": wait_reason,
        "updated_at": now,
        "version": tasks.c.version + 1,
    }
    if fired is not None:
        values["recur_last"] = fired
        values["recur_last_task_id"] = (
            select(_runs.c.id)
            .where(_runs.c.parent_id == tasks.c.id, _runs.c.occurrence_at == fired)
            .scalar_subquery()
        )
    result = conn.execute(
        update(tasks).where(tasks.c.id.in_(_ids("template_ids", template_ids))).values(**values)
    )
    return int(result.rowcount)


def _due_one_offs(now: datetime) -> ColumnElement[bool]:
    return (
        _waiting_tasks()
        & (tasks.c.start_time <= now)
        & (tasks.c.wait_reason == WaitReason.NOT_DUE.value)
    )


def lock_due_one_offs(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Tasks waiting for a start time that has come, locked for this transaction."""
    query = (
        select(tasks.c.id, tasks.c.organization_id, tasks.c.version)
        .where(_due_one_offs(now))
        .order_by(tasks.c.start_time)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def clear_wait_reasons(conn: Connection, rows: Sequence[Mapping[str, Any]], now: datetime) -> int:
    """Clear the wait reason of these tasks if they are still the version read; rows written."""
    if not rows:
        return 0
    statement = (
        update(tasks)
        .where(tasks.c.id == bindparam("b_id"), tasks.c.version == bindparam("b_version"))
        .values(
            wait_reason=None,
            updated_at=bindparam("b_now", type_=UTCDateTime),
            version=tasks.c.version + 1,
        )
    )
    params = [{"b_id": row["id"], "b_version": row["version"], "b_now": now} for row in rows]
    return int(conn.execute(statement, params).rowcount)


def _launch_deadline_before(conn: Connection, now: datetime) -> ColumnElement[bool]:
    """start_time + grace_period < now, in each backend's own date arithmetic."""
    if conn.dialect.name == "postgresql":
        deadline = tasks.c.start_time + func.make_interval(0, 0, 0, 0, 0, 0, tasks.c.grace_period)
        return deadline < bindparam("deadline_now", now, type_=UTCDateTime)
    # SQLite stores UTC times as ISO text; julianday() turns them into days.
    seconds_per_day = 86400.0
    deadline_day = (
        func.julianday(tasks.c.start_time) + cast(tasks.c.grace_period, Float) / seconds_per_day
    )
    return deadline_day < func.julianday(bindparam("deadline_now", now, type_=UTCDateTime))


def expired_launches(
    conn: Connection, now: datetime, types: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """Tasks of these types still waiting to launch after their start time plus their grace
    period."""
    query = (
        select(
            tasks.c.id,
            tasks.c.organization_id,
            tasks.c.type,
            tasks.c.start_time,
            tasks.c.grace_period,
            tasks.c.wait_reason,
        )
        .where(
            _waiting_tasks(),
            tasks.c.type.in_(types),
            tasks.c.start_time <= now - MIN_GRACE,
            _launch_deadline_before(conn, now),
        )
        .order_by(tasks.c.start_time)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def next_due_at(conn: Connection, now: datetime) -> datetime | None:
    """The earliest future moment the scheduler has work: a template's next occurrence or a
    waiting task's start time."""
    template = conn.execute(
        select(tasks.c.recur_next)
        .where(_active_templates(), tasks.c.recur_next.is_not(None))
        .order_by(tasks.c.recur_next)
        .limit(1)
    ).scalar_one_or_none()
    one_off = conn.execute(
        select(tasks.c.start_time)
        .where(
            _waiting_tasks(),
            tasks.c.start_time > now,
            tasks.c.wait_reason == WaitReason.NOT_DUE.value,
        )
        .order_by(tasks.c.start_time)
        .limit(1)
    ).scalar_one_or_none()
    moments = [moment for moment in (template, one_off) if moment is not None]
    return min(moments) if moments else None
