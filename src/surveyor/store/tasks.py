"""Task persistence: creation, the one transition path, edits, events, tab pages and counts."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from surveyor.core.kinds import check_transition
from surveyor.core.tasks import (
    ALL_VIEW,
    TAB_SPECS,
    TERMINAL_STATUSES,
    IllegalTransition,
    SortField,
    Tab,
    TaskStatus,
    TransitionKind,
    tab_of,
)
from surveyor.store.changes import ChangeKind, TaskChange, note_change
from surveyor.store.schema import UTCDateTime, task_events, task_tab_counts, tasks

#: Sort value for rows whose ordering time is unknown (a paused template has no next run):
#: they sort after every real time in ascending tabs.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

MAX_PAGE_SIZE = 1000
_TRANSITION_RETRIES = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskNotFound(Exception):
    pass


class StaleTask(Exception):
    """The task changed between our read and our write; re-read and decide again."""


class InvalidCursor(ValueError):
    pass


def _sort_time(task: Mapping[str, Any], field: SortField, now: datetime) -> datetime:
    match field:
        case SortField.STARTED:
            return task.get("data_acquisition_started_at") or task.get("updated_at") or now
        case SortField.QUEUED:
            return now
        case SortField.START_TIME:
            return task.get("start_time") or task.get("created_at") or now
        case SortField.FINISHED | SortField.PROCESSING_FINISHED:
            return task.get("finished_at") or now
        case SortField.NEXT_RUN:
            return task.get("recur_next") or FAR_FUTURE
        case SortField.CREATED:
            return task.get("created_at") or now


def placement(
    task: Mapping[str, Any], *, previous: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The `tab` and `tab_sort` columns for `task`, given its values before this write.

    A task that stays in the processing tab keeps its queue position (tab_sort), so a
    requeued task after a lost lease is not sent to the back of the queue.
    """
    if task.get("removed_at") is not None:
        return {"tab": None, "tab_sort": None}
    tab = tab_of(TaskStatus(task["status"]), template=bool(task["recur"]))
    if tab is None:
        return {"tab": None, "tab_sort": None}
    if (
        tab is Tab.PROCESSING
        and previous is not None
        and previous.get("tab") == Tab.PROCESSING
        and previous.get("tab_sort") is not None
    ):
        return {"tab": tab.value, "tab_sort": previous["tab_sort"]}
    return {"tab": tab.value, "tab_sort": _sort_time(task, TAB_SPECS[tab].sort, now)}


def _targets_text(params: Mapping[str, Any]) -> str:
    targets = params.get("targets", "")
    if isinstance(targets, list):
        return ",".join(str(t) for t in targets)
    return str(targets)


_PENDING_COUNTS = "surveyor_tab_count_deltas"


def note_tab_change(
    conn: Connection, organization_id: int, tab: str | None, hidden: bool, delta: int
) -> None:
    """Remember a change to a tab count; it is written when the transaction commits.

    Every write of a task's `tab` or `hidden` must be noted here; create_task and write_task
    do it, and bulk writers outside them call it themselves.
    """
    if tab is None:
        return
    pending: dict[tuple[int, str, bool], int] = conn.info.setdefault(_PENDING_COUNTS, {})
    key = (organization_id, tab, bool(hidden))
    pending[key] = pending.get(key, 0) + delta


def _moved(conn: Connection, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    old = (before.get("tab"), bool(before.get("hidden")))
    new = (after.get("tab"), bool(after.get("hidden")))
    if old != new:
        note_tab_change(conn, before["organization_id"], old[0], old[1], -1)
        note_tab_change(conn, after["organization_id"], new[0], new[1], +1)


def write_count_deltas(conn: Connection) -> None:
    """Write this transaction's tab count deltas (on every engine's "commit" event)."""
    # Written last, in one fixed order, so that concurrent transactions lock the counter rows
    # in the same order and never deadlock on them.
    pending = conn.info.pop(_PENDING_COUNTS, None)
    if not pending:
        return
    for (organization_id, tab, hidden), delta in sorted(pending.items()):
        if delta:
            _upsert_count(conn, organization_id, tab, hidden, delta)


def forget_count_deltas(conn: Connection) -> None:
    """Drop the deltas of a transaction that rolled back (every engine's "rollback" event)."""
    # A connection that was invalidated (lost) has no usable info left to clear.
    with contextlib.suppress(Exception):
        conn.info.pop(_PENDING_COUNTS, None)


def _upsert_count(
    conn: Connection, organization_id: int, tab: str, hidden: bool, delta: int
) -> None:
    values = {"organization_id": organization_id, "tab": tab, "hidden": hidden, "count": delta}
    keys = ["organization_id", "tab", "hidden"]
    added = {"count": task_tab_counts.c.count + delta}
    if conn.dialect.name == "postgresql":
        pg = pg_insert(task_tab_counts).values(**values)
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=added))
    else:
        lite = sqlite_insert(task_tab_counts).values(**values)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=added))


