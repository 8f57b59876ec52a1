"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, insert, inspect, select, text

from surveyor.store.migrate import alembic_config, current_revision, head_revision, upgrade
from surveyor.store.outliers import reasons_text, write_scores
from surveyor.store.schema import asset_outliers, assets, metadata, organizations, sites, tasks
from surveyor.store.search_index import (
    TRIGRAM_COLUMNS,
    fts_table_name,
    gin_index_name,
    is_search_index,
    is_search_index_table,
)


def _declared(dialect: str) -> Callable[..., bool]:
    """Leave out the trigram search's FTS tables and GIN indexes, which the declared schema
    cannot express (`test_the_trigram_indexes_exist` checks them), and PostgreSQL's form of
    `ix_tasks_search` (`test_postgresql_holds_the_search_keys_folded` checks it)."""

    def included(name: str | None, type_: str, *_: Any) -> bool:
        if type_ == "table":
            return not is_search_index_table(name or "")
        if type_ == "index":
            if dialect == "postgresql" and name == "ix_tasks_search":
                return False
            return not is_search_index(name)
        return True

    return included


def test_the_migrated_database_matches_the_declared_schema(db_engine: Engine) -> None:
    assert current_revision(db_engine) == head_revision()
    with db_engine.connect() as conn:
        included = _declared(conn.dialect.name)
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": included,
                # The declared side as well (`include_name` sees reflected names only).
                "include_object": lambda item, name, type_, *rest: included(name, type_),
            },
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def _index_definitions(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks'")
    )
    return {str(name): str(definition) for name, definition in rows}


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_postgresql_holds_the_search_keys_folded(db_engine: Engine) -> None:
    """On PostgreSQL `ix_tasks_search` has the declared keys, with the two text keys folded as
    the search compares them and the columns themselves included; each trigram index is of
    its column folded."""
    declared = next(ix for ix in tasks.indexes if ix.name == "ix_tasks_search")
    keys = [column.name for column in declared.columns]
    assert keys[-2:] == ["created_by", "name"]
    with db_engine.connect() as conn:
        definitions = _index_definitions(conn)
    folded = ", ".join(f'lower((({key})::text COLLATE "C"))' for key in keys[-2:])
    expected = f"USING btree ({', '.join(keys[:-2])}, {folded}) INCLUDE (created_by, name)"
    assert definitions["ix_tasks_search"].endswith(expected), definitions["ix_tasks_search"]
    for key in TRIGRAM_COLUMNS["tasks"]:
        # A varchar column is shown cast to text, a text column as it is.
        gin = rf'USING gin \(lower\(\(({key}|\({key}\)::text) COLLATE "C"\)\) gin_trgm_ops\)$'
        assert re.search(gin, definitions[gin_index_name("tasks", key)]), definitions


@pytest.mark.parametrize("fresh_engine", ["postgresql"], indirect=True)
def test_0028_downgrades_to_the_collated_indexes_and_back(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        head = _index_definitions(conn)
    _downgrade(fresh_engine, "0027")
    with fresh_engine.connect() as conn:
        before = _index_definitions(conn)
    assert before["ix_tasks_search"].endswith("cs_offline, created_by, name)")
    assert before[gin_index_name("tasks", "name")].endswith(
        'USING gin (name COLLATE "C" gin_trgm_ops)'
    )
    upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        assert _index_definitions(conn) == head


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


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_0024_moves_the_scores_back_onto_the_assets_when_downgraded(fresh_engine: Engine) -> None:
    """Downgraded, `asset_outliers` (0024) gives the scores and reasons back to the assets and
    the indexes are as 0021 made them; upgraded again, they move over once more."""
    reasons = ["TLS issuer 'CN=Rogue Issuer' seen on 1 of 40 assets"]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    upgrade(fresh_engine)
    with fresh_engine.begin() as conn:
        organization = conn.execute(
            insert(organizations).values(name="Acme", created_at=now)
        ).inserted_primary_key[0]
        site = conn.execute(
            insert(sites).values(
                organization_id=organization, name="HQ", created_at=now, updated_at=now
            )
        ).inserted_primary_key[0]
        scored, unscored = (
            conn.execute(
                insert(assets).values(
                    organization_id=organization,
                    site_id=site,
                    address=address,
                    address_key=address,
                    first_seen=now,
                    last_seen=now,
                    changed_at=now,
                )
            ).inserted_primary_key[0]
            for address in ("127.0.0.7", "127.0.0.8")
        )
        write_scores(conn, [(scored, 57, reasons_text(reasons))])

    _downgrade(fresh_engine, "0023")

    assert current_revision(fresh_engine) == "0023"
    found = inspect(fresh_engine)
    assert "asset_outliers" not in found.get_table_names()
    indexes = {ix["name"]: ix["column_names"] for ix in found.get_indexes("assets")}
    assert indexes["ix_assets_outlier"] == ["organization_id", "outlier", "id"]
    assert indexes["ix_assets_report_groups"][-1] == "outlier"
    with fresh_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, outlier, outlier_reasons FROM assets ORDER BY id"))
        kept = [(row.id, row.outlier, row.outlier_reasons) for row in rows]
    # The reasons come back as the JSON text or its value, as each backend reads it untyped.
    assert [(i, s, json.loads(r) if isinstance(r, str) else r) for i, s, r in kept] == [
        (scored, 57, reasons),
        (unscored, None, None),
    ]

    upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        moved = conn.execute(select(asset_outliers)).mappings().all()
    assert [dict(row) for row in moved] == [
        {"asset_id": scored, "organization_id": organization, "score": 57, "reasons": reasons}
    ]
