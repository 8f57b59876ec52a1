"""`GET /api/v1/audit` on each backend: filters, newest-first pages, organizations kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from surveyor.store.audit import audit
from tests.support.console import ADMIN_EMAIL, ConsoleUnderTest

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def entries(console: ConsoleUnderTest, **params: Any) -> list[dict[str, Any]]:
    response = console.admin.get("/api/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def record(console: ConsoleUnderTest, minutes: int, **fields: Any) -> None:
    """An entry at T0 + `minutes`, so that tests of time filters know every time."""
    values: dict[str, Any] = {
        "organization_id": console.organization_id,
        "actor": "someone@example.test",
        "action": "edit",
        "object_type": "site",
        "object_id": 1,
        **fields,
    }
    with console.db.write() as conn:
        audit(conn, at=T0 + timedelta(minutes=minutes), **values)


def test_what_an_admin_does_through_the_api_is_in_the_trail_newest_first(
    console: ConsoleUnderTest,
) -> None:
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "dmz"}).json()
    console.admin.patch(f"/api/v1/hosted-zones/{zone['id']}", json={"max_concurrent": 4})
    console.admin.delete(f"/api/v1/hosted-zones/{zone['id']}")

    items = entries(console, object_type="hosted_zone")
    assert [(e["action"], e["object_id"], e["actor"]) for e in items] == [
        ("delete", zone["id"], ADMIN_EMAIL),
        ("edit", zone["id"], ADMIN_EMAIL),
        ("create", zone["id"], ADMIN_EMAIL),
    ]
    assert items[1]["details"] == {"fields": ["max_concurrent"]}
    assert {e["organization_id"] for e in items} == {console.organization_id}
    times = [datetime.fromisoformat(e["at"]) for e in items]
    assert times == sorted(times, reverse=True)


def test_pages_follow_each_other_without_gaps_or_repeats_even_as_entries_arrive(
    console: ConsoleUnderTest,
) -> None:
    for minute in range(7):
        record(console, minute, object_id=100 + minute)
    record(console, 3, object_id=200)  # the same time as another entry: the id breaks the tie
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "actor": "someone@example.test"}
        if cursor:
            params["cursor"] = cursor
        body = console.admin.get("/api/v1/audit", params=params).json()
        seen.extend(entry["object_id"] for entry in body["items"])
        pages += 1
        if pages == 1:
            record(console, 60, object_id=999)  # newer than the first page: not on later pages
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    # minute 3 holds two entries: the later one (200) first
    assert seen == [106, 105, 104, 200, 103, 102, 101, 100]


def test_filters_narrow_by_actor_action_object_and_time(console: ConsoleUnderTest) -> None:
    record(console, 0, actor="ann@example.test", action="create", object_id=1)
    record(console, 10, actor="ann@example.test", action="edit", object_id=1)
    record(console, 20, actor="bob@example.test", action="edit", object_id=2)
    record(console, 30, actor="explorer:Branch-1", action="enroll", object_type="explorer")
    record(console, 40, actor="bob@example.test", action="delete", object_id=1)

    def ids(**params: Any) -> list[tuple[str, str, int]]:
        """The entries of this test (the console's own are older than T0)."""
        params.setdefault("since", T0.isoformat())
        return [
            (e["actor"].split("@")[0], e["action"], e["object_id"])
            for e in entries(console, **params)
        ]

    assert ids(actor="ann@example.test") == [("ann", "edit", 1), ("ann", "create", 1)]
    # e-mail addresses match in any case; other actors as written
    assert ids(actor="Bob@Example.TEST") == [("bob", "delete", 1), ("bob", "edit", 2)]
    assert ids(actor="explorer:Branch-1") == [("explorer:Branch-1", "enroll", 1)]
    assert ids(action="edit") == [("bob", "edit", 2), ("ann", "edit", 1)]
    assert ids(object_type="site", object_id=1) == [
        ("bob", "delete", 1),
        ("ann", "edit", 1),
        ("ann", "create", 1),
    ]
    assert ids(action="edit", actor="bob@example.test") == [("bob", "edit", 2)]
    # since is inclusive, until exclusive; both take any RFC 3339 offset
    window = ids(since="2030-05-01T12:10:00Z", until="2030-05-01T14:30:00+02:00")
    assert window == [("bob", "edit", 2), ("ann", "edit", 1)]
    assert ids(since="2030-05-01T12:40:00Z") == [("bob", "delete", 1)]
    assert ids(action="nothing-like-this") == []


def test_the_trail_never_shows_another_organizations_entries(console: ConsoleUnderTest) -> None:
    other_org, other_admin = console.other_organization()
    theirs = other_admin.post("/api/v1/hosted-zones", json={"name": "their zone"}).json()
    mine = console.admin.post("/api/v1/hosted-zones", json={"name": "my zone"}).json()

    my_entries = entries(console)
    assert {e["organization_id"] for e in my_entries} == {console.organization_id}
    assert mine["id"] in {e["object_id"] for e in my_entries if e["object_type"] == "hosted_zone"}
    assert entries(console, object_type="hosted_zone", object_id=theirs["id"]) == []
    their_view = other_admin.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    assert {e["organization_id"] for e in their_view} == {other_org}
    their_zones = [
        (e["action"], e["object_id"]) for e in their_view if e["object_type"] == "hosted_zone"
    ]
    assert their_zones == [("create", theirs["id"])]


def test_only_admins_read_the_trail(console: ConsoleUnderTest) -> None:
    for role in ("viewer", "operator"):
        refused = console.as_role(role).get("/api/v1/audit")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    assert console.anonymous().get("/api/v1/audit").status_code == 401
    assert console.as_role("admin").get("/api/v1/audit").status_code == 200


def test_bad_filters_and_cursors_are_refused_with_the_reason(console: ConsoleUnderTest) -> None:
    def error(**params: Any) -> tuple[int, dict[str, Any]]:
        response = console.admin.get("/api/v1/audit", params=params)
        return response.status_code, response.json()["error"]

    status, body = error(since="2030-05-02T00:00:00Z", until="2030-05-01T00:00:00Z")
    assert (status, body["code"], body["details"]) == (400, "invalid_filter", {"field": "until"})
    status, body = error(since="2030-05-02 10:00")  # no offset: which time zone?
    assert (status, body["code"]) == (422, "invalid_request")
    assert "since" in body["message"]
    status, body = error(cursor="not a cursor")
    assert (status, body["code"]) == (400, "invalid_cursor")
    tasks_cursor = "WyJhbGwiLG51bGwsMTBd"  # ["all",null,10]: a cursor of the tasks listing
    status, body = error(cursor=tasks_cursor)
    assert (status, body["code"]) == (400, "invalid_cursor")
    assert "another listing" in body["message"]
    status, body = error(object_id="0")
    assert status == 422
    status, body = error(actor="nul\x00byte")  # no database stores it: refused, not a 500
    assert (status, body["code"]) == (422, "invalid_request")
    status, body = error(since="0001-01-01T00:00:00+01:00")  # before the calendar's start in UTC
    assert (status, body["code"]) == (400, "invalid_filter")


def test_the_openapi_document_describes_the_audit_listing(console: ConsoleUnderTest) -> None:
    document = console.client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/audit"]["get"]
    parameters = {p["name"] for p in operation["parameters"]}
    assert {"actor", "action", "object_type", "object_id", "since", "until"} <= parameters
    assert {"limit", "cursor"} <= parameters
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/AuditPage")
    assert {"400", "401", "403", "422"} <= set(operation["responses"])
