"""Schema migrations: `surveyor db upgrade`, also run by the console on start."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest schema).

    On SQLite, a migration that alters a table rebuilds it (copies it, drops the old one);
    with foreign keys enforced, that drop would set NULL or delete every row referring to
    it (tasks would lose their explorer). So foreign keys are off while migrating, and
    checked before the migration commits.

    A database already at the newest schema is left as it is without loading the migration
    scripts again (alembic would read every one of them to find nothing to do): the console
    checks this at each start."""
    if revision == "head" and current_revision(engine) == _head():
        return
    config = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(conn, on=False)
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if sqlite:
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                _sqlite_foreign_keys(conn, on=True)


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    # Outside any transaction (SQLite ignores this pragma inside one), so on the driver's
    # connection: SQLAlchemy would begin a transaction first.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows referring to missing ones: {broken[:10]}")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def _head() -> str | None:
    """The newest revision of the scripts this process runs (they do not change under it)."""
    return head_revision()
