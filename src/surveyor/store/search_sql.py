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
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from surveyor.core.search import Catalogue, Query, resolve
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
from surveyor.store.search_index import trigram_prefilter

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


#: Where a key's value lives: a column of the searched table, or one reached through a key.
SqlSource = ColumnElement[Any] | RelatedValue
SqlCatalogue = Catalogue[SqlSource]

Predicate = Callable[[ColumnElement[Any]], ColumnElement[bool]]


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
    condition = resolve(query, catalogue, now)
    if condition is None:
        return true()
    return _Compiler(catalogue, dialect_name, probe_with).condition(condition)


def compile_search(
    conn: Connection, query: Query | None, catalogue: SqlCatalogue, *, now: datetime
) -> ColumnElement[bool] | None:
    """The WHERE condition for a parsed search on `conn`'s database, with ages measured from
    now; None when there is nothing to search for."""
    if query is None or query.root is None:
        return None
    return compile_query(query, catalogue, dialect_name=conn.dialect.name, now=now, probe_with=conn)


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

    def common(self, candidates: Select[Any]) -> bool:
        """Whether the index finds `COMMON_MATCHES` rows or more (read no further)."""
        if self.probe_with is None:
            return False
        found = select(func.count()).select_from(candidates.limit(COMMON_MATCHES).subquery())
        return int(self.probe_with.execute(found).scalar_one()) >= COMMON_MATCHES

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        if isinstance(condition, AllOf):
            return and_(*(self.condition(part) for part in condition.parts))
        if isinstance(condition, AnyOf):
            return or_(*(self.condition(part) for part in condition.parts))
        if isinstance(condition, Negation):
            return not_(self.condition(condition.part))
        return self.restrict(self.catalogue.fields[condition.key].source, self.leaf(condition))

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
            return like  # PostgreSQL's pg_trgm GIN indexes serve ILIKE by themselves

        def predicate(column: ColumnElement[Any]) -> ColumnElement[bool]:
            # The FTS table narrows the rows; LIKE, as a recheck, keeps the meaning exact.
            candidates = trigram_prefilter(column, needle)
            if candidates is None or self.common(candidates):
                return like(column)
            return and_(column.table.c.id.in_(candidates), like(column))

        return predicate

    def like(self, pattern: str) -> Predicate:
        # SQLite's LIKE already ignores ASCII case; elsewhere ask for it.
        if self.dialect_name == "sqlite":
            return lambda column: column.like(pattern, escape=LIKE_ESCAPE)
        return lambda column: column.ilike(pattern, escape=LIKE_ESCAPE)

    @staticmethod
    def restrict(source: SqlSource, predicate: Predicate) -> ColumnElement[bool]:
        if isinstance(source, RelatedValue):
            related = select(source.related_id).where(predicate(source.value))
            return and_(source.foreign_key.is_not(None), source.foreign_key.in_(related))
        # NULL would make the term NULL, and NOT NULL is still not a match; guard it to false.
        if getattr(source, "nullable", True):
            return and_(source.is_not(None), predicate(source))
        return predicate(source)
