"""`GET /api/v1/events`: who may listen, what a stream says, and catching up after a gap."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from surveyor.console.live import TaskFeed, latest_event_id
from surveyor.core.tasks import EventKind, TaskStatus
from surveyor.store import tasks as store
from tests.integration.test_web_sessions import FUTURE, create, signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.explorers import new_explorer, new_scan, new_site, set_checkin, utcnow


@pytest.fixture
def short_streams(console: ConsoleUnderTest) -> TaskFeed:
    """Streams that poll often and end after a second, so a test can read one whole."""
    state = console.client.app.state.console
    feed = TaskFeed(
        console.db,
        poll_seconds=0.05,
        stream_seconds=1.0,
        heartbeat_seconds=0.5,
        stopping=state.stopping,
    )
    state.task_feed = feed
    return feed


LIVE = {"Accept": "text/event-stream"}
#: Longer than any step below takes, however slow the machine; only a broken feed waits it out.
WAIT_SECONDS = 30.0


def messages(body: str) -> list[dict[str, Any]]:
    """The stream's messages: `event`, `id` (when given) and parsed `data`."""
    found = []
    for block in body.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("event", "id"):
                fields[name] = value
            elif name == "data":
                fields["data"] = json.loads(value)
        if "event" in fields:
            found.append(fields)
    return found


