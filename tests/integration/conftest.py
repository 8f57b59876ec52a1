"""Integration fixtures: a running console on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from surveyor.store.engine import Database
from tests.conftest import BACKENDS, assert_tab_counts_in_step, fresh_engine

if TYPE_CHECKING:
    from tests.support.console import ConsoleUnderTest


@pytest.fixture
def console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleUnderTest]:
    from tests.support.console import running_console

    with running_console(db, tmp_path, monkeypatch) as running:
        yield running


@pytest.fixture(scope="module", params=BACKENDS)
def shared_console(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[ConsoleUnderTest]:
    """One console per backend for a whole module (the permission matrices), far faster
    than one per test. Its tests must not depend on each other's rows, and the module must
    not use the per-test `db` or `console` fixtures, which empty the same PostgreSQL."""
    from tests.support.console import running_console

    data_dir = tmp_path_factory.mktemp(f"shared-console-{request.param}")
    with fresh_engine(request.param, data_dir, sqlite_template, request) as engine:
        with (
            pytest.MonkeyPatch.context() as monkeypatch,
            running_console(Database(engine), data_dir, monkeypatch) as running,
        ):
            yield running
        assert_tab_counts_in_step(engine)
