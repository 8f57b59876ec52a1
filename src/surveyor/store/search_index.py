"""Trigram indexes for the substring keys of the search language (SPEC §11).

A `key:value` term on a text key asks for rows whose value contains `value`; a B-tree index
cannot serve that, so every such search read the whole table. These columns get a trigram
index instead:

- SQLite: one FTS5 table per searched table, `<table>_trigram`, with the `trigram`
  tokenizer, as an external-content index of the table (no second copy of the text), kept in
  step by three triggers (insert, delete, update of the indexed columns).
- PostgreSQL: a `pg_trgm` GIN index per column, of the column folded as the search compares
  it (`folded`: ASCII letters lowered, in the "C" collation; since migration 0028), which
  the search's `LIKE '%...%'` on that same expression uses by itself.

Migration 0023 creates them and fills them from existing rows; `create_trigram_indexes` is
what it runs. A later migration that rebuilds an indexed table on SQLite (a batch alter
copies it and drops the old one) drops its triggers with it: it must call
`create_trigram_triggers` for that table again.

The search compiler (`search_sql.py`) reads `trigram_prefilter` to narrow a contains-term
through the FTS table on SQLite; the exact LIKE stays as a recheck, so an index only ever
narrows which rows are compared, never what matches. Needles shorter than three characters
have no trigram: they are answered by LIKE alone.
"""

from __future__ import annotations

import string
from typing import Any, Literal, TypeGuard

from sqlalchemy import Column, ColumnElement, Connection, Select, column, func, select, table

#: The text columns with a trigram index, by table, as migration 0023 made them. The
#: migrations that rebuild those indexes (0023, 0027, 0028) read this, not `TRIGRAM_COLUMNS`:
#: a later change of the list is a migration of its own, which leaves these alone.
INDEXED_BY_0023: dict[str, tuple[str, ...]] = {
    "tasks": ("name", "description", "targets", "error", "created_by"),
    "assets": ("mac", "mac_vendor", "os", "os_version", "device_type", "description", "seen_by"),
    "services": (
        "name",
        "product",
        "version",
        "cpe",
        "banner",
        "http_title",
        "http_server",
        "tls_subject",
        "tls_issuer",
    ),
}

#: The text columns with a trigram index now, by table. Every table here has an integer `id`.
TRIGRAM_COLUMNS: dict[str, tuple[str, ...]] = INDEXED_BY_0023

#: A trigram needs three characters; a shorter needle is matched by LIKE alone.
MIN_NEEDLE = 3

_FTS_SUFFIX = "_trigram"
#: The tables FTS5 keeps beside each virtual table.
_FTS_SHADOWS = ("_data", "_idx", "_docsize", "_config", "_content")


def fts_table_name(table_name: str) -> str:
    return table_name + _FTS_SUFFIX


def gin_index_name(table_name: str, column_name: str) -> str:
    return f"ix_{table_name}_{column_name}_trgm"


def is_search_index_table(name: str) -> bool:
    """Whether `name` is one of the FTS tables (or their shadow tables) kept here: they hold
    no data of their own, and the declared schema does not list them."""
    return any(
        name in (fts_table_name(base), *(fts_table_name(base) + s for s in _FTS_SHADOWS))
        for base in TRIGRAM_COLUMNS
    )


