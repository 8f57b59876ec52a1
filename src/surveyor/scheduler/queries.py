"""The scheduler's SQL, one named statement per function, set-based.

Firing ten thousand templates in a second rules out statements per row: runs are copied from
their templates inside the database (`store.tasks.spawn_runs`), and a batch of templates moves
to its next occurrences in one UPDATE. Lists of ids are bound as one value (an array, a JSON
list), so statement texts stay fixed and the database plans them once. Due rows are locked for
the transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite), which is
what lets these updates skip `store.tasks.write_task`'s version check; they still bump the
version. Status changes go through `store.tasks.transition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Float,
    Integer,
    Result,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from surveyor.core.tasks import TaskStatus, WaitReason
from surveyor.store import tasks as task_store
from surveyor.store.schema import UTCDateTime, task_events, tasks

#: The shortest grace period a task can have (the API refuses less); bounds the grace scan.
MIN_GRACE = timedelta(seconds=60)


#: What deciding about a template reads. What its run copies is copied by the database.
_last_runs = tasks.alias("last_run")
_runs = tasks.alias("run")
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


def _dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, the keys looked up once (not once per row as `dict(row)` of a mapping)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


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
    for this transaction (rows another scheduler holds are skipped, not waited for), each
    with the status of its last run (`last_run_status`, None without one)."""
    query = (
        select(*FIRING_COLUMNS, _last_runs.c.status.label("last_run_status"))
        .outerjoin(_last_runs, _last_runs.c.id == tasks.c.recur_last_task_id)
        .where(_active_templates(), tasks.c.recur_next <= now)
        .order_by(tasks.c.recur_next)
        .limit(limit)
        .with_for_update(skip_locked=True, of=tasks)
    )
    return _dicts(conn.execute(query))


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
    return _dicts(conn.execute(query))


def find_runs(
    conn: Connection, template_ids: Sequence[int], occurrence: datetime
) -> dict[int, int]:
    """The runs these templates already have for `occurrence` (spawned by another scheduler),
    by template."""
    query = select(tasks.c.parent_id, tasks.c.id).where(
        task_store.ids_filter(conn, tasks.c.parent_id, "found_parent_ids", template_ids),
        tasks.c.occurrence_at == bindparam("found_occurrence", occurrence, type_=UTCDateTime),
    )
    return {row.parent_id: row.id for row in conn.execute(query)}


def insert_events(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Record task events (task_id, organization_id, at, kind, actor, message)."""
    if events:
        rows = [{"from_status": None, "to_status": None, **event} for event in events]
        conn.execute(insert(task_events), rows)


#: What `advance_templates` writes.
_ADVANCED_FIELDS = ("recur_next", "tab_sort", "wait_reason", "recur_last", "recur_last_task_id")


@dataclass(frozen=True)
class Advance:
    """Where a group of templates moves: their next occurrence, how they sort and wait, and
    for those that fired, the occurrence that becomes their last run."""

    recur_next: datetime | None
    tab_sort: datetime | None
    wait_reason: str | None
    fired: datetime | None


def advance_templates(
    conn: Connection,
    moves: Sequence[Advance],
    rows: Sequence[tuple[int, int, int | None]],
    *,
    now: datetime,
) -> int:
    """Move templates locked by this transaction: `rows` are (template id, index of its move
    in `moves`, its new run or None), the run becoming its last run when it fired. One
    statement for the batch on PostgreSQL, one per move on SQLite; rows written."""
    if not rows:
        return 0
    values: dict[str, Any] = {
        "updated_at": bindparam("advance_now", now, type_=UTCDateTime),
        "version": tasks.c.version + 1,
    }
    if conn.dialect.name != "postgresql":
        return _advance_by_move(conn, moves, rows, values)
    # PostgreSQL: the templates (id, move, run) joined to their moves, all bound as arrays.
    per_template = (
        func.unnest(
            _array("advance_ids", [row[0] for row in rows], BigInteger()),
            _array("advance_moves", [row[1] + 1 for row in rows], Integer()),
            _array("advance_runs", [row[2] for row in rows], BigInteger()),
        )
        .table_valued("id", "move", "run_id")
        .render_derived()
    )
    per_move = (
        func.unnest(
            _array("advance_next", [move.recur_next for move in moves], UTCDateTime()),
            _array("advance_sort", [move.tab_sort for move in moves], UTCDateTime()),
            _array("advance_wait", [move.wait_reason for move in moves], tasks.c.wait_reason.type),
            _array("advance_fired", [move.fired for move in moves], UTCDateTime()),
        )
        .table_valued("recur_next", "tab_sort", "wait_reason", "fired", with_ordinality="move")
        .render_derived()
    )
    statement = (
        update(tasks)
        .where(
            task_store.ids_filter(conn, tasks.c.id, "advance_chosen", [row[0] for row in rows]),
            tasks.c.id == per_template.c.id,
            per_move.c.move == per_template.c.move,
        )
        .values(
            **values,
            recur_next=per_move.c.recur_next,
            tab_sort=per_move.c.tab_sort,
            wait_reason=per_move.c.wait_reason,
            recur_last=func.coalesce(per_move.c.fired, tasks.c.recur_last),
            recur_last_task_id=func.coalesce(per_template.c.run_id, tasks.c.recur_last_task_id),
        )
    )
    written = int(conn.execute(statement).rowcount)
    task_store.note_rows_edited(conn, [row[0] for row in rows], _ADVANCED_FIELDS)
    return written


def _advance_by_move(
    conn: Connection,
    moves: Sequence[Advance],
    rows: Sequence[tuple[int, int, int | None]],
    values: Mapping[str, Any],
) -> int:
    """SQLite (in process, no round trips): one UPDATE per move, a fired template's last run
    found by the unique index on (parent_id, occurrence_at)."""
    by_move: dict[int, list[int]] = {}
    for template_id, index, _ in rows:
        by_move.setdefault(index, []).append(template_id)
    written = 0
    for index, template_ids in by_move.items():
        move = moves[index]
        changes = {
            **values,
            "recur_next": bindparam("advance_next", move.recur_next, type_=UTCDateTime),
            "tab_sort": bindparam("advance_sort", move.tab_sort, type_=UTCDateTime),
            "wait_reason": bindparam("advance_wait", move.wait_reason),
        }
        if move.fired is not None:
            fired = bindparam("advance_fired", move.fired, type_=UTCDateTime)
            changes["recur_last"] = fired
            changes["recur_last_task_id"] = (
                select(_runs.c.id)
                .where(_runs.c.parent_id == tasks.c.id, _runs.c.occurrence_at == fired)
                .scalar_subquery()
            )
        chosen = task_store.ids_filter(conn, tasks.c.id, "advance_ids", template_ids)
        written += int(conn.execute(update(tasks).where(chosen).values(**changes)).rowcount)
    task_store.note_rows_edited(conn, [row[0] for row in rows], _ADVANCED_FIELDS)
    return written


def _array(name: str, values: list[Any], item_type: Any) -> BindParameter[Any]:
    return bindparam(name, values, type_=ARRAY(item_type))


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
    return _dicts(conn.execute(query))


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
    written = int(conn.execute(statement, params).rowcount)
    task_store.note_rows_edited(conn, [row["id"] for row in rows], ["wait_reason"])
    return written


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
    return _dicts(conn.execute(query))


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
