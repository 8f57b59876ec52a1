"""Schemathesis over the OpenAPI document: no generated request makes the console fail (5xx)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, note, settings
from schemathesis.checks import not_a_server_error

from tests.support.console import BOOTSTRAP_TOKEN, ConsoleUnderTest

EXAMPLES_PER_OPERATION = 25


def test_no_generated_request_makes_any_operation_fail(console: ConsoleUnderTest) -> None:
    console.admin.post("/api/v1/tasks", json={"name": "seed", "params": {"targets": "127.0.0.1"}})
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", console.client.app)
    headers = {"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    def check(case: Any) -> None:
        note(f"{case.operation.label}")
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    for operation in operations:
        run = settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(check))
        run()
