"""How the frozen rows are built from the store's rows: each field from the column of the
same name (`from_columns`), so that a row type never depends on the order of columns.
A field declared as a flag or an enum is made one from what its column holds (a flag may
come back as 0 or 1, an enum as its value); other conversions a row type names itself.
A row type that is a `ColumnRow` has that as its `from_row`."""

from __future__ import annotations

import types
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol, Self, TypeVar, Union, get_args, get_origin, get_type_hints

_T = TypeVar("_T")


class Row(Protocol):
    """A row by column name: a database row mapping or a plain dict."""

    def __getitem__(self, column: str, /) -> Any: ...


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _conversion(declared: Any) -> Callable[[Any], Any] | None:
    """How a column's value becomes a field declared as `declared`: a flag `bool`, an enum
    from its value, either of them optional; None for any other type (taken as it is)."""
    if declared is bool:
        return bool
    if isinstance(declared, type) and issubclass(declared, Enum):
        return declared
    if get_origin(declared) in (Union, types.UnionType):
        others = [arg for arg in get_args(declared) if arg is not type(None)]
        inner = _conversion(others[0]) if len(others) == 1 else None
        return _optional(inner) if inner is not None else None
    return None


_Conversions = tuple[tuple[str, Callable[[Any], Any] | None], ...]
#: Each row type's fields with their conversions, worked out once.
_CONVERSIONS: dict[type, _Conversions] = {}


def _conversions(row_type: type) -> _Conversions:
    found = _CONVERSIONS.get(row_type)
    if found is None:
        declared = get_type_hints(row_type)
        names = row_type.__dataclass_fields__  # type: ignore[attr-defined]
        found = tuple((name, _conversion(declared[name])) for name in names)
        _CONVERSIONS[row_type] = found
    return found


def from_columns(row_type: type[_T], row: Row, **converted: Any) -> _T:
    """A `row_type` dataclass whose fields are the row's columns of the same names, flags
    and enums made so, except those `converted` gives (a JSON list as a tuple, text split
    into lines)."""
    values = {}
    for name, convert in _conversions(row_type):
        if name in converted:
            values[name] = converted[name]
        else:
            value = row[name]
            values[name] = value if convert is None else convert(value)
    return row_type(**values)


class ColumnRow:
    """A frozen row type whose `from_row` takes each field from the column of the same name;
    a type whose columns need converting overrides it, giving `from_columns` the converted."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return from_columns(cls, row)
