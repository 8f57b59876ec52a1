"""Task persistence: the one write path, the one transition path, edits, events, tab pages and
counts.

Every insert and update of a task row goes through the write path below: `create_task` and
`write_task` for one row, `update_tasks` and `spawn_runs` for many in one statement. The path
stamps each row (a new `version`, `updated_at`, and its `tab` and `tab_sort`), notes the tab-count
deltas, records the task events, and notes a `TaskChange` per row written (store/changes.py).
Other store modules (task_queue.py, schedules.py) build their statements on it; nothing outside
the store writes tasks (`make lint` checks it).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Join,
    Row,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.kinds import check_transition
from surveyor.core.task import Task
from surveyor.core.tasks import (
    ALL_VIEW,
    DEFAULT_GRACE_PERIOD_SECONDS,
    TAB_SPECS,
    TERMINAL_STATUSES,
    EventKind,
    IllegalTransition,
    SortField,
    Tab,
    TaskStatus,
    TransitionKind,
    tab_of,
)
from surveyor.store.changes import ChangeKind, TaskChange, note_change, note_changes
from surveyor.store.cursors import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from surveyor.store.cursors import decode_cursor, encode_cursor, keyset_page, page_size
from surveyor.store.parallel_reads import MOST, CountPiece, ParallelReads
from surveyor.store.prepared import decode_rows, prepared_select
from surveyor.store.schema import (
    UTCDateTime,
    explorers,
    hosted_zones,
    sites,
    task_events,
    task_tab_counts,
    tasks,
)
from surveyor.store.task_search import TaskSearch

#: Sort value for rows whose ordering time is unknown (a paused template has no next run):
#: they sort after every real time in ascending tabs.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

_TRANSITION_RETRIES = 5


class TaskNotFound(Exception):
    pass


class StaleTask(Exception):
    """The task changed between our read and our write; re-read and decide again."""


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class TaskEvent:
    """The event a write records about a task: what happened, who did it, in words."""

    kind: EventKind
    actor: str
    message: str = ""
    from_status: str | None = None
    to_status: str | None = None


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


def _note_tab_change(
    conn: Connection, organization_id: int, tab: str | None, hidden: bool, delta: int
) -> None:
    """Remember a change to a tab count; it is written when the transaction commits.

    Only the write path calls it: a row's `tab` and `hidden` change in `write_task` alone
    (`update_tasks` refuses those columns), and inserted rows count in `create_task` and
    `spawn_runs`.
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
        _note_tab_change(conn, before["organization_id"], old[0], old[1], -1)
        _note_tab_change(conn, after["organization_id"], new[0], new[1], +1)


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


def _event_row(
    task_id: int, organization_id: int, event: TaskEvent, at: datetime
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "organization_id": organization_id,
        "at": at,
        "kind": event.kind.value,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "message": event.message,
    }


def _task_change(
    kind: ChangeKind,
    row: Mapping[str, Any],
    fields: Iterable[str],
    *,
    previous_status: str | None = None,
) -> TaskChange:
    return TaskChange.of(row, kind, previous_status=previous_status, fields=frozenset(fields))


def _noted_changes(
    kind: ChangeKind, rows: Iterable[Sequence[Any]], fields: Iterable[str]
) -> list[TaskChange]:
    """The changes of rows a bulk write returned, `_NOTED_COLUMNS` first."""
    named = frozenset(fields) - {"id"}
    return [
        TaskChange(
            kind=kind,
            organization_id=row[1],
            task_id=row[0],
            task_type=row[2],
            status=row[3],
            explorer_id=row[4],
            template=bool(row[5]),
            wait_reason=row[6],
            fields=named,
        )
        for row in rows
    ]


