"""Compile a search query to a SQLAlchemy Core condition, with every value a bound parameter.

The query is first resolved by the pure core (`surveyor.core.search.resolve`), so keys and
values are checked exactly as the reference evaluator checks them; this module only decides
how each typed condition reads in SQL. A term on a NULL value is false (never NULL), so that
`NOT` behaves as it does in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from surveyor.core.search import Catalogue, Query, matches, resolve
from surveyor.core.search.conditions import (
    AllOf,
    AnyOf,
    BoolEquals,
    Condition,
    Negation,
    NumberCompare,
    TextContains,
    TextLike,
    TimeCompare,
)
from surveyor.core.search.parser import Operator
from surveyor.store.search_index import (
    SEARCH_COLLATION,
    fold_ascii,
    folded,
    is_trigram_indexed,
    trigram_prefilter,
    trigram_serves,
)

LIKE_ESCAPE = "\\"
#: A substring the trigram index finds in at least this many rows is common: reading every
#: match out of the index would cost more than walking a listing's own index in order until
#: a page (or a capped count) is full, so LIKE alone serves it. A rarer one is looked up in
#: the index first, so a page of it no longer walks the whole listing index.
COMMON_MATCHES = 5_000


@dataclass(frozen=True)
class RelatedValue:
    """A value kept in another table: `foreign_key IN (SELECT related_id ... WHERE value ...)`."""

    foreign_key: ColumnElement[Any]
    related_id: ColumnElement[Any]
    value: ColumnElement[Any]


@dataclass(frozen=True)
class ClosedValues:
    """A column that only ever holds one of `values` (a status): a text term on it becomes
    `column IN (the values the term matches)`, decided by the reference evaluator, so the
    database compares whole values instead of running LIKE on every row."""

    column: ColumnElement[Any]
    values: tuple[str, ...]


#: Where a key's value lives: a column of the searched table, one reached through a key, or
#: a column of known values.
SqlSource = ColumnElement[Any] | RelatedValue | ClosedValues
SqlCatalogue = Catalogue[SqlSource]

Predicate = Callable[[ColumnElement[Any]], ColumnElement[bool]]


@dataclass(frozen=True)
class CompiledSearch:
    """A search as SQL: its WHERE condition, and the few rows it can match, when known."""

    clause: ColumnElement[bool]
    #: The ids of the searched table every match is among, fewer than `COMMON_MATCHES`: set
    #: when the search requires a rare substring that a trigram index looks up (SQLite).
    #: Reading these rows by id answers the search faster than any walk of an index.
    candidates: Select[Any] | None = None
    #: The condition of a substring the search requires (reached through AND alone) that a
    #: trigram index can look up, the first one: a database's planner may find every match
    #: through that index. None: no such term.
    indexed_substring: ColumnElement[bool] | None = None


def compile_query(
    query: Query,
    catalogue: SqlCatalogue,
    *,
    dialect_name: str,
    now: datetime,
    probe_with: Connection | None = None,
) -> ColumnElement[bool]:
    """The WHERE condition for `query`; raises `SearchError` for unknown keys or bad values.

    With `probe_with`, a substring the trigram index finds in many rows is left to LIKE alone
    (see `COMMON_MATCHES`); without it, the index always narrows first."""
    return _compile(query, catalogue, dialect_name, now, probe_with).clause


def _compile(
    query: Query,
    catalogue: SqlCatalogue,
    dialect_name: str,
    now: datetime,
    probe_with: Connection | None,
) -> CompiledSearch:
    condition = resolve(query, catalogue, now)
    if condition is None:
        return CompiledSearch(true())
    compiler = _Compiler(catalogue, dialect_name, probe_with)
    clause = compiler.condition(condition)
    return CompiledSearch(clause, compiler.candidates, compiler.indexed_substring)


def compile_search(
    conn: Connection, query: Query | None, catalogue: SqlCatalogue, *, now: datetime
) -> ColumnElement[bool] | None:
    """The WHERE condition for a parsed search on `conn`'s database, with ages measured from
    now; None when there is nothing to search for."""
    compiled = compile_search_with_candidates(conn, query, catalogue, now=now)
    return None if compiled is None else compiled.clause


def compile_search_with_candidates(
    conn: Connection, query: Query | None, catalogue: SqlCatalogue, *, now: datetime
) -> CompiledSearch | None:
    """`compile_search`, with the candidate rows when a rare substring bounds the search."""
    if query is None or query.root is None:
        return None
    return _compile(query, catalogue, conn.dialect.name, now, conn)


def contains_pattern(needle: str) -> str:
    """A LIKE pattern for "contains `needle`", with the user's wildcards taken literally."""
    return f"%{_escape_like(needle, wildcards=True)}%"


def exact_pattern(pattern: str) -> str:
    """A LIKE pattern that keeps the user's `%` and `_` as wildcards, all else literal."""
    return _escape_like(pattern, wildcards=False)


def _escape_like(text: str, *, wildcards: bool) -> str:
    special = (LIKE_ESCAPE, "%", "_") if wildcards else (LIKE_ESCAPE,)
    return "".join(LIKE_ESCAPE + char if char in special else char for char in text)


_COMPARE: dict[Operator, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    Operator.EQ: lambda column, value: column == value,
    Operator.GT: lambda column, value: column > value,
    Operator.GE: lambda column, value: column >= value,
    Operator.LT: lambda column, value: column < value,
    Operator.LE: lambda column, value: column <= value,
}