def is_search_index(name: str | None) -> bool:
    """Whether `name` is one of the PostgreSQL trigram indexes kept here."""
    return name is not None and any(
        name == gin_index_name(base, col) for base, cols in TRIGRAM_COLUMNS.items() for col in cols
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sqlite_triggers(table_name: str, columns: tuple[str, ...]) -> list[str]:
    fts = _quote(fts_table_name(table_name))
    names = ", ".join(_quote(name) for name in columns)
    new = ", ".join(f"new.{_quote(name)}" for name in columns)
    old = ", ".join(f"old.{_quote(name)}" for name in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"
    base = _quote(table_name)
    return [
        f"CREATE TRIGGER {_quote(table_name + '_trigram_ai')} AFTER INSERT ON {base}"
        f" BEGIN {insert} END",
        f"CREATE TRIGGER {_quote(table_name + '_trigram_ad')} AFTER DELETE ON {base}"
        f" BEGIN {delete} END",
        f"CREATE TRIGGER {_quote(table_name + '_trigram_au')} AFTER UPDATE OF {names}, id"
        f" ON {base} BEGIN {delete} {insert} END",
    ]


def create_trigram_triggers(
    conn: Connection, table_name: str, columns: tuple[str, ...] | None = None
) -> None:
    """(Re)create the SQLite triggers that keep `table_name`'s FTS table in step."""
    columns = TRIGRAM_COLUMNS[table_name] if columns is None else columns
    for suffix in ("_trigram_ai", "_trigram_ad", "_trigram_au"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {_quote(table_name + suffix)}")
    for statement in _sqlite_triggers(table_name, columns):
        conn.exec_driver_sql(statement)


#: The collation the search compares text in on PostgreSQL: under "C", `lower` and `ILIKE`
#: fold ASCII letters only, as the reference evaluator and SQLite's LIKE do, whatever the
#: database's own collation (and without the cost of full Unicode case mapping on every row).
SEARCH_COLLATION = "C"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def folded(text: ColumnElement[Any]) -> ColumnElement[str]:
    """`text` as the search compares it on PostgreSQL: `lower` in the "C" collation. Its
    trigram indexes and `ix_tasks_search` hold this same expression, so a plain (and cheap)
    `LIKE` on it is served by them, and read from the index rather than computed per row."""
    return func.lower(text.collate(SEARCH_COLLATION))


def fold_ascii(text: str) -> str:
    """`text` with ASCII letters lowered and nothing else: what `folded` does to a value."""
    return text.translate(_ASCII_LOWER)


#: What a PostgreSQL trigram index holds of its column: the column itself (migration 0023),
#: the column in the "C" collation (0027), or `folded` (0028).
GinForm = Literal["column", "collated", "folded"]


def _gin_text(name: str, form: GinForm) -> str:
    quoted = _quote(name)
    if form == "column":
        return quoted
    collated = f"({quoted} COLLATE {_quote(SEARCH_COLLATION)})"
    return collated if form == "collated" else f"lower({collated})"


def create_trigram_indexes(
    conn: Connection, indexed: dict[str, tuple[str, ...]], *, form: GinForm
) -> None:
    """Create the trigram indexes of `indexed` (table: columns) and fill them from the rows
    already there. On PostgreSQL each index is of the column in `form`: the search
    compiler's comparisons are on `folded`, so the planner can use only that form. Only
    migrations call this, each with the list and the form of its own revision."""
    if conn.dialect.name == "sqlite":
        for table_name, columns in indexed.items():
            fts = _quote(fts_table_name(table_name))
            names = ", ".join(_quote(name) for name in columns)
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content={_quote(table_name)},"
                " content_rowid='id', tokenize='trigram')"
            )
            conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
            create_trigram_triggers(conn, table_name, columns)
        return
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table_name, columns in indexed.items():
        for name in columns:
            conn.exec_driver_sql(
                f"CREATE INDEX {_quote(gin_index_name(table_name, name))} ON {_quote(table_name)}"
                f" USING gin ({_gin_text(name, form)} gin_trgm_ops)"
            )


def drop_trigram_indexes(conn: Connection, indexed: dict[str, tuple[str, ...]]) -> None:
    """Undo `create_trigram_indexes` (the pg_trgm extension stays: others may use it)."""
    for table_name, columns in indexed.items():
        if conn.dialect.name == "sqlite":
            for suffix in ("_trigram_ai", "_trigram_ad", "_trigram_au"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {_quote(table_name + suffix)}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(fts_table_name(table_name))}")
        else:
            for name in columns:
                conn.exec_driver_sql(
                    f"DROP INDEX IF EXISTS {_quote(gin_index_name(table_name, name))}"
                )


def fts_phrase(needle: str) -> str:
    """An FTS5 query for `needle` as one literal phrase (every character taken as it is)."""
    return '"' + needle.replace('"', '""') + '"'


def is_trigram_indexed(source: object) -> TypeGuard[Column[Any]]:
    """Whether `source` is a column with a trigram index (on PostgreSQL, of it `folded`)."""
    if not isinstance(source, Column):
        return False
    table_name = getattr(source.table, "name", None)
    return table_name in TRIGRAM_COLUMNS and source.name in TRIGRAM_COLUMNS[table_name]


def trigram_serves(source: object, needle: str) -> TypeGuard[Column[Any]]:
    """Whether a trigram index can look up `needle` in `source` (an indexed column, and a
    needle long enough to have a trigram)."""
    return len(needle) >= MIN_NEEDLE and is_trigram_indexed(source)


def trigram_prefilter(source: ColumnElement[Any], needle: str) -> Select[Any] | None:
    """The ids of `source`'s table whose column may contain `needle` (a superset of the exact
    matches, found through the SQLite FTS table), or None when no index serves it."""
    if not trigram_serves(source, needle):
        return None
    table_name = source.table.name
    fts = table(fts_table_name(table_name), column("rowid"), column(source.name))
    return select(fts.c.rowid).where(fts.c[source.name].match(fts_phrase(needle)))