def create_task(
    conn: Connection, values: Mapping[str, Any], *, actor: str, now: datetime | None = None
) -> Task:
    """Insert a task in status `new` (templates too) and record its creation."""
    now = now or SYSTEM_CLOCK.now()
    row: dict[str, Any] = {
        "description": "",
        "params": {},
        "stats": {},
        "hidden": False,
        "recur": False,
        "grace_period": DEFAULT_GRACE_PERIOD_SECONDS,
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
    _note_tab_change(conn, row["organization_id"], row["tab"], row["hidden"], +1)
    created = get_task(conn, row["organization_id"], task_id)
    assert created is not None
    event = TaskEvent(EventKind.CREATED, actor, "created", to_status=TaskStatus.NEW.value)
    conn.execute(
        insert(task_events).values(_event_row(task_id, row["organization_id"], event, now))
    )
    note_change(conn, _task_change(ChangeKind.CREATED, created.as_row(), values))
    return created


def get_task(
    conn: Connection, organization_id: int, task_id: int, *, include_removed: bool = False
) -> Task | None:
    query = select(tasks).where(tasks.c.id == task_id, tasks.c.organization_id == organization_id)
    if not include_removed:
        query = query.where(tasks.c.removed_at.is_(None))
    row = conn.execute(query).mappings().first()
    return Task.from_row(row) if row is not None else None


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
    task: Task,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
    event: TaskEvent | None = None,
) -> Task:
    """Apply `changes` (columns and their new values; record `event`) if `task` is still the
    version we read, and return the task as written; raise `StaleTask` otherwise. The row's
    new tab, counts and change note follow from it."""
    now = now or SYSTEM_CLOCK.now()
    before = task.as_row()
    merged = {**before, **changes, "updated_at": now}
    if "params" in changes:
        merged["targets"] = _targets_text(merged["params"])
    merged.update(placement(merged, previous=before, now=now))
    values = {
        key: merged[key]
        for key in (*changes.keys(), "updated_at", "tab", "tab_sort")
        if key != "id"
    }
    if "params" in changes:
        values["targets"] = merged["targets"]
    values["version"] = task.version + 1
    result = conn.execute(
        update(tasks).where(tasks.c.id == task.id, tasks.c.version == task.version).values(**values)
    )
    if result.rowcount != 1:
        raise StaleTask(task.id)
    merged["version"] = values["version"]
    _moved(conn, before, merged)
    if event is not None:
        conn.execute(
            insert(task_events).values(_event_row(task.id, task.organization_id, event, now))
        )
    status_changed = merged["status"] != task.status
    note_change(
        conn,
        _task_change(
            ChangeKind.STATUS if status_changed else ChangeKind.EDITED,
            merged,
            changes,
            previous_status=task.status.value if status_changed else None,
        ),
    )
    return Task.from_row(merged)


#: Columns `update_tasks` will not write: they move a task between tabs and counts (status,
#: recur, removed_at, hidden), follow from another column (targets from params), or are the
#: write path's own. Writes of those read the row first: `write_task`.
_READ_BEFORE_WRITING = frozenset(
    {
        "id",
        "organization_id",
        "status",
        "recur",
        "removed_at",
        "hidden",
        "params",
        "targets",
        "tab",
        "tab_sort",
        "version",
        "updated_at",
    }
)
#: What the write path reads back from a bulk write, to note each row's change.
_NOTED_COLUMNS = (
    tasks.c.id,
    tasks.c.organization_id,
    tasks.c.type,
    tasks.c.status,
    tasks.c.explorer_id,
    tasks.c.recur,
    tasks.c.wait_reason,
)


def update_tasks(
    conn: Connection,
    chosen: ColumnElement[bool],
    values: Mapping[str, Any],
    *,
    now: datetime,
    event: TaskEvent | None = None,
    events: Mapping[int, Sequence[TaskEvent]] | None = None,
    returning: Sequence[Any] = (),
) -> Sequence[Row[Any]]:
    """Write `values` to every task `chosen` selects, in one statement; the rows written
    (`id`, `organization_id`, `type`, `status`, `explorer_id`, `recur`, `wait_reason`,
    then `returning`).

    For writes decided on rows the caller holds (locked, leased, or due) that leave each task
    in its tab: the tab-moving columns are refused (`_READ_BEFORE_WRITING`), and `tab_sort`
    follows the columns its tab sorts by. `values` may be SQL expressions. Each row gets
    `event`, and the `events` listed under its id.
    """
    refused = _READ_BEFORE_WRITING.intersection(values)
    if refused:
        raise ValueError(f"write {sorted(refused)} through write_task, which reads the row first")
    at = bindparam("write_now", now, type_=UTCDateTime)
    stamps: dict[str, Any] = {"updated_at": at, "version": tasks.c.version + 1}
    sort = _tab_sort_after(values, at)
    if sort is not None:
        stamps["tab_sort"] = sort
    statement = (
        update(tasks)
        .where(chosen)
        .values(**values, **stamps)
        .returning(*_NOTED_COLUMNS, *returning)
    )
    written = conn.execute(statement).all()
    rows: list[dict[str, Any]] = []
    if event is not None:
        rows += [_event_row(row[0], row[1], event, now) for row in written]
    if events:
        rows += [
            _event_row(row[0], row[1], noted, now)
            for row in written
            for noted in events.get(row[0], ())
        ]
    if rows:
        conn.execute(insert(task_events), rows)
    note_changes(conn, _noted_changes(ChangeKind.EDITED, written, values))
    return written


#: The columns each sort time is read from (`_sort_time`), besides the time of the write.
_SORTED_BY: dict[SortField, tuple[str, ...]] = {
    SortField.STARTED: ("data_acquisition_started_at",),
    SortField.QUEUED: (),
    SortField.START_TIME: ("start_time", "created_at"),
    SortField.FINISHED: ("finished_at",),
    SortField.PROCESSING_FINISHED: ("finished_at",),
    SortField.NEXT_RUN: ("recur_next",),
    SortField.CREATED: ("created_at",),
}


