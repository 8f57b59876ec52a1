"""The reference evaluator: a query applied to one plain record, in Python.

It defines what the SQL compiler must return. Text comparison lowers ASCII letters only,
which is what SQLite's LIKE does, and PostgreSQL's ILIKE in the "C" collation (the compiler
asks for it); other letters compare exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

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
    resolve,
)
from surveyor.core.search.fields import Catalogue
from surveyor.core.search.parser import Operator, Query

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

COMPARE: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQ: operator.eq,
    Operator.GT: operator.gt,
    Operator.GE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LE: operator.le,
}


def evaluate(
    query: Query, record: Mapping[str, Any], catalogue: Catalogue[Any], now: datetime
) -> bool:
    """Whether `record` (a mapping with the catalogue's keys) matches `query` at time `now`."""
    condition = resolve(query, catalogue, now)
    return condition is None or matches(condition, record)


def matches(condition: Condition, record: Mapping[str, Any]) -> bool:
    """Whether `record` satisfies an already resolved condition."""
    if isinstance(condition, AllOf):
        return all(matches(part, record) for part in condition.parts)
    if isinstance(condition, AnyOf):
        return any(matches(part, record) for part in condition.parts)
    if isinstance(condition, Negation):
        return not matches(condition.part, record)
    value = record[condition.key]
    if value is None:
        return False
    if isinstance(condition, TextContains):
        return ascii_lower(condition.needle) in ascii_lower(value)
    if isinstance(condition, TextLike):
        return like_matches(ascii_lower(value), ascii_lower(condition.pattern))
    if isinstance(condition, NumberCompare):
        return COMPARE[condition.operator](value, condition.number)
    if isinstance(condition, TimeCompare):
        return COMPARE[condition.operator](value, condition.instant)
    assert isinstance(condition, BoolEquals)
    return bool(value) is condition.value


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only, as SQLite's LIKE folds case."""
    return text.translate(_ASCII_LOWER)


def like_matches(text: str, pattern: str) -> bool:
    """SQL LIKE without an escape character: `%` any run, `_` one character, all else literal.

    Greedy matching with one backtrack point keeps this linear-ish, where a regex could
    backtrack exponentially on patterns like `%a%a%a%b`.
    """
    t = p = 0
    star = -1
    star_text = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "%":
            star, star_text = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("_", text[t]):
            t += 1
            p += 1
        elif star >= 0:
            star_text += 1
            t, p = star_text, star + 1
        else:
            return False
    return all(char == "%" for char in pattern[p:])
