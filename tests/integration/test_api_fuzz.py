"""Schemathesis over the OpenAPI document: no generated request makes the console fail (5xx).

Each generated request goes to a console on SQLite and to one on PostgreSQL: generating the
requests costs far more than answering them, so both backends share one generation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, note, settings
from schemathesis.checks import not_a_server_error

from surveyor.store.engine import Database
from tests.conftest import BACKENDS, assert_tab_counts_in_step, fresh_engine
from tests.support.console import BOOTSTRAP_TOKEN, ConsoleUnderTest, running_console

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def consoles(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_template: Path,
) -> Iterator[tuple[ConsoleUnderTest, ...]]:
    """A console on a new SQLite file and one on the emptied PostgreSQL database."""
    for name in BACKENDS:
        (tmp_path / name).mkdir()
    with (
        fresh_engine("sqlite", tmp_path / "sqlite", sqlite_template, request) as lite_engine,
        fresh_engine("postgresql", tmp_path, sqlite_template, request) as pg_engine,
    ):
        with (
            running_console(Database(lite_engine), tmp_path / "sqlite", monkeypatch) as lite,
            running_console(Database(pg_engine), tmp_path / "postgresql", monkeypatch) as pg,
        ):
            yield lite, pg
        for engine in (lite_engine, pg_engine):
            assert_tab_counts_in_step(engine)


def test_no_generated_request_makes_any_operation_fail(
    consoles: tuple[ConsoleUnderTest, ...],
) -> None:
    for console in consoles:
        seeded = console.admin.post(
            "/api/v1/tasks", json={"name": "seed", "params": {"targets": "127.0.0.1"}}
        )
        assert seeded.status_code == 201, seeded.text
    apps = [console.client.app for console in consoles]
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", apps[0])
    headers = {"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    def check(case: Any) -> None:
        note(f"{case.operation.label}")
        for app, backend in zip(apps, ("sqlite", "postgresql"), strict=True):
            note(f"on {backend}")
            case.call_and_validate(headers=headers, checks=[not_a_server_error], app=app)

    for operation in operations:
        run = settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(check))
        run()