def _tab_sort_after(
    values: Mapping[str, Any], at: ColumnElement[datetime]
) -> ColumnElement[Any] | None:
    """`placement` in SQL for rows that stay in their tab: a new `tab_sort` for the tabs that
    sort by a column this write sets, the same one elsewhere (a processing task keeps its
    place in the queue); None when no tab sorts by what it writes."""
    changed = [
        (tab, spec.sort)
        for tab, spec in TAB_SPECS.items()
        if tab is not Tab.PROCESSING and values.keys() & set(_SORTED_BY[spec.sort])
    ]
    if not changed:
        return None

    def after(name: str) -> ColumnElement[Any]:
        if name not in values:
            return tasks.c[name]
        value = values[name]
        return value if isinstance(value, ColumnElement) else literal(value, tasks.c[name].type)

    def sort_time(field: SortField) -> ColumnElement[Any]:
        # As `_sort_time`: the first time known, else the time of the write (a template
        # without a next run sorts after every real time).
        if field is SortField.NEXT_RUN:
            return func.coalesce(after("recur_next"), literal(FAR_FUTURE, tasks.c.tab_sort.type))
        return func.coalesce(*(after(name) for name in _SORTED_BY[field]), at)

    return case(
        *((tasks.c.tab == tab.value, sort_time(sort)) for tab, sort in changed),
        else_=tasks.c.tab_sort,
    )


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
) -> Task:
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
        current = task.status
        if expected is not None and current not in expected:
            raise IllegalTransition(current, requested)
        kind = check_transition(
            task.type,
            template=task.recur,
            current=current,
            requested=requested,
        )
        when = now or SYSTEM_CLOCK.now()
        update_values: dict[str, Any] = {"status": requested.value}
        update_values.update(_timestamps_for(requested, when))
        if requested is not TaskStatus.NEW:
            update_values["wait_reason"] = None
        if kind is TransitionKind.REPROCESS:
            update_values.update(error=None, progress_process=0.0)
        if changes:
            update_values.update(changes)
        event = TaskEvent(
            EventKind.TRANSITION,
            actor,
            message or kind.value,
            from_status=current.value,
            to_status=requested.value,
        )
        try:
            return write_task(conn, task, update_values, now=when, event=event)
        except StaleTask:
            continue
    raise StaleTask(task_id)


