"""How the frozen rows are built from the store's rows: each field from the column of the
same name (`from_columns`), so that a row type never depends on the order of columns.
A row type that is a `ColumnRow` has that as its `from_row`."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

_T = TypeVar("_T")


class Row(Protocol):
    """A row by column name: a database row mapping or a plain dict."""

    def __getitem__(self, column: str, /) -> Any: ...


def from_columns(row_type: type[_T], row: Row, **converted: Any) -> _T:
    """A `row_type` dataclass whose fields are the row's columns of the same names, except
    those `converted` gives (a JSON list as a tuple, text split into lines)."""
    names = row_type.__dataclass_fields__  # type: ignore[attr-defined]
    return row_type(**{name: converted[name] if name in converted else row[name] for name in names})


class ColumnRow:
    """A frozen row type whose `from_row` takes each field from the column of the same name;
    a type whose columns need converting overrides it, giving `from_columns` the converted."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return from_columns(cls, row)
