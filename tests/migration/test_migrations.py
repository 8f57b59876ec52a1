"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from surveyor.store.migrate import current_revision, head_revision, upgrade
from surveyor.store.schema import metadata


def test_the_migrated_database_matches_the_declared_schema(db_engine: Engine) -> None:
    assert current_revision(db_engine) == head_revision()
    with db_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrading_twice_changes_nothing(db_engine: Engine) -> None:
    before = sorted(inspect(db_engine).get_table_names())
    upgrade(db_engine)
    assert sorted(inspect(db_engine).get_table_names()) == before
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