def rebuild_tab_counts(conn: Connection) -> None:
    """Recount every organization's tabs from the tasks table (after a bulk load or a repair)."""
    conn.execute(task_tab_counts.delete())
    conn.execute(
        insert(task_tab_counts).from_select(
            ["organization_id", "tab", "hidden", "count"],
            select(tasks.c.organization_id, tasks.c.tab, tasks.c.hidden, func.count())
            .where(tasks.c.tab.is_not(None))
            .group_by(tasks.c.organization_id, tasks.c.tab, tasks.c.hidden),
        )
    )


def record_event(
    conn: Connection,
    task: Mapping[str, Any],
    *,
    kind: str,
    actor: str,
    message: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        insert(task_events).values(
            task_id=task["id"],
            organization_id=task["organization_id"],
            at=at or utcnow(),
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            message=message,
        )
    )


def create_task(
    conn: Connection, values: Mapping[str, Any], *, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """Insert a task in status `new` (templates too) and record its creation."""
    now = now or utcnow()
    row: dict[str, Any] = {
        "description": "",
        "params": {},
        "stats": {},
        "hidden": False,
        "recur": False,
        "grace_period": 3600,
        "created_by": actor,
        **values,
        "status": TaskStatus.NEW.value,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    row["targets"] = _targets_text(row["params"])
    row.update(placement(row, previous=None, now=now))
    task_id = conn.execute(insert(tasks).values(**row).returning(tasks.c.id)).scalar_one()
    row["id"] = task_id
    note_tab_change(conn, row["organization_id"], row["tab"], row["hidden"], +1)
    created = get_task(conn, row["organization_id"], task_id)
    assert created is not None
    note_change(conn, TaskChange.of(created, ChangeKind.CREATED))
    record_event(
        conn,
        created,
        kind="created",
        actor=actor,
        to_status=TaskStatus.NEW.value,
        at=now,
        message="created",
    )
    return created


def get_task(
    conn: Connection, organization_id: int, task_id: int, *, include_removed: bool = False
) -> dict[str, Any] | None:
    query = select(tasks).where(tasks.c.id == task_id, tasks.c.organization_id == organization_id)
    if not include_removed:
        query = query.where(tasks.c.removed_at.is_(None))
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def _timestamps_for(status: TaskStatus, now: datetime) -> dict[str, Any]:
    stamps: dict[str, Any] = {}
    if status in (TaskStatus.ACTIVE, TaskStatus.CONNECTING):
        stamps["data_acquisition_started_at"] = now
    elif status in (TaskStatus.SCANNED, TaskStatus.CONNECTED):
        stamps["data_acquisition_ended_at"] = now
    elif status is TaskStatus.PROCESSING:
        stamps["data_processing_started_at"] = now
    elif status is TaskStatus.PROCESSED:
        stamps["data_processing_ended_at"] = now
    if status in TERMINAL_STATUSES:
        stamps["finished_at"] = now
    elif status is TaskStatus.PROCESSING_QUEUED:
        stamps["finished_at"] = None
    return stamps


def write_task(
    conn: Connection,
    task: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply `changes` if `task` is still the version we read; raise `StaleTask` otherwise."""
    now = now or utcnow()
    merged = {**task, **changes, "updated_at": now}
    if "params" in changes:
        merged["targets"] = _targets_text(merged["params"])
    merged.update(placement(merged, previous=task, now=now))
    values = {
        key: merged[key]
        for key in (*changes.keys(), "updated_at", "tab", "tab_sort")
        if key != "id"
    }
    if "params" in changes:
        values["targets"] = merged["targets"]
    values["version"] = task["version"] + 1
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task["id"], tasks.c.version == task["version"])
        .values(**values)
    )
    if result.rowcount != 1:
        raise StaleTask(task["id"])
    merged["version"] = values["version"]
    _moved(conn, task, merged)
    note_change(conn, _change(task, merged, changes))
    return merged


def _change(
    before: Mapping[str, Any], after: Mapping[str, Any], changes: Mapping[str, Any]
) -> TaskChange:
    if after["status"] != before["status"]:
        return TaskChange.of(
            after, ChangeKind.STATUS, previous_status=before["status"], fields=changes.keys()
        )
    return TaskChange.of(after, ChangeKind.EDITED, fields=changes.keys())


def transition(
    conn: Connection,
    organization_id: int,
    task_id: int,
    requested: TaskStatus,
    *,
    actor: str,
    message: str = "",
    changes: Mapping[str, Any] | None = None,
    expected: Sequence[TaskStatus] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move a task to `requested`: the only way any status changes.

    Checks the transition table against the freshest row, writes with optimistic
    concurrency (retrying on a concurrent write), and records the event. `expected`
    narrows the statuses this caller accepts to start from (for example an explorer
    report that only makes sense while `active`).
    """
    for _ in range(_TRANSITION_RETRIES):
        task = get_task(conn, organization_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        current = TaskStatus(task["status"])
        if expected is not None and current not in expected:
            raise IllegalTransition(current, requested)
        kind = check_transition(
            task["type"],
            template=bool(task["recur"]),
            current=current,
            requested=requested,
        )
        when = now or utcnow()
        update_values: dict[str, Any] = {"status": requested.value}
        update_values.update(_timestamps_for(requested, when))
        if requested is not TaskStatus.NEW:
            update_values["wait_reason"] = None
        if kind is TransitionKind.REPROCESS:
            update_values.update(error=None, progress_process=0.0)
        if changes:
            update_values.update(changes)
        try:
            written = write_task(conn, task, update_values, now=when)
        except StaleTask:
            continue
        record_event(
            conn,
            written,
            kind="transition",
            actor=actor,
            message=message or kind.value,
            from_status=current.value,
            to_status=requested.value,
            at=when,
        )
        return written
    raise StaleTask(task_id)


def edit_task(
    conn: Connection,
    organization_id: int,
    task_id: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
    message: str,
    event_kind: str = "edited",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change fields other than the status, with the same optimistic concurrency."""
    for _ in range(_TRANSITION_RETRIES):
        task = get_task(conn, organization_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        try:
            written = write_task(conn, task, changes, now=now)
        except StaleTask:
            continue
        record_event(conn, written, kind=event_kind, actor=actor, message=message, at=now)
        return written
    raise StaleTask(task_id)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(view: str, row: Mapping[str, Any]) -> str:
    sort = row["tab_sort"].isoformat() if view != ALL_VIEW else None
    raw = json.dumps([view, sort, row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(view: str, cursor: str) -> tuple[datetime | None, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor_view, sort, last_id = decoded
        if cursor_view != view or not isinstance(last_id, int):
            raise InvalidCursor("this cursor belongs to another listing; start from the first page")
        sort_time = datetime.fromisoformat(sort) if sort is not None else None
    except InvalidCursor:
        raise
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor(
            "the cursor is malformed; use the next_cursor of a previous page"
        ) from exc
    if view != ALL_VIEW and sort_time is None:
        raise InvalidCursor("the cursor is malformed; use the next_cursor of a previous page")
    return sort_time, last_id


def visible_filter(organization_id: int, *, include_hidden: bool) -> ColumnElement[bool]:
    """Rows of this organization that are not removed (and not hidden, unless asked for)."""
    clause = and_(tasks.c.organization_id == organization_id, tasks.c.tab.is_not(None))
    if not include_hidden:
        clause = and_(clause, tasks.c.hidden.is_(False))
    return clause


def list_tasks(
    conn: Connection,
    organization_id: int,
    *,
    view: str,
    search: ColumnElement[bool] | None = None,
    include_hidden: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """One page of a tab (or the `all` view), in the tab's order, by keyset pagination."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    clause = visible_filter(organization_id, include_hidden=include_hidden)
    if search is not None:
        clause = and_(clause, search)
    if view == ALL_VIEW:
        order = [tasks.c.id.desc()]
        if cursor:
            _, last_id = _decode_cursor(view, cursor)
            clause = and_(clause, tasks.c.id < last_id)
    else:
        spec = TAB_SPECS[Tab(view)]
        clause = and_(clause, tasks.c.tab == spec.tab.value)
        if spec.newest_first:
            order = [tasks.c.tab_sort.desc(), tasks.c.id.desc()]
        else:
            order = [tasks.c.tab_sort.asc(), tasks.c.id.asc()]
        if cursor:
            last_sort, last_id = _decode_cursor(view, cursor)
            key = tuple_(tasks.c.tab_sort, tasks.c.id)
            bound = tuple_(literal(last_sort, tasks.c.tab_sort.type), literal(last_id))
            clause = and_(clause, key < bound if spec.newest_first else key > bound)
    rows = (
        conn.execute(select(tasks).where(clause).order_by(*order).limit(limit + 1)).mappings().all()
    )
    items = [dict(row) for row in rows[:limit]]
    next_cursor = _encode_cursor(view, items[-1]) if len(rows) > limit else None
    return Page(items, next_cursor)


def count_tasks(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    include_hidden: bool = False,
) -> dict[str, int]:
    """How many tasks each tab holds (and `all`), honouring the search.

    Without a search the answer comes from the counter rows kept in step with every write;
    with one, the matching tasks are counted.
    """
    if search is None:
        query = select(task_tab_counts.c.tab, func.sum(task_tab_counts.c.count)).where(
            task_tab_counts.c.organization_id == organization_id
        )
        if not include_hidden:
            query = query.where(task_tab_counts.c.hidden.is_(False))
        rows: list[tuple[str, int]] = [
            (row[0], int(row[1])) for row in conn.execute(query.group_by(task_tab_counts.c.tab))
        ]
        # This transaction's own changes are written at commit; count them already.
        for (org, tab, hidden), delta in conn.info.get(_PENDING_COUNTS, {}).items():
            if org == organization_id and (include_hidden or not hidden):
                rows.append((tab, delta))
    else:
        clause = and_(visible_filter(organization_id, include_hidden=include_hidden), search)
        rows = [
            (row[0], int(row[1]))
            for row in conn.execute(
                select(tasks.c.tab, func.count()).where(clause).group_by(tasks.c.tab)
            )
        ]
    counts = {tab.value: 0 for tab in Tab}
    for tab, count in rows:
        counts[tab] += int(count)
    counts[ALL_VIEW] = sum(counts.values())
    return counts


def list_events(
    conn: Connection, task: Mapping[str, Any], *, limit: int = 100, after_id: int | None = None
) -> list[dict[str, Any]]:
    query = select(task_events).where(task_events.c.task_id == task["id"])
    if after_id is not None:
        query = query.where(task_events.c.id > after_id)
    rows = conn.execute(query.order_by(task_events.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def list_runs(
    conn: Connection, template: Mapping[str, Any], *, limit: int = 50, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Past and current runs of a recurring template, newest first."""
    query = select(tasks).where(
        tasks.c.parent_id == template["id"],
        tasks.c.organization_id == template["organization_id"],
        tasks.c.removed_at.is_(None),
    )
    if before_id is not None:
        query = query.where(tasks.c.id < before_id)
    rows = conn.execute(query.order_by(tasks.c.id.desc()).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def ids_filter(
    conn: Connection, column: ColumnElement[int], name: str, ids: Sequence[int]
) -> ColumnElement[bool]:
    """`column IN ids` as one bound value however many ids there are: a PostgreSQL array, or a
    JSON list SQLite unpacks (no statement text that grows with the list to build and parse)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(name, list(ids), type_=ARRAY(BigInteger)))
    listed = func.json_each(bindparam(name, json.dumps(list(ids)))).table_valued("value")
    return column.in_(select(listed.c.value))


def note_rows_edited(conn: Connection, task_ids: Sequence[int], fields: Collection[str]) -> None:
    """Note an edit of `fields` for each of these tasks, written by a statement of its own
    (their rows are read back for what a change says about its task)."""
    if not task_ids:
        return
    query = select(
        tasks.c.id,
        tasks.c.organization_id,
        tasks.c.type,
        tasks.c.status,
        tasks.c.explorer_id,
        tasks.c.recur,
        tasks.c.wait_reason,
    ).where(ids_filter(conn, tasks.c.id, "noted_task_ids", task_ids))
    for row in conn.execute(query).mappings():
        note_change(conn, TaskChange.of(row, ChangeKind.EDITED, fields=fields))


@dataclass(frozen=True)
class SpawnedRun:
    template_id: int
    run_id: int
    organization_id: int


def spawn_runs(
    conn: Connection,
    template_ids: Sequence[int],
    occurrence: datetime,
    *,
    copied: Sequence[str],
    fixed: Mapping[str, Any],
    actor: str,
    created_message: str,
    spawned_message: tuple[str, str],
    now: datetime,
) -> list[SpawnedRun]:
    """Create one run of each template for `occurrence`, in two statements for any number.

    The runs copy their templates' `copied` columns inside the database and take the `fixed`
    values (status, tab, tab_sort, timestamps: what `create_task` would set); each run gets its
    `created` event and each template a `spawned` event naming its run (`spawned_message` is
    the text before and after the run's id), and the tab counts change with them, as
    `create_task` and `edit_task` do one at a time. A template that already has a run of
    `occurrence` (fired by another scheduler) gets none: the unique index on (parent_id,
    occurrence_at) refuses it, and it is left out of the runs returned.
    """
    if not template_ids:
        return []
    given = {
        "parent_id": tasks.c.id,
        "start_time": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        "occurrence_at": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        **{name: literal(value, tasks.c[name].type) for name, value in fixed.items()},
    }
    source = select(*(tasks.c[column] for column in copied), *given.values()).where(
        ids_filter(conn, tasks.c.id, "spawn_template_ids", template_ids)
    )
    upsert = pg_insert(tasks) if conn.dialect.name == "postgresql" else sqlite_insert(tasks)
    statement = (
        upsert.from_select([*copied, *given], source)
        .on_conflict_do_nothing(index_elements=[tasks.c.parent_id, tasks.c.occurrence_at])
        .returning(
            tasks.c.parent_id,
            tasks.c.id,
            tasks.c.organization_id,
            tasks.c.type,
            tasks.c.status,
            tasks.c.explorer_id,
            tasks.c.recur,
            tasks.c.wait_reason,
        )
    )
    rows = conn.execute(statement).mappings().all()
    if not rows:
        return []
    spawned = [SpawnedRun(row["parent_id"], row["id"], row["organization_id"]) for row in rows]
    for row in rows:
        note_change(conn, TaskChange.of(row, ChangeKind.CREATED))
    _record_spawns(
        conn, [run.run_id for run in spawned], created_message, spawned_message, actor, now
    )
    per_organization = Counter(run.organization_id for run in spawned)
    for organization_id, count in sorted(per_organization.items()):
        note_tab_change(conn, organization_id, fixed.get("tab"), bool(fixed.get("hidden")), count)
    return spawned


def _record_spawns(
    conn: Connection,
    run_ids: Sequence[int],
    created_message: str,
    spawned_message: tuple[str, str],
    actor: str,
    now: datetime,
) -> None:
    """The `created` event of each new run and the `spawned` event of its template, written
    from the runs' rows by the database: only their ids travel."""
    before, after = spawned_message
    runs = ids_filter(conn, tasks.c.id, "spawned_run_ids", run_ids)
    at = bindparam("spawned_at", now, type_=UTCDateTime)
    created = select(
        tasks.c.id,
        tasks.c.organization_id,
        at,
        literal("created"),
        literal(TaskStatus.NEW.value),
        literal(actor),
        literal(created_message),
    ).where(runs)
    template_event = select(
        tasks.c.parent_id,
        tasks.c.organization_id,
        at,
        literal("spawned"),
        null(),
        literal(actor),
        literal(before) + cast(tasks.c.id, String) + literal(after),
    ).where(runs)
    columns = ["task_id", "organization_id", "at", "kind", "to_status", "actor", "message"]
    conn.execute(insert(task_events).from_select(columns, union_all(created, template_event)))
