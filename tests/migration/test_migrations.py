"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from surveyor.store.migrate import current_revision, head_revision, upgrade
from surveyor.store.schema import metadata
from surveyor.store.search_index import (
    TRIGRAM_COLUMNS,
    fts_table_name,
    gin_index_name,
    is_search_index,
    is_search_index_table,
)


def _declared(name: str | None, type_: str, *_: Any) -> bool:
    """Leave out the trigram search's FTS tables and GIN indexes, which the declared schema
    cannot express; `test_the_trigram_indexes_exist` checks them."""
    if type_ == "table":
        return not is_search_index_table(name or "")
    if type_ == "index":
        return not is_search_index(name)
    return True


def test_the_migrated_database_matches_the_declared_schema(db_engine: Engine) -> None:
    assert current_revision(db_engine) == head_revision()
    with db_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _declared}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrading_twice_changes_nothing(db_engine: Engine) -> None:
    before = sorted(inspect(db_engine).get_table_names())
    indexes = sorted(str(ix["name"]) for ix in inspect(db_engine).get_indexes("tasks"))
    upgrade(db_engine)
    assert sorted(inspect(db_engine).get_table_names()) == before
    assert sorted(str(ix["name"]) for ix in inspect(db_engine).get_indexes("tasks")) == indexes
    assert {
        "tasks",
        "task_events",
        "organizations",
        "users",
        "memberships",
        "api_tokens",
        "sites",
        "hosted_zones",
        "explorers",
        "audit_events",
    } <= set(before)


def test_the_trigram_indexes_exist(db_engine: Engine) -> None:
    """Every substring key's column has its trigram index: an FTS5 table with its three
    triggers on SQLite, a GIN index on PostgreSQL."""
    with db_engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            triggers = {
                row[0]
                for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            }
            for table_name in TRIGRAM_COLUMNS:
                sql = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = :name"),
                    {"name": fts_table_name(table_name)},
                ).scalar_one()
                assert "fts5" in sql
                assert "trigram" in sql
                for suffix in ("_trigram_ai", "_trigram_ad", "_trigram_au"):
                    assert table_name + suffix in triggers
        else:
            for table_name, columns in TRIGRAM_COLUMNS.items():
                found = {ix["name"] for ix in inspect(conn).get_indexes(table_name)}
                assert {gin_index_name(table_name, name) for name in columns} <= found
