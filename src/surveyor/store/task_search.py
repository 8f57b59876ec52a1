"""The keys tasks can be searched by (SPEC §11), mapped onto the `tasks` table.

Reference records for `surveyor.core.search.evaluate` are dicts with these keys; `site`,
`explorer` and `hosted_zone` hold names (or None).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select

from surveyor.core.search import (
    Catalogue,
    Condition,
    FieldKind,
    SearchField,
    matches,
    mentions_key,
    parse,
    resolve,
)
from surveyor.core.search.conditions import AllOf, AnyOf, Negation, TimeCompare
from surveyor.core.search.parser import Operator
from surveyor.core.tasks import TAB_SPECS, TaskStatus
from surveyor.store.schema import explorers, hosted_zones, sites, tasks
from surveyor.store.search_sql import (
    ClosedValues,
    RelatedValue,
    SqlCatalogue,
    compile_search_with_candidates,
)

__all__ = [
    "HIDDEN_KEY",
    "TASK_SEARCH",
    "TaskSearch",
    "compile_task_search",
    "mentions_key",
    "tabs_of_search",
]

#: Hidden tasks are left out of results unless the query names this key.
HIDDEN_KEY = "hidden"


_TEXT, _NUMBER, _TIME, _BOOL = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.TIME, FieldKind.BOOL
_t = tasks.c

TASK_SEARCH: SqlCatalogue = Catalogue(
    fields={
        "id": SearchField(_NUMBER, _t.id),
        "name": SearchField(_TEXT, _t.name),
        "description": SearchField(_TEXT, _t.description),
        "type": SearchField(_TEXT, _t.type),
        "status": SearchField(_TEXT, ClosedValues(_t.status, tuple(s.value for s in TaskStatus))),
        "site": SearchField(_TEXT, RelatedValue(_t.site_id, sites.c.id, sites.c.name)),
        "explorer": SearchField(
            _TEXT, RelatedValue(_t.explorer_id, explorers.c.id, explorers.c.name)
        ),
        "hosted_zone": SearchField(
            _TEXT, RelatedValue(_t.hosted_zone_id, hosted_zones.c.id, hosted_zones.c.name)
        ),
        "created_by": SearchField(_TEXT, _t.created_by),
        "parent_id": SearchField(_NUMBER, _t.parent_id),
        "recur": SearchField(_BOOL, _t.recur),
        HIDDEN_KEY: SearchField(_BOOL, _t.hidden),
        "error": SearchField(_TEXT, _t.error),
        "targets": SearchField(_TEXT, _t.targets),
        "created_at": SearchField(_TIME, _t.created_at),
        "updated_at": SearchField(_TIME, _t.updated_at),
        "start_time": SearchField(_TIME, _t.start_time),
        "finished_at": SearchField(_TIME, _t.finished_at),
        "new": SearchField(_NUMBER, _t.cs_new),
        "changed": SearchField(_NUMBER, _t.cs_changed),
        "offline": SearchField(_NUMBER, _t.cs_offline),
        "online": SearchField(_NUMBER, _t.cs_online),
        "unchanged": SearchField(_NUMBER, _t.cs_unchanged),
    }
)


_STATUS_KEY = "status"


@dataclass(frozen=True)
class TaskSearch:
    """A task search compiled for one database."""

    #: the WHERE condition (None: no search)
    clause: ColumnElement[bool] | None
    #: the search names `hidden`, so hidden tasks are not left out
    include_hidden: bool
    #: the only tabs it can find tasks in (`tabs_of_search`); None: any
    tabs: frozenset[str] | None
    #: the few ids every match is among, when a rare substring bounds the search
    #: (`CompiledSearch.candidates`); None: unknown
    candidates: Select[Any] | None = None
    #: the condition of a required substring a trigram index can look up
    #: (`CompiledSearch.indexed_substring`); None: no such term
    indexed_substring: ColumnElement[bool] | None = None
    #: where the search bounds `created_at` (after, before; None: open), by its top-level
    #: terms: where its matches lie in time, to share a count's work (`created_within`)
    created_within: tuple[datetime | None, datetime | None] = (None, None)


def compile_task_search(conn: Connection, text: str | None, *, now: datetime) -> TaskSearch:
    """The search as SQL for `conn`'s database, ages measured from `now`; raises
    SearchError naming what is wrong."""
    query = parse(text or "")
    compiled = compile_search_with_candidates(conn, query, TASK_SEARCH, now=now)
    condition = resolve(query, TASK_SEARCH, now)
    return TaskSearch(
        None if compiled is None else compiled.clause,
        mentions_key(query, HIDDEN_KEY),
        _tabs_of_condition(condition),
        None if compiled is None else compiled.candidates,
        None if compiled is None else compiled.indexed_substring,
        (None, None) if condition is None else created_within(condition),
    )


def created_within(condition: Condition) -> tuple[datetime | None, datetime | None]:
    """The bounds on `created_at` every match of `condition` keeps to, as far as the terms
    it requires say (`name:audit created_at:<90days`: after 90 days ago; a day is a range);
    None for a side they leave open. A term under OR or NOT is not judged."""
    after: datetime | None = None
    before: datetime | None = None
    for part in _required(condition):
        if not isinstance(part, TimeCompare) or part.key != "created_at":
            continue
        if part.operator in (Operator.GT, Operator.GE, Operator.EQ):
            after = part.instant if after is None else max(after, part.instant)
        if part.operator in (Operator.LT, Operator.LE, Operator.EQ):
            before = part.instant if before is None else min(before, part.instant)
    return after, before


def tabs_of_search(text: str | None, now: datetime) -> frozenset[str] | None:
    """The tabs a task the search finds can be in, judged by the statuses the search allows
    (a status belongs to one tab, `new` to two); None when it allows them all.

    `status:processed site:dc-3` finds tasks only in Completed: counting it per tab needs no
    walk through the other tabs to find none there. What the search says of other keys is
    not judged, so the answer may name a tab where nothing matches, never leave one out."""
    return _tabs_of_condition(resolve(parse(text or ""), TASK_SEARCH, now))


def _required(condition: Condition) -> list[Condition]:
    """The conditions every match meets: the parts of an AND, in depth, or the one."""
    if isinstance(condition, AllOf):
        return [leaf for part in condition.parts for leaf in _required(part)]
    return [condition]


def _tabs_of_condition(condition: Condition | None) -> frozenset[str] | None:
    allowed = None if condition is None else _statuses(condition)
    if allowed is None:
        return None
    return frozenset(spec.tab.value for spec in TAB_SPECS.values() if spec.statuses & allowed)


def _statuses(condition: Condition) -> frozenset[TaskStatus] | None:
    """Statuses a task matching `condition` may have (more, never fewer); None: any."""
    if _on_status_only(condition):
        return frozenset(
            status for status in TaskStatus if matches(condition, {_STATUS_KEY: status.value})
        )
    if isinstance(condition, AllOf):
        known = [found for part in condition.parts if (found := _statuses(part)) is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(condition, AnyOf):
        found_each = [_statuses(part) for part in condition.parts]
        if any(found is None for found in found_each):
            return None
        return frozenset().union(*found_each)  # type: ignore[arg-type]
    return None  # another key, or NOT of something that is not about the status alone


def _on_status_only(condition: Condition) -> bool:
    if isinstance(condition, AllOf | AnyOf):
        return all(_on_status_only(part) for part in condition.parts)
    if isinstance(condition, Negation):
        return _on_status_only(condition.part)
    return condition.key == _STATUS_KEY
