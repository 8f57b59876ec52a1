"""Every failure is answered in the JSON error format: an unexpected exception (in a route
or in a middleware) is a 500 `internal`, a full disk a 507 saying where to free space, and a
body over its limit a 413 whoever reads it. A client gone before its body arrived is none."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from surveyor.console.app import create_app
from surveyor.console.state import ConsoleSettings
from surveyor.store.engine import Database
from surveyor.store.taskdata import IncomingTaskData
from tests.support.asgi_client import InProcessClient
from tests.support.console import BOOTSTRAP_TOKEN, ConsoleUnderTest, running_console
from tests.support.explorers import create_scan, enroll, get_task, task_data


class FailingMiddleware:
    """Raises on requests to /middleware-failure, before the app sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/middleware-failure":
            raise RuntimeError("a middleware failed")
        await self.app(scope, receive, send)


@pytest.fixture
def failing_app(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A console with one route and one middleware that fail, as a bug would."""
    monkeypatch.setenv("SURVEYOR_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN)
    monkeypatch.setenv("SURVEYOR_ADMIN_EMAIL", "admin@example.test")
    app: FastAPI = create_app(
        ConsoleSettings(data_dir=tmp_path, database_url=str(db.engine.url)), database=db
    )

    def route_failure() -> None:
        raise ValueError("a route failed")

    app.add_api_route("/route-failure", route_failure)
    app.add_middleware(FailingMiddleware)
    with InProcessClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_client_gone_before_its_form_arrived_is_no_failure(failing_app: TestClient) -> None:
    """A browser leaving the page while a form is posted (its fetch canceled): the route
    reading the form meets the disconnect; the console notes it (499), raises nothing and
    so logs no traceback."""
    app = failing_app.app

    async def read_form(request: Request) -> dict[str, str]:
        return {key: str(value) for key, value in (await request.form()).items()}

    assert isinstance(app, FastAPI)
    app.add_api_route("/form-reader", read_form, methods=["POST"])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/form-reader",
        "raw_path": b"/form-reader",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"40"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive, send)

    assert failing_app.portal is not None
    failing_app.portal.call(call)  # raised ClientDisconnect to the server before

    [start] = [message for message in sent if message["type"] == "http.response.start"]
    assert start["status"] == 499


@pytest.mark.parametrize("path", ["/route-failure", "/middleware-failure"])
def test_an_unexpected_exception_is_a_json_500(failing_app: TestClient, path: str) -> None:
    answer = failing_app.get(path)

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": {
            "code": "internal",
            "message": "the console failed while answering this request; "
            "the details are in its log",
            "details": {},
        }
    }


def test_a_full_disk_during_an_upload_is_a_507_saying_where_to_free_space(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: IncomingTaskData, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(IncomingTaskData, "write", disk_full)
    with running_console(db, tmp_path, monkeypatch, raise_server_exceptions=False) as console:
        explorer = enroll(console)
        create_scan(console, explorer_id=explorer.id)
        launched = explorer.poll()
        assert launched is not None

        answer = explorer.upload(launched, task_data())

        assert answer.status_code == 507
        assert answer.json()["error"] == {
            "code": "disk_full",
            "message": f"the console's disk is full: free space in {tmp_path} and try again",
            "details": {},
        }
        assert get_task(console, launched["id"])["status"] == "scanned"
    assert list((tmp_path / "tasks").iterdir()) == []


def test_a_streamed_body_over_the_limit_is_a_413_even_where_a_parser_reads_it(
    console: ConsoleUnderTest,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    answer = console.admin.post(
        "/api/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 413
    assert answer.json()["error"] == {
        "code": "too_large",
        "message": "the request body is larger than 1048576 bytes",
        "details": {},
    }
