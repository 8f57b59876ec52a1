"""Fixtures shared by every tier: the database backends every store test runs on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import Engine, func, select, text

from surveyor.security import passwords
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from surveyor.store.schema import metadata, task_tab_counts, tasks
from surveyor.testing.postgres import throwaway_postgres
from surveyor.testing.slapd import SlapdServer, generate_computers, private_slapd
from tests.support.ldap import LAB_COMPUTER_COUNT

if TYPE_CHECKING:
    from tests.support.object_store import ObjectStore

#: The processes the tests start (consoles, workers, explorers and the CLI: hundreds in a run)
#: keep the compiled bytecode of Surveyor's own modules next to their sources, instead of
#: compiling every module again at each start as PYTHONDONTWRITEBYTECODE=1 (set on the
#: machines this project runs on) makes them do: about a quarter of a second of CPU per
#: console start. (`make test` does not pass the variable on, and compiles the sources and the
#: installed packages before the run.)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

BACKENDS = ("sqlite", "postgresql")
#: The order `make test` hands test files to its processes (`--no-loadscope-reorder` keeps it;
#: xdist would otherwise start with the files that have the most tests): the tiers whose files
#: are few and long first, and the many short unit files last, so that at the end no process
#: sits idle while the other finishes a long file. The lab's timing-sensitive scans (a lossy
#: host) run beside the light integration files, not beside the acceptance tier's scans, and
#: before them: after them, the lab's longest file (70 s) started late and the other
#: processes waited about 30 s for it at the end. In this order the four processes of a
#: full run ended within 2 s of each other.
TIERS_IN_ORDER = ("acceptance", "e2e", "migration", "lab", "integration", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def tier(item: pytest.Item) -> int:
        parts = item.nodeid.split("/")
        name = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
        return TIERS_IN_ORDER.index(name) if name in TIERS_IN_ORDER else len(TIERS_IN_ORDER)

    items.sort(key=tier)  # stable: within a tier, files and tests keep pytest's order


#: The hasher the product ships with, kept before the tests swap in a cheap one.
PRODUCT_HASHER = passwords._hasher


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id with its cheapest parameters for the consoles the tests build in process:
    the product's (64 MiB, 3 passes, 4 lanes) cost most of the CPU of every test that signs
    in. Hashes and verifications still go through the same code, and the console processes
    of tests/acceptance still hash with the product's parameters."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(passwords, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole run (fails loudly if it cannot start)."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """One private slapd for the whole run, with `LAB_COMPUTER_COUNT` generated computers
    (fails loudly if it cannot start)."""
    with private_slapd(generate_computers(LAB_COMPUTER_COUNT)) as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[ObjectStore]:
    """One S3-compatible server (moto's, in its own process) for the whole run; fails
    loudly if it cannot start."""
    from tests.support.object_store import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    with engine.begin() as conn:
        # `empty_postgres` deletes rows rather than truncating: with no vacuum to hand their
        # space to new rows, rows stay in the order they were written, as in a new table.
        for table in metadata.sorted_tables:
            conn.execute(text(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)'))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file
    return path


#: One statement that names the tables holding rows (each probe reads at most one row).
_FILLED_TABLES = text(
    " UNION ALL ".join(
        f"SELECT '{table.name}' WHERE EXISTS (SELECT 1 FROM \"{table.name}\")"
        for table in metadata.sorted_tables
    )
)
#: Every sequence of the schema that has handed out a number goes back to its start.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
)


def empty_postgres(engine: Engine) -> None:
    """Every table empty and every sequence at its start, as `TRUNCATE … RESTART IDENTITY`
    of all tables leaves them, but cheaper: a test fills a few of the tables, and TRUNCATE
    makes new files for every table and index it names (a third of a second a test on a
    busy machine), where a DELETE of the few filled tables, children first, touches no file."""
    with engine.begin() as conn:
        filled = set(conn.execute(_FILLED_TABLES).scalars())
        for table in reversed(metadata.sorted_tables):
            if table.name in filled:
                conn.execute(table.delete())
        conn.execute(_RESTART_SEQUENCES)


@contextmanager
def fresh_engine(
    backend: str, directory: Path, sqlite_template: Path, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    """A migrated, empty database on `backend`: a copy of the SQLite template in
    `directory`, or the session's PostgreSQL emptied."""
    if backend == "sqlite":
        path = directory / "surveyor.db"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
    else:
        engine = request.getfixturevalue("postgres_engine")
        empty_postgres(engine)
        yield engine


@pytest.fixture(params=BACKENDS)
def db_engine(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Engine]:
    """A migrated, empty database on each backend in turn."""
    with fresh_engine(request.param, tmp_path, sqlite_template, request) as engine:
        yield engine


def assert_tab_counts_in_step(engine: Engine) -> None:
    """The counter rows must equal a real count: anything that writes a task's tab or hidden
    flag goes through the store's write path (store/tasks.py), which notes the deltas."""
    counted = (
        select(tasks.c.organization_id, tasks.c.tab, tasks.c.hidden, func.count())
        .where(tasks.c.tab.is_not(None))
        .group_by(tasks.c.organization_id, tasks.c.tab, tasks.c.hidden)
    )
    kept = select(
        task_tab_counts.c.organization_id,
        task_tab_counts.c.tab,
        task_tab_counts.c.hidden,
        task_tab_counts.c.count,
    ).where(task_tab_counts.c.count != 0)
    with engine.connect() as conn:
        real = {tuple(row[:3]): int(row[3]) for row in conn.execute(counted)}
        stored = {tuple(row[:3]): int(row[3]) for row in conn.execute(kept)}
    assert stored == real, "task_tab_counts drifted from the tasks table"


@pytest.fixture
def db(db_engine: Engine) -> Iterator[Database]:
    yield Database(db_engine)
    assert_tab_counts_in_step(db_engine)
