"""Wait reasons are immediate and true: an explorer whose held poll dropped is offline for
the launch rule as soon as the grace is over (not a minute later), and a scan for a hosted
zone without members says so. Both backends; the poll state lives in the database, so any
console may notice the drop and any other may see the explorer come back."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.core.resources import Explorer
from surveyor.service import explorers as explorer_service
from surveyor.service import launch
from surveyor.store import accounts
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.schema import task_events
from tests.integration.test_change_bus import WAIT_SECONDS
from tests.support.console import ConsoleUnderTest
from tests.support.explorers import (
    HOST,
    ExplorerUnderTest,
    create_scan,
    enroll,
    new_explorer,
    new_scan,
    new_site,
    new_zone,
    utcnow,
)

WINDOW = 60
GRACE = launch.POLL_RETURN_GRACE
POLLING_HOST = explorer_service.HostInfo("9.9.9", "probe-host", "Linux test", ("127.0.0.5",))


@pytest.fixture
def org(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        organization = accounts.create_organization(conn, "Presence")
        site = new_site(conn, organization["id"], "Main")
    return {"id": organization["id"], "site_id": site["id"]}


def refresh(db: Database, now: datetime) -> None:
    with db.write() as conn:
        launch.refresh_waiting_scans(conn, now=now, online_window=WINDOW)


def wait_reason(db: Database, organization_id: int, task_id: int) -> str | None:
    with db.read() as conn:
        found = task_store.get_task(conn, organization_id, task_id)
    assert found is not None
    return found.wait_reason


def explorer_row(db: Database, explorer_id: int) -> Explorer:
    with db.read() as conn:
        explorer = explorer_store.get_explorer(conn, explorer_id)
    assert explorer is not None
    return explorer


def waiting_messages(db: Database, task_id: int) -> list[str]:
    with db.read() as conn:
        rows = conn.execute(
            select(task_events.c.message)
            .where(task_events.c.task_id == task_id, task_events.c.kind == "waiting")
            .order_by(task_events.c.id)
        ).all()
    return [row.message for row in rows]


def drop_a_poll(
    console: ConsoleUnderTest, explorer: ExplorerUnderTest, *, once_held: bool = False
) -> dict[str, Any]:
    """A poll whose connection drops: sent as the server would hand it to the app, run by
    the console's ASGI app on its own event loop; returns what the app answered. With
    `once_held`, the connection drops only once the poll is held (else as soon as its body
    is read)."""
    body = json.dumps({**HOST, "wait": 20}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/explorer/poll",
        "raw_path": b"/api/v1/explorer/poll",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {explorer.secret}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []
    signal = console.client.app.state.console.explorer_work

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        if once_held:
            # As a server does: nothing more until the client goes.
            assert await asyncio.to_thread(signal.wait_parked, 1, WAIT_SECONDS), "never held"
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await console.client.app(scope, receive, send)

    portal = console.client.portal
    assert portal is not None
    portal.call(call)
    start = next(message for message in sent if message["type"] == "http.response.start")
    return {"status": start["status"]}


def test_a_dropped_poll_makes_its_explorer_offline_for_wait_reasons_once_the_grace_is_over(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    before = utcnow()

    drop_a_poll(console, explorer)

    dropped_at = explorer_row(console.db, explorer.id).poll_dropped_at
    assert dropped_at is not None
    assert dropped_at >= before
    scan = create_scan(console, explorer_id=explorer.id)
    refresh(console.db, dropped_at + GRACE - timedelta(milliseconds=1))
    assert wait_reason(console.db, scan["organization_id"], scan["id"]) is None
    refresh(console.db, dropped_at + GRACE)
    assert wait_reason(console.db, scan["organization_id"], scan["id"]) == "explorer_offline"
    assert waiting_messages(console.db, scan["id"]) == [
        f"waiting for its explorer to come online ('{explorer.name}')"
    ]


def test_an_explorer_that_polls_again_within_the_grace_stays_online(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    drop_a_poll(console, explorer)
    dropped_at = explorer_row(console.db, explorer.id).poll_dropped_at
    assert dropped_at is not None

    assert explorer.poll(wait=0) is None

    row = explorer_row(console.db, explorer.id)
    assert row.poll_dropped_at is None
    later = dropped_at + GRACE + timedelta(seconds=5)
    view = explorer_service.explorer_view(row, {}, now=later, window=WINDOW)
    assert view.online is True


def test_the_explorers_api_shows_an_explorer_with_a_dropped_poll_offline(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    drop_a_poll(console, explorer)
    row = explorer_row(console.db, explorer.id)
    assert row.poll_dropped_at is not None

    view = explorer_service.explorer_view(row, {}, now=row.poll_dropped_at + GRACE, window=WINDOW)

    assert view.online is False


def test_a_drop_noticed_after_the_explorer_polled_through_another_console_changes_nothing(
    db: Database, org: dict[str, Any]
) -> None:
    first_poll = utcnow() - timedelta(seconds=10)
    second_poll = first_poll + timedelta(seconds=1)
    with db.write() as conn:
        explorer = Explorer.from_row(new_explorer(conn, org["id"], now=first_poll))
        scan = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer.id)
    with db.write() as conn:
        explorer_service.check_in(conn, explorer, POLLING_HOST, now=second_poll)
        noted = explorer_service.poll_dropped(
            conn, explorer, checked_in_at=first_poll, now=second_poll + timedelta(seconds=1)
        )

    assert noted is False
    assert explorer_row(db, explorer.id).poll_dropped_at is None
    refresh(db, second_poll + GRACE + timedelta(seconds=5))
    assert wait_reason(db, scan.organization_id, scan.id) is None


def test_a_report_from_an_explorer_whose_poll_dropped_brings_it_back(
    db: Database, org: dict[str, Any]
) -> None:
    polled = utcnow() - timedelta(seconds=10)
    with db.write() as conn:
        explorer = Explorer.from_row(new_explorer(conn, org["id"], now=polled))
        assert explorer_service.poll_dropped(
            conn, explorer, checked_in_at=polled, now=polled + timedelta(milliseconds=500)
        )
    dropped = explorer_row(db, explorer.id)
    with db.write() as conn:
        explorer_service.check_in(conn, dropped, None, now=polled + timedelta(seconds=1))

    assert explorer_row(db, explorer.id).poll_dropped_at is None


def test_a_zone_scan_of_a_zone_without_members_waits_with_reason_zone_empty(
    db: Database, org: dict[str, Any]
) -> None:
    now = utcnow()
    with db.write() as conn:
        zone = new_zone(conn, org["id"], max_concurrent=2)
        new_explorer(conn, org["id"])
        scan = new_scan(conn, org["id"], org["site_id"], zone_id=zone["id"])

    refresh(db, now)
    assert wait_reason(db, scan.organization_id, scan.id) == "zone_empty"
    assert waiting_messages(db, scan.id) == [
        "waiting for an explorer to join its hosted zone (it has none)"
    ]

    with db.write() as conn:
        new_explorer(conn, org["id"], zone_id=zone["id"], online=False)
    refresh(db, now)
    assert wait_reason(db, scan.organization_id, scan.id) == "explorer_offline"


def test_a_poll_dropped_while_held_is_noted_at_once_not_when_its_wait_ends(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    drop_a_poll(console, explorer, once_held=True)
    # Had the drop gone unnoticed, the poll would have answered when its wait was over,
    # and noted nothing.
    assert explorer_row(console.db, explorer.id).poll_dropped_at is not None


def test_held_polls_answer_at_once_when_the_console_begins_to_stop(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    state = console.client.app.state.console
    answer: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: answer.update(task=explorer.poll(wait=20.0)))
    waiter.start()
    assert state.explorer_work.wait_parked(1, WAIT_SECONDS), "the poll was never held"
    try:
        state.begin_stopping()  # from this thread, as a signal handler may
        # Well before its 20 s wait is over: nothing but the stop can answer it.
        waiter.join(10.0)
        assert not waiter.is_alive(), "the held poll did not answer when the console stopped"
        assert answer == {"task": None}
    finally:
        state.stopping.clear()
        waiter.join(WAIT_SECONDS)