def wait_until(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    """Wait for a state of the feed (a deadline only catches a feed that never gets there)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the live feed did not poll in time"
        time.sleep(0.01)


def answered(request: Callable[[], Any]) -> Any:
    """The answer of `request`, made in another thread; fails if it never comes."""
    answer: list[Any] = []
    caller = threading.Thread(target=lambda: answer.append(request()), daemon=True)
    caller.start()
    caller.join(WAIT_SECONDS)
    assert answer, "no answer"
    return answer[0]


def test_the_stream_needs_a_token_or_a_session(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    refused = console.anonymous().get("/api/v1/events")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    wrong = console.anonymous().get(
        "/api/v1/events", headers={"Authorization": "Bearer svr_0000000000000000_nope"}
    )
    assert wrong.status_code == 401


def test_a_stream_opens_with_retry_and_ready_and_replays_what_was_missed(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    task = create(console, start_time=FUTURE)
    response = console.as_role("viewer").get("/api/v1/events", params={"after": 0}, headers=LIVE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: ")
    found = messages(response.text)
    assert found[0]["event"] == "ready"
    # (the organization's hidden daily Retention template is in the feed too)
    created = [m for m in found if m["event"] == "task" and not m["data"]["hidden"]]
    assert created[0]["data"]["task_id"] == task["id"]
    assert created[0]["data"]["status"] == "new"
    assert created[0]["data"]["status_label"] == "New"
    assert created[0]["id"] == str(created[0]["data"]["event_id"])

    # reconnecting with Last-Event-ID sends only what came after it
    console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
    again = console.as_role("viewer").get(
        "/api/v1/events", headers={**LIVE, "Last-Event-ID": created[-1]["id"]}
    )
    later = [m["data"] for m in messages(again.text) if m["event"] == "task"]
    assert [(m["from_status"], m["to_status"]) for m in later] == [("new", "stopped")]
    assert later[0]["tab"] == "failed"


def test_a_stream_carries_only_the_callers_organization(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    _, other_admin = console.other_organization()
    theirs = other_admin.post("/api/v1/tasks", json={"name": "theirs", "start_time": FUTURE})
    mine = create(console, start_time=FUTURE)
    body = console.admin.get("/api/v1/events", params={"after": 0}, headers=LIVE).text
    task_ids = {m["data"]["task_id"] for m in messages(body) if m["event"] == "task"}
    assert mine["id"] in task_ids
    assert theirs.json()["id"] not in task_ids


def test_a_stream_reports_transitions_and_progress_as_they_happen(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    task = create(console)
    # The stream stays open long enough for every step below, however slow the machine.
    short_streams.stream_seconds = 3.0

    def seen_collect() -> float | None:
        """The progress of the task at the feed's latest poll (None before its first)."""
        noted = short_streams._progress
        return None if noted is None else noted.get(task["id"], ("", -1.0, 0.0))[1]

    def work() -> None:
        # Each step waits until the feed's poll has seen the one before, so none is missed.
        wait_until(lambda: short_streams._progress is not None)
        with console.db.write() as conn:
            store.transition(
                conn,
                console.organization_id,
                task["id"],
                TaskStatus.ACTIVE,
                actor="explorer:test",
                changes={"progress_collect": 0.25},
            )
        wait_until(lambda: seen_collect() == 0.25)
        with console.db.write() as conn:
            store.edit_task(
                conn,
                console.organization_id,
                task["id"],
                {"progress_collect": 0.5},
                actor="explorer:test",
                message="progress",
                event_kind=EventKind.EDITED,
            )

    client, _ = signed_in(console, "viewer")  # the session cookie is enough
    with console.db.read() as conn:
        after = latest_event_id(conn)
    worker = threading.Thread(target=work)
    worker.start()
    body = client.get("/api/v1/events", params={"after": after}, headers=LIVE).text
    worker.join()
    found = messages(body)
    transitions = [m["data"] for m in found if m["event"] == "task" and m["data"]["to_status"]]
    assert [(m["from_status"], m["to_status"]) for m in transitions] == [("new", "active")]
    assert transitions[0]["collect"] == 0.25
    progress = [m["data"]["collect"] for m in found if m["data"].get("task_id") == task["id"]]
    assert progress[-1] == 0.5


def test_streams_end_when_the_console_begins_to_stop(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    # Far longer than the test waits: only the stop can end the stream in time.
    short_streams.stream_seconds = 3600.0
    state = console.client.app.state.console

    def stop_once_listened_to() -> None:
        wait_until(lambda: bool(short_streams._subscribers))
        state.stopping.set()

    stopper = threading.Thread(target=stop_once_listened_to)
    stopper.start()
    try:
        ended = answered(lambda: console.admin.get("/api/v1/events", headers=LIVE))
        assert [m["event"] for m in messages(ended.text)] == ["ready"]
        refused = console.admin.get("/api/v1/events", headers=LIVE)
        assert refused.status_code == 503
    finally:
        stopper.join()
        state.stopping.clear()


def test_a_client_that_does_not_ask_for_a_stream_gets_what_it_missed_at_once(
    console: ConsoleUnderTest,
) -> None:
    task = create(console, start_time=FUTURE)
    # The default feed's streams last minutes: the answer comes without one.
    response = answered(lambda: console.admin.get("/api/v1/events", params={"after": 0}))
    found = messages(response.text)
    assert found[0]["event"] == "ready"
    shown = [m for m in found if m["event"] == "task" and not m["data"]["hidden"]]
    assert [m["data"]["task_id"] for m in shown] == [task["id"]]


def test_a_stream_reports_explorers_coming_online_and_taking_work(
    console: ConsoleUnderTest, short_streams: TaskFeed
) -> None:
    with console.db.write() as conn:
        explorer = new_explorer(conn, console.organization_id, online=False)
        site = new_site(conn, console.organization_id)
    other_org, _ = console.other_organization()
    with console.db.write() as conn:
        theirs = new_explorer(conn, other_org, online=False)

    organization_id = console.organization_id
    # The stream stays open long enough for every step below, however slow the machine.
    short_streams.stream_seconds = 5.0

    def heard(online: bool) -> bool:
        """Whether the feed's latest poll saw this explorer in that state."""
        fleet = short_streams._explorers.get(organization_id)
        return fleet is not None and any(
            state[0] == explorer["id"] and state[1] is online for state in fleet
        )

    def work() -> None:
        # Each step waits until the feed's poll has seen the one before, so none is missed.
        wait_until(lambda: heard(online=False))
        with console.db.write() as conn:
            set_checkin(conn, explorer["id"], utcnow())
            set_checkin(conn, theirs["id"], utcnow())
        wait_until(lambda: heard(online=True))
        with console.db.write() as conn:
            scan = new_scan(conn, organization_id, site["id"], explorer_id=explorer["id"])
            store.transition(
                conn,
                organization_id,
                scan.id,
                TaskStatus.ACTIVE,
                actor="explorer:test",
            )
        found_scan.append(scan.id)

    found_scan: list[int] = []
    worker = threading.Thread(target=work)
    worker.start()
    body = console.as_role("viewer").get("/api/v1/events", headers=LIVE).text
    worker.join()
    news = [m["data"]["explorers"] for m in messages(body) if m["event"] == "explorers"]
    mine = [[e for e in fleet if e["id"] == explorer["id"]] for fleet in news]
    # offline at the first poll (only noted), then online and idle, then online and busy
    assert [fleet[0] for fleet in mine] == [
        {"id": explorer["id"], "online": True, "current_task_id": None},
        {"id": explorer["id"], "online": True, "current_task_id": found_scan[0]},
    ]
    # another organization's explorer changed too, but is not this organization's news
    assert theirs["id"] not in {e["id"] for fleet in news for e in fleet}
