"""An open `GET /api/v1/events` stream ends soon after its listener loses the right to it:
a removed member, a revoked token, a deactivated account, a signed-out session. A member
whose role changed keeps the stream, re-authorized under the new role."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from surveyor.console.routes import events
from surveyor.console.state import task_feed
from surveyor.store import accounts
from surveyor.store.accounts import Principal, Role
from surveyor.store.schema import users
from tests.integration.test_web_sessions import FUTURE, create, signed_in
from tests.support.console import Api, ConsoleUnderTest

#: Far longer than a recheck (2 s) and far shorter than a stream's own end (120 s).
DEADLINE_SECONDS = 30.0
#: How often the streams of these tests are rechecked.
QUICK_RECHECK_SECONDS = 0.2


class OpenStream:
    """A live event stream read on a thread of its own, message by message."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.status: int | None = None
        self.opened = threading.Event()
        self.ended = threading.Event()
        self._arrived = threading.Condition()
        self._thread = threading.Thread(
            target=self._read, args=(client, headers), name="event-stream", daemon=True
        )
        self._thread.start()
        assert self.opened.wait(DEADLINE_SECONDS), "the stream did not open"

    def _read(self, client: TestClient, headers: dict[str, str]) -> None:
        try:
            with client.stream(
                "GET", "/api/v1/events", headers={"Accept": "text/event-stream", **headers}
            ) as response:
                self.status = response.status_code
                buffer = ""
                for text in response.iter_text():
                    buffer += text
                    while "\n\n" in buffer:
                        block, buffer = buffer.split("\n\n", 1)
                        self._take(block)
        finally:
            self.ended.set()
            self.opened.set()
            with self._arrived:
                self._arrived.notify_all()

    def _take(self, block: str) -> None:
        message: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name == "event":
                message["event"] = value
            elif name == "data":
                message["data"] = json.loads(value)
        if "event" not in message:
            return
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        if message["event"] == "ready":
            self.opened.set()

    def wait_for_task(self, task_id: int) -> bool:
        """Whether news of the task arrives before the deadline (or the stream's end)."""
        with self._arrived:
            return (
                self._arrived.wait_for(
                    lambda: (
                        self.ended.is_set()
                        or any(m.get("data", {}).get("task_id") == task_id for m in self.messages)
                    ),
                    DEADLINE_SECONDS,
                )
                and not self.ended.is_set()
            )

    def close(self) -> None:
        self._thread.join(DEADLINE_SECONDS)


@pytest.fixture
def streams(console: ConsoleUnderTest) -> Iterator[list[OpenStream]]:
    """Streams opened by a test; any still open at its end are ended by a console stop.
    The feed rechecks its streams every 0.2 s instead of its default 2 s (whose bound the
    test above proves), so that a test waits for the same recheck, only sooner."""
    task_feed(console.client.app.state.console).recheck_seconds = QUICK_RECHECK_SECONDS
    opened: list[OpenStream] = []
    yield opened
    state = console.client.app.state.console
    state.stopping.set()
    try:
        for stream in opened:
            stream.close()
    finally:
        state.stopping.clear()


def open_stream(
    streams: list[OpenStream], client: TestClient, token: str | None = None
) -> OpenStream:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    stream = OpenStream(client, headers)
    streams.append(stream)
    assert stream.status == 200
    return stream


def user_id(api: Api) -> int:
    me: dict[str, Any] = api.get("/api/v1/users/me").json()
    return int(me["id"])


def test_the_defaults_recheck_a_stream_within_five_seconds(console: ConsoleUnderTest) -> None:
    feed = task_feed(console.client.app.state.console)
    assert feed.recheck_seconds <= 5
    assert feed.stream_seconds > DEADLINE_SECONDS


def test_removing_a_member_ends_their_open_stream(
    console: ConsoleUnderTest, streams: list[OpenStream]
) -> None:
    viewer = console.as_role("viewer")
    stream = open_stream(streams, console.client, viewer.token)
    assert console.admin.delete(f"/api/v1/users/{user_id(viewer)}").status_code == 204
    assert stream.ended.wait(DEADLINE_SECONDS), "the removed member's stream is still open"


def test_revoking_a_token_ends_the_stream_it_opened(
    console: ConsoleUnderTest, streams: list[OpenStream]
) -> None:
    viewer = console.as_role("viewer")
    created = viewer.post("/api/v1/tokens", json={"name": "dashboard"}).json()
    stream = open_stream(streams, console.client, created["token"])
    assert viewer.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert stream.ended.wait(DEADLINE_SECONDS), "the revoked token's stream is still open"
    again = Api(console.client, created["token"]).get(
        "/api/v1/events", headers={"Accept": "text/event-stream"}
    )
    assert again.status_code == 401


def test_deactivating_an_account_ends_its_open_stream(
    console: ConsoleUnderTest, streams: list[OpenStream]
) -> None:
    operator = console.as_role("operator")
    stream = open_stream(streams, console.client, operator.token)
    with console.db.write() as conn:
        conn.execute(update(users).where(users.c.id == user_id(operator)).values(is_active=False))
    assert stream.ended.wait(DEADLINE_SECONDS), "the deactivated account's stream is still open"


def test_signing_out_ends_the_web_consoles_stream(
    console: ConsoleUnderTest, streams: list[OpenStream]
) -> None:
    browser, csrf = signed_in(console, "viewer")
    stream = open_stream(streams, browser)  # authenticated by the session cookie
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert stream.ended.wait(DEADLINE_SECONDS), "the signed-out session's stream is still open"


def test_a_demoted_member_keeps_the_stream_under_the_new_role(
    console: ConsoleUnderTest, streams: list[OpenStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    rechecked: list[Principal | None] = []
    seen = threading.Condition()
    real = events.resolve_credential

    def recording(*args: Any) -> Principal | None:
        principal = real(*args)
        with seen:
            rechecked.append(principal)
            seen.notify_all()
        return principal

    monkeypatch.setattr(events, "resolve_credential", recording)
    operator = console.as_role("operator")
    stream = open_stream(streams, console.client, operator.token)
    with console.db.write() as conn:
        accounts.set_membership(conn, console.organization_id, user_id(operator), Role.VIEWER)
    with seen:
        assert seen.wait_for(
            lambda: any(p is not None and p.role is Role.VIEWER for p in rechecked),
            DEADLINE_SECONDS,
        ), "the stream was not rechecked after the demotion"
    task = create(console, start_time=FUTURE)
    assert stream.wait_for_task(task["id"]), "the demoted viewer's stream stopped delivering"
    assert not stream.ended.is_set()