class _Compiler:
    def __init__(
        self, catalogue: SqlCatalogue, dialect_name: str, probe_with: Connection | None = None
    ) -> None:
        self.catalogue = catalogue
        self.dialect_name = dialect_name
        self.probe_with = probe_with
        #: what `CompiledSearch.candidates` says, once a required rare substring is found
        self.candidates: Select[Any] | None = None
        #: what `CompiledSearch.indexed_substring` says
        self.indexed_substring: ColumnElement[bool] | None = None
        self._rare: dict[tuple[str, str, str], Select[Any] | None] = {}

    def common(self, candidates: Select[Any]) -> bool:
        """Whether the index finds `COMMON_MATCHES` rows or more (read no further)."""
        if self.probe_with is None:
            return False
        found = select(func.count()).select_from(candidates.limit(COMMON_MATCHES).subquery())
        return int(self.probe_with.execute(found).scalar_one()) >= COMMON_MATCHES

    def rare_candidates(self, column: ColumnElement[Any], needle: str) -> Select[Any] | None:
        """The trigram index's candidates for `needle` in `column` when they are few (asked
        of the database once per column and needle), else None."""
        key = (str(getattr(column, "table", "")), str(getattr(column, "name", "")), needle)
        if key not in self._rare:
            found = trigram_prefilter(column, needle) if self.dialect_name == "sqlite" else None
            self._rare[key] = None if found is None or self.common(found) else found
        return self._rare[key]

    def condition(self, condition: Condition, *, required: bool = True) -> ColumnElement[bool]:
        """SQL for `condition`; `required`: every match of the whole search satisfies it
        (it is the root, or reached through AND alone)."""
        if isinstance(condition, AllOf):
            return and_(*(self.condition(part, required=required) for part in condition.parts))
        if isinstance(condition, AnyOf):
            return or_(*(self.condition(part, required=False) for part in condition.parts))
        if isinstance(condition, Negation):
            return not_(self.condition(condition.part, required=False))
        source = self.catalogue.fields[condition.key].source
        if isinstance(source, ClosedValues):
            values = [
                value for value in source.values if matches(condition, {condition.key: value})
            ]
            return source.column.in_(values) if values else false()
        compiled = self.restrict(source, self.leaf(condition))
        if (
            required
            and isinstance(condition, TextContains)
            and trigram_serves(source, condition.needle)
        ):
            if self.candidates is None:
                self.candidates = self.rare_candidates(source, condition.needle)
            if self.indexed_substring is None:
                self.indexed_substring = compiled
        return compiled

    def leaf(self, condition: Condition) -> Predicate:
        if isinstance(condition, TextContains):
            return self.contains(condition.needle)
        if isinstance(condition, TextLike):
            return self.like(exact_pattern(condition.pattern))
        if isinstance(condition, NumberCompare):
            compare, number = _COMPARE[condition.operator], condition.number
            return lambda column: compare(column, number)
        if isinstance(condition, TimeCompare):
            compare, instant = _COMPARE[condition.operator], condition.instant
            return lambda column: compare(column, instant)
        assert isinstance(condition, BoolEquals)
        flag = condition.value
        return lambda column: column == literal(flag, Boolean())

    def contains(self, needle: str) -> Predicate:
        like = self.like(contains_pattern(needle))
        if self.dialect_name != "sqlite":
            return like  # PostgreSQL's pg_trgm GIN indexes serve it by themselves

        def predicate(column: ColumnElement[Any]) -> ColumnElement[bool]:
            # The FTS table narrows the rows; LIKE, as a recheck, keeps the meaning exact.
            candidates = self.rare_candidates(column, needle)
            if candidates is None:
                return like(column)
            return and_(column.table.c.id.in_(candidates), like(column))

        return predicate

    def like(self, pattern: str) -> Predicate:
        # SQLite's LIKE already ignores ASCII case; PostgreSQL's ILIKE does so, and no more,
        # in the "C" collation. A column whose indexes hold it folded (`folded`) is compared
        # folded instead, both sides, with a plain LIKE: half the cost of ILIKE per row, and
        # the indexes serve it. Any other column keeps ILIKE, which the planner estimates
        # from the column's own statistics (it has none of an expression no index holds).
        if self.dialect_name == "sqlite":
            return lambda column: column.like(pattern, escape=LIKE_ESCAPE)
        lowered = fold_ascii(pattern)

        def predicate(column: ColumnElement[Any]) -> ColumnElement[bool]:
            if is_trigram_indexed(column):
                return folded(column).like(lowered, escape=LIKE_ESCAPE)
            return column.collate(SEARCH_COLLATION).ilike(pattern, escape=LIKE_ESCAPE)

        return predicate

    @staticmethod
    def restrict(
        source: ColumnElement[Any] | RelatedValue, predicate: Predicate
    ) -> ColumnElement[bool]:
        if isinstance(source, RelatedValue):
            related = select(source.related_id).where(predicate(source.value))
            return and_(source.foreign_key.is_not(None), source.foreign_key.in_(related))
        # NULL would make the term NULL, and NOT NULL is still not a match; guard it to false.
        if getattr(source, "nullable", True):
            return and_(source.is_not(None), predicate(source))
        return predicate(source)
