"""A parsed query resolved against a catalogue: typed conditions both evaluators share.

Resolving is where keys are checked, values are read as their kind, and ages become instants
(relative to an explicit `now`), so the SQL compiler and the reference evaluator can only
differ in how they compare, never in what a query means.

Meaning per kind:
- text: `key:v` contains v; `key:=v` matches v whole, `%` any run and `_` one character.
  Both ignore ASCII case. `>`, `<` and friends are refused.
- number: `key:5` and `key:=5` are equality; `> >= < <=` compare.
- time, absolute: `key:2026-11-01` (or `=`) is within that day (or minute, second...);
  `>` is after it ends, `>=` from its start, `<` before its start, `<=` before it ends.
- time, age: `key:<1week` is newer than a week ago (within the last week), `key:>30days` older
  than 30 days ago; `<=`/`>=` include the boundary; no operator or `=` mean `<`.
- bool: `key:true`, `key:f`; only `=` is accepted as an operator.
A record whose value is missing (NULL) fails every term; `NOT` then turns that into a match.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from surveyor.core.search.errors import SearchError
from surveyor.core.search.fields import Catalogue, FieldKind
from surveyor.core.search.parser import And, Node, Not, Operator, Query, Term
from surveyor.core.search.values import (
    before_now,
    parse_age,
    parse_bool,
    parse_instant,
    parse_number,
)


@dataclass(frozen=True)
class TextContains:
    key: str
    needle: str


@dataclass(frozen=True)
class TextLike:
    """A whole-value match where `%` is any run of characters and `_` one character."""

    key: str
    pattern: str


@dataclass(frozen=True)
class NumberCompare:
    key: str
    operator: Operator
    number: int


@dataclass(frozen=True)
class TimeCompare:
    key: str
    operator: Operator
    instant: datetime


@dataclass(frozen=True)
class BoolEquals:
    key: str
    value: bool


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    part: Condition


Leaf = TextContains | TextLike | NumberCompare | TimeCompare | BoolEquals
Condition = Leaf | AllOf | AnyOf | Negation


def resolve(query: Query, catalogue: Catalogue[Any], now: datetime) -> Condition | None:
    """The typed condition a query stands for, or None when it matches everything.

    Raises `SearchError` for an unknown key or a value that does not fit its key.
    """
    if now.tzinfo is None:
        raise ValueError("search needs an aware `now`")
    if query.root is None:
        return None
    return _Resolver(catalogue, now).node(query.root)


def validate(query: Query, catalogue: Catalogue[Any], now: datetime) -> None:
    """Raise `SearchError` if the query does not fit the catalogue; otherwise do nothing."""
    resolve(query, catalogue, now)


class _Resolver:
    def __init__(self, catalogue: Catalogue[Any], now: datetime) -> None:
        self.catalogue = catalogue
        self.now = now

    def node(self, node: Node) -> Condition:
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            return Negation(self.node(node.operand))
        parts = tuple(self.node(operand) for operand in node.operands)
        return AllOf(parts) if isinstance(node, And) else AnyOf(parts)

    def term(self, term: Term) -> Condition:
        if term.key is None:
            return self.bare(term)
        field = self.catalogue.fields.get(term.key)
        if field is None:
            raise self.unknown_key(term.key, term.position)
        if field.kind is FieldKind.TEXT:
            return _text(term.key, term)
        if field.kind is FieldKind.NUMBER:
            number = parse_number(term.value, term.value_position)
            return NumberCompare(term.key, term.operator or Operator.EQ, number)
        if field.kind is FieldKind.TIME:
            return self.time(term.key, term)
        _refuse_comparison(term, "a boolean")
        return BoolEquals(term.key, parse_bool(term.value, term.value_position))

    def bare(self, term: Term) -> Condition:
        if term.operator not in (None, Operator.EQ):
            raise SearchError(
                f"'{term.operator}' at position {term.operator_position} needs a key,"
                f" for example id:{term.operator}{term.value}",
                term.operator_position,
            )
        return AnyOf(tuple(_text(key, term) for key in self.catalogue.bare_keys))

    def time(self, key: str, term: Term) -> Condition:
        age = parse_age(term.value, term.value_position)
        if age is not None:
            since = before_now(self.now, age, term.value, term.value_position)
            operator = {
                None: Operator.GT,
                Operator.EQ: Operator.GT,
                Operator.LT: Operator.GT,
                Operator.LE: Operator.GE,
                Operator.GT: Operator.LT,
                Operator.GE: Operator.LE,
            }[term.operator]
            return TimeCompare(key, operator, since)
        interval = parse_instant(term.value, term.value_position)
        if interval is None:
            raise SearchError(
                f"'{term.value}' is not a time; use a date like 2026-11-01, a date-time like"
                f" 2026-11-01T10:00:00Z or an age like 2h (at position {term.value_position})",
                term.value_position,
            )
        if term.operator is Operator.GT:
            return TimeCompare(key, Operator.GE, interval.end)
        if term.operator is Operator.GE:
            return TimeCompare(key, Operator.GE, interval.start)
        if term.operator is Operator.LT:
            return TimeCompare(key, Operator.LT, interval.start)
        if term.operator is Operator.LE:
            return TimeCompare(key, Operator.LT, interval.end)
        return AllOf(
            (
                TimeCompare(key, Operator.GE, interval.start),
                TimeCompare(key, Operator.LT, interval.end),
            )
        )

    def unknown_key(self, key: str, position: int) -> SearchError:
        valid = self.catalogue.valid_keys
        details: dict[str, Any] = {"key": key, "valid_keys": valid}
        hint = ""
        close = difflib.get_close_matches(key, valid, n=1)
        if close:
            details["suggestion"] = close[0]
            hint = f" (did you mean '{close[0]}'?)"
        return SearchError(
            f"unknown key '{key}' at position {position}{hint}; valid keys: {', '.join(valid)}",
            position,
            details,
        )


def _text(key: str, term: Term) -> Condition:
    _refuse_comparison(term, "text")
    if term.operator is Operator.EQ:
        return TextLike(key, term.value)
    return TextContains(key, term.value)


def _refuse_comparison(term: Term, kind: str) -> None:
    if term.operator not in (None, Operator.EQ):
        subject = f"key '{term.key}'" if term.key else "a bare value"
        raise SearchError(
            f"'{term.operator}' does not apply to {subject}, which is {kind}"
            f" (at position {term.operator_position})",
            term.operator_position,
        )
