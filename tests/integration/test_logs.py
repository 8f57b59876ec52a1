"""Log lines: JSON lines parse and carry the request id, and no secret, token or password
reaches a log line in either format."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from surveyor.cli.logs import LogFormat, configure_logging
from surveyor.store import accounts
from surveyor.store.engine import Database
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import create_scan, enroll, enrollment_token

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(params=list(LogFormat))
def captured(request: pytest.FixtureRequest) -> Iterator[tuple[LogFormat, io.StringIO]]:
    """Every logger's lines, at DEBUG, in the parametrized format, into a buffer."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(request.param, level=logging.DEBUG, stream=stream)
    try:
        yield request.param, stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before[0]:
            root.addHandler(handler)
        root.setLevel(before[1])


def test_json_lines_parse_and_carry_the_request_id(
    console: ConsoleUnderTest, captured: tuple[LogFormat, io.StringIO]
) -> None:
    fmt, stream = captured
    answer = console.admin.get("/api/v1/tasks", headers={"X-Request-Id": "trace-me-0042"})
    assert answer.headers["x-request-id"] == "trace-me-0042"

    lines = [line for line in stream.getvalue().splitlines() if "trace-me-0042" in line]
    assert lines, stream.getvalue()
    if fmt is LogFormat.JSON:
        access = [json.loads(line) for line in lines]
        assert {
            "logger": "surveyor.access",
            "request_id": "trace-me-0042",
            "method": "GET",
            "path": "/api/v1/tasks",
            "route": "/api/v1/tasks",
            "status": 200,
        }.items() <= access[-1].items()
        every = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert all({"time", "level", "logger", "message"} <= line.keys() for line in every)
    else:
        assert "[trace-me-0042]" in lines[-1]
        assert "GET /api/v1/tasks 200" in lines[-1]


def test_the_access_log_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database
) -> None:
    monkeypatch.setenv("SURVEYOR_ACCESS_LOG", "0")
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    configure_logging(LogFormat.JSON, level=logging.DEBUG, stream=stream)
    try:
        with running_console(db, tmp_path, monkeypatch) as console:
            answer = console.admin.get("/api/v1/tasks", headers={"X-Request-Id": "quiet-1"})
            assert answer.headers["x-request-id"] == "quiet-1"
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before[0]:
            root.addHandler(handler)
        root.setLevel(before[1])
    assert not [line for line in stream.getvalue().splitlines() if '"surveyor.access"' in line]


def test_no_secret_token_or_password_reaches_a_log_line(
    console: ConsoleUnderTest, captured: tuple[LogFormat, io.StringIO]
) -> None:
    _, stream = captured
    password = f"pw-{secrets.token_hex(12)}"
    wrong_password = f"wrong-{secrets.token_hex(12)}"
    community = f"community-{secrets.token_hex(12)}"
    with console.db.write() as conn:
        user = accounts.create_user(conn, "planted@example.test", password=password, name="P")
        accounts.set_membership(conn, console.organization_id, user["id"], accounts.Role.ADMIN)
    planted = [password, wrong_password, community]

    # Passwords: the API login and the web login form, right and wrong, and in a query string.
    for attempt in (password, wrong_password):
        console.client.post(
            "/api/v1/auth/login", json={"email": "planted@example.test", "password": attempt}
        )
        form = console.client.get("/login")
        csrf = _CSRF_FIELD.search(form.text)
        assert csrf is not None
        console.client.post(
            "/login",
            data={"email": "planted@example.test", "password": attempt, "csrf_token": csrf[1]},
        )
    console.client.get(f"/api/v1/tasks?password={password}")
    # Tokens: an API token, good and revoked-looking, in Authorization headers.
    api = console.as_role("operator")
    assert api.token is not None
    planted.append(api.token)
    api.get("/api/v1/tasks")
    bogus = f"sv_{secrets.token_hex(16)}"
    planted.append(bogus)
    console.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {bogus}"})
    # Enrollment tokens and explorers' secrets.
    token = enrollment_token(console.admin)["token"]
    planted.append(token)
    explorer = enroll(console)
    planted.append(explorer.secret)
    create_scan(console, explorer_id=explorer.id)
    explorer.poll()
    # A credential's secret, created and shown.
    created = console.admin.post(
        "/api/v1/credentials",
        json={
            "name": "switches",
            "kind": "snmp",
            "fields": {"version": "2c", "community": community},
        },
    )
    assert created.status_code == 201, created.text
    console.admin.get(f"/api/v1/credentials/{created.json()['id']}")

    logged = stream.getvalue()
    assert "surveyor.access" in logged or "/api/v1/auth/login" in logged  # the log was written
    leaked = [value for value in planted if value in logged]
    assert not leaked, f"found in the log: {leaked}"