def edit_task(
    conn: Connection,
    organization_id: int,
    task_id: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
    message: str,
    event_kind: EventKind = EventKind.EDITED,
    now: datetime | None = None,
) -> Task:
    """Change fields other than the status, with the same optimistic concurrency."""
    event = TaskEvent(event_kind, actor, message)
    for _ in range(_TRANSITION_RETRIES):
        task = get_task(conn, organization_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        try:
            return write_task(conn, task, changes, now=now, event=event)
        except StaleTask:
            continue
    raise StaleTask(task_id)


@dataclass(frozen=True)
class Page:
    items: list[Task]
    next_cursor: str | None


@dataclass(frozen=True)
class ColumnsPage:
    """A page of tasks as lists of the columns asked for, in their order: for answers that
    show only those (the API's listings), which need no `Task` built for each row."""

    rows: list[list[Any]]
    next_cursor: str | None


def _encode_cursor(view: str, tab_sort: datetime | None, task_id: int) -> str:
    sort = tab_sort.isoformat() if view != ALL_VIEW and tab_sort is not None else None
    return encode_cursor([view, sort, task_id])


def _decode_cursor(view: str, cursor: str) -> tuple[datetime | None, int]:
    try:
        decoded = decode_cursor(cursor)
        cursor_view, sort, last_id = decoded
        if cursor_view != view or not isinstance(last_id, int):
            raise InvalidCursor("this cursor belongs to another listing; start from the first page")
        sort_time = datetime.fromisoformat(sort) if sort is not None else None
    except InvalidCursor:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(
            "the cursor is malformed; use the next_cursor of a previous page"
        ) from exc
    if view != ALL_VIEW and sort_time is None:
        raise InvalidCursor("the cursor is malformed; use the next_cursor of a previous page")
    return sort_time, last_id


def visible_filter(
    organization_id: int | ColumnElement[int], *, include_hidden: bool
) -> ColumnElement[bool]:
    """Rows of this organization (an id, or a bound value) that are not removed (and not
    hidden, unless asked for)."""
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
    limit = page_size(limit)
    query = _tab_page(view, search, include_hidden, after=bool(cursor))
    values = _page_values(organization_id, view, limit, cursor)
    rows = conn.execute(query, values).mappings().all()

    def after(last: Task) -> str:
        return _encode_cursor(view, last.tab_sort, last.id)

    return Page(*keyset_page(rows, limit, Task.from_row, after))


def list_task_columns(
    conn: Connection,
    organization_id: int,
    columns: Sequence[str],
    *,
    view: str,
    search: ColumnElement[bool] | None = None,
    include_hidden: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> ColumnsPage:
    """`list_tasks`, each task only the `columns` asked for. A page without a search is read
    by a statement prepared once (`store/prepared.py`): it is the Tasks page's hot path."""
    limit = page_size(limit)
    values = _page_values(organization_id, view, limit, cursor)
    if search is None:
        key = ("tab page", view, include_hidden, bool(cursor), tuple(columns))
        prepared = prepared_select(
            key, lambda: _tab_page_columns(columns, view, None, include_hidden, bool(cursor))
        )
        rows = prepared.rows(conn, values)
    else:
        statement = _tab_page_columns(columns, view, search, include_hidden, bool(cursor))
        rows = decode_rows(conn, statement, values)
    # The cursor's columns come after those asked for, which are all the caller sees.
    width = len(columns)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(view, last[width], last[width + 1])
    return ColumnsPage([row[:width] for row in rows[:limit]], next_cursor)


def _tab_page_columns(
    columns: Sequence[str],
    view: str,
    search: ColumnElement[bool] | None,
    include_hidden: bool,
    after: bool,
) -> Select[Any]:
    query = _tab_page(view, search, include_hidden, after=after)
    return query.with_only_columns(
        *(tasks.c[name] for name in columns), tasks.c.tab_sort, tasks.c.id
    )


def _page_values(organization_id: int, view: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """The bound values of `_tab_page`: one row past the page says whether another follows."""
    values: dict[str, Any] = {"organization_id": organization_id, "limit": limit + 1}
    if cursor:
        last_sort, values["last_id"] = _decode_cursor(view, cursor)
        if view != ALL_VIEW:
            values["last_sort"] = last_sort
    return values


def _tab_page(
    view: str, search: ColumnElement[bool] | None, include_hidden: bool, *, after: bool
) -> Select[Any]:
    """The tasks of a tab (or the `all` view) in its order, after a cursor when `after`. Its
    bound values (`_page_values`) are the organization, the limit and the cursor's place, so
    that the statement's shape is the same for every organization and page."""
    organization = bindparam("organization_id", type_=tasks.c.organization_id.type)
    clause = visible_filter(organization, include_hidden=include_hidden)
    if search is not None:
        clause = and_(clause, search)
    last_id = bindparam("last_id", type_=tasks.c.id.type)
    if view == ALL_VIEW:
        order = [tasks.c.id.desc()]
        if after:
            clause = and_(clause, tasks.c.id < last_id)
    else:
        spec = TAB_SPECS[Tab(view)]
        clause = and_(clause, tasks.c.tab == spec.tab.value)
        if spec.newest_first:
            order = [tasks.c.tab_sort.desc(), tasks.c.id.desc()]
        else:
            order = [tasks.c.tab_sort.asc(), tasks.c.id.asc()]
        if after:
            key = tuple_(tasks.c.tab_sort, tasks.c.id)
            bound = tuple_(bindparam("last_sort", type_=tasks.c.tab_sort.type), last_id)
            clause = and_(clause, key < bound if spec.newest_first else key > bound)
    limit = bindparam("limit", type_=Integer())
    return select(tasks).where(clause).order_by(*order).limit(limit)


def count_tasks(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    include_hidden: bool = False,
    candidates: Select[Any] | None = None,
    reads: ParallelReads | None = None,
    tabs: frozenset[str] | None = None,
) -> dict[str, int]:
    """How many tasks each tab holds (and `all`), honouring the search.

    Without a search the answer comes from the counter rows kept in step with every write;
    with one, the matching tasks are counted (only among `candidates`, when the search says
    its matches are among those few ids: `TaskSearch.candidates`). With `reads` and no
    candidates, the tabs of a large count are counted side by side
    (`_count_tabs_side_by_side`); `tabs`, when given, are the only ones the search can
    match in (`TaskSearch.tabs`).
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
        side_by_side = (
            None
            if reads is None or candidates is not None
            else _count_tabs_side_by_side(
                conn, reads, organization_id, clause, None, tabs, include_hidden=include_hidden
            )
        )
        rows = _count_by_tab(conn, clause, candidates) if side_by_side is None else side_by_side
    counts = {tab.value: 0 for tab in Tab}
    for tab, count in rows:
        counts[tab] += int(count)
    counts[ALL_VIEW] = sum(counts.values())
    return counts


class _ByIdsFirst(Join):
    """An inner join that SQLite runs in the order written (as its `CROSS JOIN`): the left
    side, a few ids, is the outer loop and each task is read by its primary key. Without
    statistics SQLite's planner would rather walk `ix_tasks_search`, which covers a count,
    through the whole organization. Elsewhere an ordinary join."""

    inherit_cache = True


@compiles(_ByIdsFirst, "sqlite")
def _compile_by_ids_first(join: _ByIdsFirst, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = compiler.process(join.left, **kw)
    right = compiler.process(join.right, **kw)
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


def _count_by_tab(
    conn: Connection, clause: ColumnElement[bool], candidates: Select[Any] | None
) -> list[tuple[str, int]]:
    """Matches of `clause` per tab, every one counted."""
    count = select(tasks.c.tab, func.count()).where(clause).group_by(tasks.c.tab)
    if candidates is not None:
        ids = candidates.subquery()
        count = count.select_from(_ByIdsFirst(ids, tasks, tasks.c.id == ids.c[0]))
    return [(row[0], int(row[1])) for row in conn.execute(count)]


def _count_each_tab_upto(
    conn: Connection, clause: ColumnElement[bool], limit: int, tabs: frozenset[str] | None
) -> list[tuple[str, int]]:
    """Matches of `clause` in each tab (of `tabs`, or all), each read no further than
    `limit` matches in the tab's own index range; all tabs in one statement."""
    per_tab = [
        select(
            literal(tab.value, String()).label("tab"),
            select(func.count())
            .select_from(
                select(literal(1)).where(clause, tasks.c.tab == tab.value).limit(limit).subquery()
            )
            .scalar_subquery(),
        )
        for tab in Tab
        if tabs is None or tab.value in tabs
    ]
    if not per_tab:
        return []
    statement = per_tab[0] if len(per_tab) == 1 else union_all(*per_tab)
    return [(row[0], int(row[1])) for row in conn.execute(statement)]


#: Where searched tab counts stop: past it a tab shows `10,000+` unless an exact count is asked.
COUNT_CAP = 10_000


#: A searched count reads its tabs side by side (`ParallelReads`) only when they hold this
#: many entries together: below it, one statement costs less than the round trips of several.
SIDE_BY_SIDE_FROM_ENTRIES = 50_000


def _count_tabs_side_by_side(
    conn: Connection,
    reads: ParallelReads,
    organization_id: int,
    clause: ColumnElement[bool],
    limit: int | None,
    tabs: frozenset[str] | None,
    *,
    include_hidden: bool,
) -> list[tuple[str, int]] | None:
    """`_count_each_tab_upto` (or, without `limit`, every match counted) with each tab
    counted by a statement of its own, the statements read side by side on several
    connections (`reads`), largest tab first (by its counter). Each tab reads what it would
    in one statement, no more. None when there is one connection, one tab, or too few
    entries for it to pay (`SIDE_BY_SIDE_FROM_ENTRIES`)."""
    names = [tab.value for tab in Tab if tabs is None or tab.value in tabs]
    if reads.workers < 2 or len(names) < 2:
        return None
    sizes = count_tasks(conn, organization_id, include_hidden=include_hidden)
    if sum(sizes[name] for name in names) < SIDE_BY_SIDE_FROM_ENTRIES:
        return None
    matches = select(literal(1)).where(
        clause, tasks.c.tab == bindparam("count_tab", type_=String())
    )
    if limit is not None:
        matches = matches.limit(bindparam(MOST, type_=Integer()))
    statement = select(func.count()).select_from(matches.subquery())
    pieces = [
        CountPiece(name, {"count_tab": name}) for name in sorted(names, key=lambda n: -sizes[n])
    ]
    counted = reads.count(conn, statement, pieces, limit=limit)
    return [(name, counted[name]) for name in names]


def _count_one_tab_in_stretches(
    conn: Connection,
    reads: ParallelReads,
    organization_id: int,
    clause: ColumnElement[bool],
    limit: int,
    tab: str,
    created_within: tuple[datetime | None, datetime | None],
) -> list[tuple[str, int]] | None:
    """The matches of `clause` in `tab` (up to `limit`), counted in as many stretches of
    creation time as `reads` has workers, side by side: each stretch is a range of
    `ix_tasks_search` (tab, organization, hidden, created_at). The stretches share the
    search's time range (`created_within`, within the tab's first and last task) evenly
    in time; the first and last are open-ended, so that they cover every task whatever
    the bounds say. None when the range holds too few entries for it to pay (by the tab's
    counter, as if tasks came at an even rate).

    Only for a count expected to end under the limit: every stretch is then read to its
    end, as the one statement would read the whole range. Past the limit, the newer
    stretches would be read in vain (or for longer, where matches are sparser): no
    statement is stopped once the limit is reached."""
    visible = (
        tasks.c.tab == tab,
        tasks.c.organization_id == organization_id,
        tasks.c.hidden.is_(False),
    )
    ends = union_all(
        *(
            select(
                select(tasks.c.created_at)
                .where(*visible)
                .order_by(order)
                .limit(1)
                .scalar_subquery()
                .label("at")
            )
            for order in (tasks.c.created_at.asc(), tasks.c.created_at.desc())
        )
    )
    first, last = list(conn.execute(ends).scalars())
    if first is None or last is None:
        return None
    after, before = created_within
    start = first if after is None else max(first, after)
    end = last if before is None else min(last, before)
    size = count_tasks(conn, organization_id, include_hidden=False)[tab]
    if (
        end <= start
        or size * ((end - start) / max(last - first, _TICK)) < SIDE_BY_SIDE_FROM_ENTRIES
    ):
        return None
    edges = [start + (end - start) * i / reads.workers for i in range(1, reads.workers)]
    statement = select(func.count()).select_from(
        select(literal(1))
        .where(
            clause,
            tasks.c.tab == tab,
            tasks.c.created_at >= bindparam("count_from", type_=UTCDateTime()),
            tasks.c.created_at < bindparam("count_to", type_=UTCDateTime()),
        )
        .limit(bindparam(MOST, type_=Integer()))
        .subquery()
    )
    pieces = [
        CountPiece(tab, {"count_from": low, "count_to": high})
        for low, high in zip([_EARLIEST, *edges], [*edges, _LATEST], strict=True)
    ]
    return [(tab, reads.count(conn, statement, pieces, limit=limit)[tab])]


#: Before and after any task's creation: the open ends of the first and last stretch.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` of a statement (PostgreSQL): its plan, not its rows."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(explain: _Explain, compiler: Any, **kw: Any) -> str:
    statement: str = compiler.process(explain.statement, **kw)
    return "EXPLAIN (FORMAT JSON) " + statement


#: How many rows holding a substring (PostgreSQL's estimate) a searched count reads from the
#: table, through the trigram index, rather than walk each tab's range of `ix_tasks_search`.
#: Each is one table row read, and a table page that is not in memory is a read from disk:
#: on the bench data (1M tasks) `name:weekly` (12k such rows) took 25 ms. `name:audit
#: status:processed created_at:<90days` (24k rows hold `audit`) took 37 ms with the table in
#: memory and 2.3 s right after a restart (21,810 table pages read), where the walk of one
#: contiguous index range takes 62 ms.
FEW_CANDIDATES = 20_000


def _expected_matches(conn: Connection, clause: ColumnElement[bool]) -> float:
    """How many tasks the planner expects `clause` to match (PostgreSQL): its estimate,
    from the table's statistics, without reading a row."""
    plan = conn.execute(_Explain(select(tasks.c.id).where(clause))).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])


@dataclass(frozen=True)
class CappedCounts:
    """Tab counts (and `all`) where each is exact, or stopped at the cap (named in `capped`)."""

    counts: dict[str, int]
    capped: frozenset[str]


def count_tasks_upto(
    conn: Connection,
    organization_id: int,
    *,
    search: ColumnElement[bool] | None = None,
    include_hidden: bool = False,
    cap: int = COUNT_CAP,
    tabs: frozenset[str] | None = None,
    candidates: Select[Any] | None = None,
    indexed_substring: ColumnElement[bool] | None = None,
    reads: ParallelReads | None = None,
    created_within: tuple[datetime | None, datetime | None] = (None, None),
) -> CappedCounts:
    """`count_tasks`, where a searched tab stops counting at `cap` matches: a tab past it
    reads `cap` and is named in `capped` (as is `all` when the tabs together pass it).
    `tabs`, when given, are the only tabs the search can match in (`tabs_of_search`): the
    others read 0 without a query. `candidates`, when given, are the few ids every match is
    among (`TaskSearch.candidates`): they are read by id and counted exactly, in one pass.

    Otherwise each tab is counted in its own range of `ix_tasks_search`, which holds the keys
    searches compare most: a tab stops at one match past the cap, and a tab with fewer
    matches is read to its end, in the index alone when the search names only its keys. The
    tabs are counted in one statement.

    On PostgreSQL, a search that requires a substring a trigram index can look up
    (`indexed_substring`, its condition) is counted exactly, in one statement, when the
    planner expects fewer than `FEW_CANDIDATES` rows to hold the substring and fewer
    matches of the whole search than the cap (`_expected_matches`): every tab would be read
    to its end anyway, and a count without a limit per tab lets the planner find the matches
    through the trigram index instead of reading every entry of each tab's range (the
    planner prices a substring comparison far below its cost, so with the limit it walks
    the range). The index only narrows: each of its rows is then read from the table.

    With `reads`, the tabs of a large count are read side by side, each by a statement of
    its own (`_count_tabs_side_by_side`). On PostgreSQL, a search in one tab that requires
    an indexed substring, and that the planner expects to match fewer than the cap,
    will be read to the tab's end (in its time range, `created_within`): that tab is cut
    into stretches of time read side by side (`_count_one_tab_in_stretches`).

    Without a search the counters are read, which is exact at any size."""
    if search is None:
        return CappedCounts(
            count_tasks(conn, organization_id, include_hidden=include_hidden), frozenset()
        )
    clause = and_(visible_filter(organization_id, include_hidden=include_hidden), search)
    substring_on_postgresql = (
        candidates is None and indexed_substring is not None and conn.dialect.name == "postgresql"
    )
    few_hold_it = (
        substring_on_postgresql
        and indexed_substring is not None
        and _expected_matches(conn, indexed_substring) < FEW_CANDIDATES
    )
    if candidates is not None:
        found = _count_by_tab(conn, clause, candidates)
    elif few_hold_it and _expected_matches(conn, clause) < cap:
        found = _count_by_tab(conn, clause, None)
    else:
        side_by_side = None
        if reads is not None:
            side_by_side = _count_tabs_side_by_side(
                conn, reads, organization_id, clause, cap + 1, tabs, include_hidden=include_hidden
            )
            if (
                side_by_side is None
                and tabs is not None
                and len(tabs) == 1
                and substring_on_postgresql
                and not few_hold_it  # then it was expected at the cap or past it
                and reads.workers > 1
                and not include_hidden
                and _expected_matches(conn, clause) < cap
            ):
                (tab,) = tabs
                side_by_side = _count_one_tab_in_stretches(
                    conn, reads, organization_id, clause, cap + 1, tab, created_within
                )
        found = (
            _count_each_tab_upto(conn, clause, cap + 1, tabs)
            if side_by_side is None
            else side_by_side
        )
    counts = {tab.value: 0 for tab in Tab}
    capped: set[str] = set()
    for tab_name, count in found:
        if count > cap:
            capped.add(tab_name)
        counts[tab_name] += min(count, cap)
    total = sum(counts.values())
    if capped or total > cap:
        capped.add(ALL_VIEW)
    counts[ALL_VIEW] = min(total, cap)
    return CappedCounts(counts, frozenset(capped))


def count_search(
    conn: Connection,
    organization_id: int,
    found: TaskSearch,
    *,
    exact: bool = False,
    cap: int = COUNT_CAP,
    reads: ParallelReads | None = None,
) -> CappedCounts:
    """The tab counts of a compiled task search: stopped at `cap` (`count_tasks_upto`), or,
    when `exact`, every match counted. `reads` (the database's `parallel_reads`) lets a
    large count read its tabs side by side, exact or not."""
    if exact:
        counts = count_tasks(
            conn,
            organization_id,
            search=found.clause,
            include_hidden=found.include_hidden,
            candidates=found.candidates,
            reads=reads,
            tabs=found.tabs,
        )
        return CappedCounts(counts, frozenset())
    return count_tasks_upto(
        conn,
        organization_id,
        search=found.clause,
        include_hidden=found.include_hidden,
        tabs=found.tabs,
        candidates=found.candidates,
        indexed_substring=found.indexed_substring,
        cap=cap,
        reads=reads,
        created_within=found.created_within,
    )


def add_events(conn: Connection, task: Task, events: Sequence[TaskEvent], *, now: datetime) -> None:
    """Record events on a task that change none of its columns (what a system task did)."""
    if events:
        conn.execute(
            insert(task_events),
            [_event_row(task.id, task.organization_id, event, now) for event in events],
        )


def list_events(
    conn: Connection, task: Task, *, limit: int = 100, after_id: int | None = None
) -> list[dict[str, Any]]:
    query = select(task_events).where(task_events.c.task_id == task.id)
    if after_id is not None:
        query = query.where(task_events.c.id > after_id)
    rows = conn.execute(query.order_by(task_events.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def latest_event_id(conn: Connection) -> int:
    """The id of the newest task event (0 without any)."""
    return int(conn.execute(select(func.coalesce(func.max(task_events.c.id), 0))).scalar_one())


_FEED_COLUMNS = (
    task_events.c.id,
    task_events.c.task_id,
    task_events.c.organization_id,
    task_events.c.at,
    task_events.c.kind,
    task_events.c.from_status,
    task_events.c.to_status,
    task_events.c.actor,
    task_events.c.message,
    tasks.c.status,
    tasks.c.tab,
    tasks.c.hidden,
    tasks.c.progress_collect,
    tasks.c.progress_process,
)


def events_with_tasks(
    conn: Connection, after: int, *, organization_id: int | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Task events with an id above `after`, oldest first, each with its task's status, tab,
    hidden flag and progress as they are now (of one organization, or of all)."""
    query = select(*_FEED_COLUMNS).join(tasks, tasks.c.id == task_events.c.task_id)
    query = query.where(task_events.c.id > after)
    if organization_id is not None:
        query = query.where(task_events.c.organization_id == organization_id)
    rows = conn.execute(query.order_by(task_events.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def progress_of_tasks_in(
    conn: Connection, statuses: Iterable[TaskStatus], organization_ids: Iterable[int]
) -> list[dict[str, Any]]:
    """Id, organization, status and progress of the tasks of these organizations in these
    statuses (served by the index on status that the processing queue uses)."""
    rows = conn.execute(
        select(
            tasks.c.id,
            tasks.c.organization_id,
            tasks.c.status,
            tasks.c.progress_collect,
            tasks.c.progress_process,
        ).where(
            tasks.c.status.in_([status.value for status in statuses]),
            tasks.c.organization_id.in_(list(organization_ids)),
        )
    ).mappings()
    return [dict(row) for row in rows]


def related_names(conn: Connection, rows: Sequence[Task]) -> dict[str, dict[int, str]]:
    """Site, explorer and zone names for a page of tasks, by id (for display)."""
    wanted = {
        "site": ({r.site_id for r in rows} - {None}, sites),
        "explorer": ({r.explorer_id for r in rows} - {None}, explorers),
        "hosted_zone": ({r.hosted_zone_id for r in rows} - {None}, hosted_zones),
    }
    names: dict[str, dict[int, str]] = {}
    for key, (ids, table) in wanted.items():
        names[key] = {}
        if ids:
            for row in conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids))):
                names[key][row.id] = row.name
    return names


def list_runs(
    conn: Connection, template: Task, *, limit: int = 50, before_id: int | None = None
) -> list[Task]:
    """Past and current runs of a recurring template, newest first."""
    query = _runs(before=before_id is not None)
    rows = conn.execute(query, _run_values(template, limit, before_id)).mappings().all()
    return [Task.from_row(row) for row in rows]


def list_run_columns(
    conn: Connection,
    template: Task,
    columns: Sequence[str],
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[list[Any]]:
    """`list_runs`, each run only the `columns` asked for, in their order (read by a statement
    prepared once: the recurring card lists its runs)."""
    before = before_id is not None
    prepared = prepared_select(
        ("runs", before, tuple(columns)),
        lambda: _runs(before=before).with_only_columns(*(tasks.c[name] for name in columns)),
    )
    return prepared.rows(conn, _run_values(template, limit, before_id))


def _runs(*, before: bool) -> Select[Any]:
    """A template's runs, newest first, before the id `before_id` when `before`; its bound
    values are `_run_values`."""
    query = select(tasks).where(
        tasks.c.parent_id == bindparam("template_id", type_=tasks.c.id.type),
        tasks.c.organization_id == bindparam("organization_id", type_=tasks.c.id.type),
        tasks.c.removed_at.is_(None),
    )
    if before:
        query = query.where(tasks.c.id < bindparam("before_id", type_=tasks.c.id.type))
    return query.order_by(tasks.c.id.desc()).limit(bindparam("limit", type_=Integer()))


def _run_values(template: Task, limit: int, before_id: int | None) -> dict[str, Any]:
    values = {
        "template_id": template.id,
        "organization_id": template.organization_id,
        "limit": limit,
    }
    if before_id is not None:
        values["before_id"] = before_id
    return values


def ids_filter(
    conn: Connection, column: ColumnElement[int], name: str, ids: Sequence[int]
) -> ColumnElement[bool]:
    """`column IN ids` as one bound value however many ids there are: a PostgreSQL array, or a
    JSON list SQLite unpacks (no statement text that grows with the list to build and parse)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(name, list(ids), type_=ARRAY(BigInteger)))
    listed = func.json_each(bindparam(name, json.dumps(list(ids)))).table_valued("value")
    return column.in_(select(listed.c.value))


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

    The runs copy their templates' `copied` columns inside the database, take the `fixed`
    values, and start as `create_task` starts a task (status `new`, version 1, their tab and
    its sort time). Each run gets its `created` event and each template a `spawned` event
    naming its run (`spawned_message` is the text before and after the run's id), and the
    tab counts change with them. A template that already has a run of `occurrence` (fired by
    another scheduler) gets none: the unique index on (parent_id, occurrence_at) refuses it,
    and it is left out of the runs returned.
    """
    if not template_ids:
        return []
    started = {
        "recur": False,
        "hidden": False,
        **fixed,
        "status": TaskStatus.NEW.value,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    started.update(
        placement({**started, "start_time": occurrence, "removed_at": None}, previous=None, now=now)
    )
    given = {
        "parent_id": tasks.c.id,
        "start_time": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        "occurrence_at": bindparam("spawn_occurrence", occurrence, type_=UTCDateTime),
        **{name: literal(value, tasks.c[name].type) for name, value in started.items()},
    }
    source = select(*(tasks.c[column] for column in copied), *given.values()).where(
        ids_filter(conn, tasks.c.id, "spawn_template_ids", template_ids)
    )
    upsert = pg_insert(tasks) if conn.dialect.name == "postgresql" else sqlite_insert(tasks)
    statement = (
        upsert.from_select([*copied, *given], source)
        .on_conflict_do_nothing(index_elements=[tasks.c.parent_id, tasks.c.occurrence_at])
        .returning(tasks.c.parent_id, *_NOTED_COLUMNS)  # parent first: the run's id is [1]
    )
    rows = conn.execute(statement).all()
    if not rows:
        return []
    spawned = [SpawnedRun(row[0], row[1], row[2]) for row in rows]
    _record_spawns(
        conn, [run.run_id for run in spawned], created_message, spawned_message, actor, now
    )
    per_organization = Counter(run.organization_id for run in spawned)
    for organization_id, count in sorted(per_organization.items()):
        _note_tab_change(conn, organization_id, started["tab"], started["hidden"], count)
    note_changes(
        conn,
        _noted_changes(ChangeKind.CREATED, (row[1:] for row in rows), [*copied, *given, *fixed]),
    )
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
        literal(EventKind.CREATED.value),
        literal(TaskStatus.NEW.value),
        literal(actor),
        literal(created_message),
    ).where(runs)
    template_event = select(
        tasks.c.parent_id,
        tasks.c.organization_id,
        at,
        literal(EventKind.SPAWNED.value),
        null(),
        literal(actor),
        literal(before) + cast(tasks.c.id, String) + literal(after),
    ).where(runs)
    columns = ["task_id", "organization_id", "at", "kind", "to_status", "actor", "message"]
    conn.execute(insert(task_events).from_select(columns, union_all(created, template_event)))
