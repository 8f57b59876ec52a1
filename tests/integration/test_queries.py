"""Saved queries and the Dashboard (SPEC §10): asset, service and task searches saved and
pinned through `/api/v1/queries`, bad searches refused with the position at fault, Query tasks
requested after processing and hourly (coalesced per organization) storing counts that match
the searches, and the Dashboard page reading those stored counts; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from surveyor.core.clock import FakeClock
from surveyor.scheduler.tick import Scheduler
from surveyor.store import queries as query_store
from surveyor.store.schema import query_counts, tasks
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service


@pytest.fixture
def place(console: ConsoleUnderTest) -> Place:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    return Place(console.organization_id, site_id)


def save(console: ConsoleUnderTest, **body: Any) -> dict[str, Any]:
    answer = console.admin.post("/api/v1/queries", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def query_tasks(console: ConsoleUnderTest) -> list[dict[str, Any]]:
    answer = console.admin.get(
        "/api/v1/tasks", params={"tab": "all", "search": "type:query", "limit": 100}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def lab_hosts() -> list[dict[str, Any]]:
    """Three SSH servers (one also a web server) and a printer without SSH."""
    return [
        host("127.0.0.11", services=[service(22), service(80)]),
        host("127.0.0.12", services=[service(22)]),
        host("127.0.0.13", services=[service(22)]),
        host("127.0.0.14", services=[service(631)]),
    ]


def test_a_search_is_saved_pinned_unpinned_and_deleted(console: ConsoleUnderTest) -> None:
    saved = save(console, name="SSH servers", kind="asset", search="port:22", threshold=2)
    assert saved["pinned"] is False
    assert saved["last_count"] is None
    assert saved["link"] == "/assets?search=port%3A22"
    assert query_tasks(console) == []  # nothing pinned, nothing to count

    pinned = console.admin.post(f"/api/v1/queries/{saved['id']}/pin")
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["pinned"] is True
    waiting = query_tasks(console)
    assert [(t["name"], t["status"], t["created_by"]) for t in waiting] == [
        ("Query", "processing_queued", "system")
    ]
    task_query = save(console, name="Failures", kind="task", search="status:canceled", pinned=True)
    assert task_query["link"] == "/tasks?search=status%3Acanceled"
    assert len(query_tasks(console)) == 1  # coalesced: one waits per organization

    listed = console.admin.get("/api/v1/queries", params={"pinned": "true"}).json()
    assert [q["name"] for q in listed] == ["SSH servers", "Failures"]
    renamed = console.admin.patch(
        f"/api/v1/queries/{saved['id']}", json={"name": "SSH", "threshold": None}
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["threshold"]) == ("SSH", None)

    unpinned = console.admin.post(f"/api/v1/queries/{saved['id']}/unpin")
    assert unpinned.json()["pinned"] is False
    assert [q["name"] for q in console.admin.get("/api/v1/queries?pinned=false").json()] == ["SSH"]
    assert console.admin.delete(f"/api/v1/queries/{saved['id']}").status_code == 204
    assert console.admin.get(f"/api/v1/queries/{saved['id']}").status_code == 404
    audit = console.admin.get("/api/v1/audit", params={"object_type": "saved_query"}).json()
    assert {"create", "pin", "edit", "unpin", "delete"} <= {e["action"] for e in audit["items"]}


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"kind": "asset", "search": "prot:22"}, "invalid_search", "prot"),
        ({"kind": "service", "search": "status:canceled"}, "invalid_search", "status"),
        ({"kind": "task", "search": "port:22"}, "invalid_search", "port"),
        ({"kind": "asset", "search": "port:>abc"}, "invalid_search", "abc"),
        ({"kind": "asset", "search": "(port:22"}, "invalid_search", ""),
    ],
)
def test_a_search_its_kind_does_not_allow_is_refused_naming_the_fault(
    console: ConsoleUnderTest, body: dict[str, str], code: str, words: str
) -> None:
    answer = console.admin.post("/api/v1/queries", json={"name": "bad", **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert isinstance(error["details"]["position"], int)
    assert console.admin.get("/api/v1/queries").json() == []


def test_an_unknown_key_lists_the_valid_keys_of_the_kind(console: ConsoleUnderTest) -> None:
    answer = console.admin.post(
        "/api/v1/queries", json={"name": "bad", "kind": "service", "search": "state:open"}
    )
    assert answer.status_code == 400, answer.text
    valid = answer.json()["error"]["details"]["valid_keys"]
    assert {"port", "tls_issuer"} <= set(valid)
    assert "status" not in valid


def test_names_kinds_thresholds_and_edits_are_checked(console: ConsoleUnderTest) -> None:
    saved = save(console, name="Web", kind="asset", search="port:80")
    duplicate = console.admin.post(
        "/api/v1/queries", json={"name": "Web", "kind": "asset", "search": ""}
    )
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "conflict")
    for refused in (
        {"name": "x", "kind": "host", "search": ""},
        {"name": "x", "kind": "asset", "search": "", "threshold": -1},
        {"name": "", "kind": "asset", "search": ""},
    ):
        assert console.admin.post("/api/v1/queries", json=refused).status_code == 422, refused
    blank = console.admin.post(
        "/api/v1/queries", json={"name": "   ", "kind": "asset", "search": ""}
    )
    assert (blank.status_code, blank.json()["error"]["details"]["field"]) == (400, "name")
    edit = console.admin.patch(f"/api/v1/queries/{saved['id']}", json={"kind": "task"})
    assert edit.status_code == 400  # port:80 is no task search
    assert edit.json()["error"]["code"] == "invalid_search"
    assert console.admin.get(f"/api/v1/queries/{saved['id']}").json()["kind"] == "asset"


def test_viewers_read_and_operators_save(console: ConsoleUnderTest) -> None:
    viewer, operator = console.as_role("viewer"), console.as_role("operator")
    body = {"name": "Mine", "kind": "asset", "search": "port:22"}
    assert viewer.post("/api/v1/queries", json=body).status_code == 403
    created = operator.post("/api/v1/queries", json=body)
    assert created.status_code == 201, created.text
    assert [q["name"] for q in viewer.get("/api/v1/queries").json()] == ["Mine"]
    _, other_admin = console.other_organization()
    assert other_admin.get(f"/api/v1/queries/{created.json()['id']}").status_code == 404
    assert other_admin.get("/api/v1/queries").json() == []


def test_the_query_task_after_processing_stores_counts_that_match_the_searches(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    searches = {
        "ssh assets": ("asset", "port:22"),
        "all assets": ("asset", ""),
        "ssh services": ("service", "port:22"),
        "services on ssh hosts": ("service", "address:127.0.0.1 NOT port:631"),
        "scans": ("task", "type:scan"),
    }
    ids = {
        name: save(console, name=name, kind=kind, search=search, pinned=True)["id"]
        for name, (kind, search) in searches.items()
    }
    queue_hosts(console.db, tmp_path, place, lab_hosts(), ports="22,80,631")
    process_all(console.db, tmp_path)

    ran = query_tasks(console)
    assert ran
    assert {t["status"] for t in ran} == {"processed"}
    assert {t["created_by"] for t in ran} == {"system"}
    counts = {q["name"]: q["last_count"] for q in console.admin.get("/api/v1/queries").json()}
    assert counts == {
        "ssh assets": 3,
        "all assets": 4,
        "ssh services": 3,
        "services on ssh hosts": 4,
        "scans": 1,
    }
    for name, (kind, search) in searches.items():
        if kind == "asset":
            live = console.admin.get("/api/v1/assets", params={"search": search}).json()
            assert counts[name] == len(live["items"]), name
        if kind == "task":
            live = console.admin.get("/api/v1/tasks/counts", params={"search": search}).json()
            assert counts[name] == live["counts"]["all"], name
    history = console.admin.get(f"/api/v1/queries/{ids['ssh assets']}/counts").json()
    assert history
    assert history[0]["count"] == 3
    assert len(history) == len(ran)  # each Query task stored one count of each query


def test_a_query_task_requests_no_other_and_nothing_is_requested_without_pins(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, lab_hosts(), ports="22,80,631")
    process_all(console.db, tmp_path)
    assert query_tasks(console) == []  # nothing pinned
    save(console, name="ssh", kind="asset", search="port:22", pinned=True)
    process_all(console.db, tmp_path)
    ran = query_tasks(console)
    assert [t["status"] for t in ran] == ["processed"]  # the Query task queued no other


def test_requests_are_coalesced_and_the_hourly_refresh_is_due_an_hour_after_the_last(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    org = console.organization_id
    now = datetime.now(UTC)
    with console.db.write() as conn:
        assert query_store.request_query_refresh(conn, org, now=now, reason="test") is None
        assert query_store.organizations_due(conn, now=now) == []
    save(console, name="ssh", kind="asset", search="port:22", pinned=True)
    with console.db.write() as conn:
        assert query_store.request_query_refresh(conn, org, now=now, reason="test") is None
        assert query_store.organizations_due(conn, now=now + timedelta(hours=3)) == []
    process_all(console.db, tmp_path)
    created_at = query_tasks(console)[0]["created_at"]
    assert created_at

    scheduler = Scheduler(console.db, clock=FakeClock(now))
    try:
        assert scheduler.tick(now + timedelta(minutes=30)).queries_requested == 0
        later = now + timedelta(hours=1, minutes=1)
        assert scheduler.tick(later).queries_requested == 1
        # Within the minute the scheduler does not look again, and after it one waits.
        assert scheduler.tick(later + timedelta(seconds=10)).queries_requested == 0
        assert scheduler.tick(later + timedelta(minutes=2)).queries_requested == 0
    finally:
        scheduler.close()
    waiting = [t for t in query_tasks(console) if t["status"] == "processing_queued"]
    assert len(waiting) == 1
    events = console.admin.get(f"/api/v1/tasks/{waiting[0]['id']}/events").json()
    assert any("hourly" in (event.get("message") or "") for event in events["items"])


def test_an_edited_search_starts_its_history_afresh(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    saved = save(console, name="ssh", kind="asset", search="port:22", pinned=True)
    queue_hosts(console.db, tmp_path, place, lab_hosts(), ports="22,80,631")
    process_all(console.db, tmp_path)
    assert console.admin.get(f"/api/v1/queries/{saved['id']}").json()["last_count"] == 3
    edited = console.admin.patch(f"/api/v1/queries/{saved['id']}", json={"search": "port:631"})
    assert edited.json()["last_count"] is None
    assert console.admin.get(f"/api/v1/queries/{saved['id']}/counts").json() == []
    process_all(console.db, tmp_path)
    assert console.admin.get(f"/api/v1/queries/{saved['id']}").json()["last_count"] == 1


def test_the_dashboard_shows_stored_counts_trend_change_threshold_and_failures(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    browser, _ = signed_in(console, "viewer")
    empty = browser.get("/dashboard")
    assert empty.status_code == 200
    assert "No insights yet" in empty.text
    assert 'href="/dashboard" aria-current="page"' in empty.text

    ssh = save(console, name="SSH servers", kind="asset", search="port:22", threshold=2)
    console.admin.post(f"/api/v1/queries/{ssh['id']}/pin")
    save(console, name="Printers", kind="service", search="port:631", pinned=True)
    queue_hosts(console.db, tmp_path, place, lab_hosts(), ports="22,80,631")
    process_all(console.db, tmp_path)
    # A day of history before today's count: 1 SSH server yesterday, 3 now.
    now = datetime.now(UTC)
    with console.db.write() as conn:
        conn.execute(
            update(query_counts)
            .where(query_counts.c.query_id == ssh["id"])
            .values(counted_at=now - timedelta(hours=1))
        )
        query_store.record_count(
            conn, ssh["id"], 1, counted_at=now - timedelta(days=1, hours=2), task_id=None
        )
        query_store.record_count(conn, ssh["id"], 3, counted_at=now, task_id=None)
        failed_id = conn.execute(select(tasks.c.id).where(tasks.c.type == "scan")).scalar_one()
    console.admin.post(
        "/api/v1/tasks", json={"name": "doomed", "start_time": "2099-01-01T00:00:00Z"}
    )
    doomed = console.admin.get("/api/v1/tasks", params={"tab": "all", "search": "name:doomed"})
    doomed_id = doomed.json()["items"][0]["id"]
    assert console.admin.post(f"/api/v1/tasks/{doomed_id}/stop").status_code == 200

    page = browser.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "SSH servers" in html
    assert "Printers" in html
    assert "Above its threshold of 2" in html
    assert "Since yesterday: <strong>+2</strong>" in html
    assert 'href="/assets?search=port%3A22"' in html
    assert 'href="/assets?search=port%3A631"' in html
    assert 'role="img" aria-label="Trend of SSH servers: last ' in html
    # The Query task of the pin counted the empty inventory: 0, before yesterday's 1 was put.
    assert "counts, from 1 to 3 (lowest 0, highest 3)" in html
    assert "Latest failures" in html
    assert "doomed" in html
    assert f"task={failed_id}" not in html  # a processed scan is no failure
    assert 'href="/tasks?tab=failed"' in html
