"""Reads of a fixed shape for the hot listings: compiled once, run as their SQL text, and their
values decoded column by column.

`conn.execute(select)` does the same work on every call. It builds the statement's cache key
(about 0.2 ms for a task page of 41 columns), finds the compiled form, and passes each value
through its type's result processor: on SQLite each JSON value goes through `json.loads` and its
two whitespace scans. A listing's first page without a search always has the same shape, only
its bound values differ. `PreparedSelect` compiles such a statement once per dialect. It binds
the values through their types, as SQLAlchemy would, and runs the text with `exec_driver_sql`,
so the engine's events and the caller's transaction are the same. The values come back as the
driver gives them, and `decode_rows` turns them into what the types would have produced.

A statement whose shape varies (a searched page) can still skip the per-value processing:
`undecoded` selects its columns as they are stored, and `decode_rows` decodes them the same way.
On a 1M-task SQLite database the Active tab's first page (its read transaction included) went
from 1.27 ms to 0.77 ms; the same statement on a bare DBAPI cursor takes 0.25 ms.
"""

from __future__ import annotations

import json
import json.scanner
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, Connection, Label, Select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine, UserDefinedType

Decoder = Callable[[Any], Any]

#: The C scanner behind `json.loads` (typeshed types its argument oddly, hence the cast).
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    cast(Any, json.JSONDecoder())
)


def json_text(value: Any) -> Any:
    """A JSON column's value from SQLite: its text read with the C scanner alone, which skips
    `json.loads`'s Python wrapper (the same result; anything unusual goes to `json.loads`). A
    number SQLite stored as such comes back as it is, as SQLAlchemy's own reader does."""
    if not isinstance(value, str):
        return value if isinstance(value, int | float) else json.loads(value)
    try:
        decoded, end = _scan(value, 0)
    except StopIteration:
        return json.loads(value)  # raises the JSONDecodeError json.loads would
    return decoded if end == len(value) else json.loads(value)


def _decoder(column_type: TypeEngine[Any], dialect: Dialect, coltype: object) -> Decoder | None:
    """What turns the driver's value of a column of `column_type` into the type's value."""
    if dialect.name == "sqlite" and isinstance(column_type, JSON):
        return json_text
    processor: Decoder | None = column_type.dialect_impl(dialect).result_processor(dialect, coltype)
    return processor


@dataclass(frozen=True)
class Decoders:
    """The decoders of one statement's columns on one dialect: (position, decoder) of those
    that have one."""

    steps: tuple[tuple[int, Decoder], ...]

    @classmethod
    def of(
        cls, types: Sequence[TypeEngine[Any]], dialect: Dialect, description: Sequence[Any]
    ) -> Decoders:
        steps = []
        for position, column_type in enumerate(types):
            decoder = _decoder(column_type, dialect, description[position][1])
            if decoder is not None:
                steps.append((position, decoder))
        return cls(tuple(steps))

    def decode(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        steps = self.steps
        decoded = []
        for row in rows:
            values = list(row)
            for position, decoder in steps:
                value = values[position]
                if value is not None:
                    values[position] = decoder(value)
            decoded.append(values)
        return decoded


class _Stored(UserDefinedType[Any]):
    """A column read as the driver gives it: no result processor."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "STORED"


#: One instance: a type's part of a statement's cache key is worked out once per instance.
_STORED = _Stored()
#: Each column read as stored, made once: the statements of searched pages are built on
#: every request, and their columns are always the same few dozen.
_stored_columns: dict[Any, Label[Any]] = {}


def undecoded(statement: Select[Any]) -> Select[Any]:
    """`statement` with each of its columns read as stored (decode with `decode_rows`)."""
    return statement.with_only_columns(*(_stored(column) for column in statement.selected_columns))


def _stored(column: Any) -> Label[Any]:
    stored = _stored_columns.get(column)
    if stored is None:
        stored = type_coerce(column, _STORED).label(column.key)
        if len(_stored_columns) < 1_000:
            _stored_columns[column] = stored
    return stored


_decoders: dict[tuple[str, tuple[TypeEngine[Any], ...]], Decoders] = {}


def decode_rows(
    conn: Connection, statement: Select[Any], values: Mapping[str, Any] | None = None
) -> list[list[Any]]:
    """Run `undecoded(statement)` and decode its rows as `statement`'s column types would."""
    result = conn.execute(undecoded(statement), dict(values or {}))
    types = tuple(column.type for column in statement.selected_columns)
    key = (conn.dialect.name, types)
    decoders = _decoders.get(key)
    if decoders is None:
        decoders = _decoders[key] = Decoders.of(types, conn.dialect, result.cursor.description)
    return decoders.decode(result.all())


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The bound values' names in the text's order (positional drivers), else None.
    order: tuple[str, ...] | None
    defaults: dict[str, Any]
    binders: dict[str, Decoder]


class PreparedSelect:
    """A SELECT of a fixed shape, whose bound values (`bindparam`s) change from call to call."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._types = tuple(column.type for column in statement.selected_columns)
        self._compiled: dict[str, _Compiled] = {}
        self._decoders: dict[str, Decoders] = {}
        self._lock = threading.Lock()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("a prepared statement cannot hold an expanding IN list")
        binders: dict[str, Decoder] = {}
        for name, bind in compiled.binds.items():
            binder = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if binder is not None:
                binders[name] = binder
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return _Compiled(compiled.string, order, dict(compiled.params), binders)

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[list[Any]]:
        """The decoded rows for these bound `values` (the others keep the statement's)."""
        dialect = conn.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.setdefault(dialect.name, self._compile(dialect))
        unknown = values.keys() - compiled.defaults.keys()
        if unknown:
            raise ValueError(f"the statement binds no value named {sorted(unknown)}")
        bound = {**compiled.defaults, **values}
        for name, binder in compiled.binders.items():
            if bound[name] is not None:
                bound[name] = binder(bound[name])
        parameters: Any = (
            tuple(bound[name] for name in compiled.order) if compiled.order is not None else bound
        )
        result = conn.exec_driver_sql(compiled.sql, parameters)
        decoders = self._decoders.get(dialect.name)
        if decoders is None:
            decoders = Decoders.of(self._types, dialect, result.cursor.description)
            self._decoders[dialect.name] = decoders
        return decoders.decode(result.all())


#: Every prepared statement of the process, by its caller's key (what it reads and its shape):
#: a few dozen at most, as the callers read fixed sets of columns.
_prepared: dict[Hashable, PreparedSelect] = {}


def prepared_select(key: Hashable, build: Callable[[], Select[Any]]) -> PreparedSelect:
    """The statement prepared under `key`, built by `build` the first time it is asked for."""
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = _prepared.setdefault(key, PreparedSelect(build()))
    return prepared
