"""The Hosted zones, API tokens and Audit pages on each backend: what they show, what their
forms do, and who may use them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as task_store
from surveyor.store.audit import audit
from surveyor.store.records import create_record
from surveyor.store.schema import explorers
from tests.integration.test_web_sessions import FUTURE, browser, signed_in
from tests.support.console import ConsoleUnderTest

WEB_ADMIN = "web-admin@example.test"


def zone_id_of(location: str) -> int:
    match = re.fullmatch(r"/hosted-zones/(\d+)", location)
    assert match is not None, location
    return int(match.group(1))


def test_an_admin_creates_edits_and_deletes_a_hosted_zone_through_the_forms(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "admin")
    assert 'href="/hosted-zones"' in client.get("/tasks").text  # in the main navigation
    empty = client.get("/hosted-zones").text
    assert "No hosted zones yet." in empty
    assert "Create hosted zone" in empty

    made = client.post(
        "/hosted-zones",
        data={"csrf_token": csrf, "name": "dmz", "description": "edge", "max_concurrent": "2"},
    )
    assert made.status_code == 303
    zone_id = zone_id_of(made.headers["location"])
    zone = console.admin.get(f"/api/v1/hosted-zones/{zone_id}").json()
    assert (zone["name"], zone["description"], zone["max_concurrent"]) == ("dmz", "edge", 2)

    with console.db.write() as conn:
        create_record(
            conn,
            explorers,
            console.organization_id,
            {"name": "edge-1", "addresses": [], "hosted_zone_id": zone_id},
        )
        create_record(conn, explorers, console.organization_id, {"name": "elsewhere"})
    listed = client.get("/hosted-zones").text
    assert f'<a href="/hosted-zones/{zone_id}">dmz</a>' in listed
    assert "edge-1" in listed
    page = client.get(f"/hosted-zones/{zone_id}").text
    assert "<h1>dmz</h1>" in page
    members = page.split('id="zone-members"', 1)[1]
    assert "edge-1" in members
    assert "elsewhere" not in members

    edited = client.post(
        f"/hosted-zones/{zone_id}",
        data={"csrf_token": csrf, "name": "dmz", "description": "", "max_concurrent": "5"},
    )
    assert edited.status_code == 303
    assert edited.headers["location"] == f"/hosted-zones/{zone_id}?saved=1"
    assert "Saved." in client.get(edited.headers["location"]).text
    zone = console.admin.get(f"/api/v1/hosted-zones/{zone_id}").json()
    assert (zone["description"], zone["max_concurrent"]) == ("", 5)
    unchanged = {"csrf_token": csrf, "name": "dmz", "description": "", "max_concurrent": "5"}
    assert client.post(f"/hosted-zones/{zone_id}", data=unchanged).status_code == 303

    confirm = client.get(f"/hosted-zones/{zone_id}/delete")
    assert confirm.status_code == 200
    assert "Delete hosted zone “dmz”?" in confirm.text
    assert "Its 1 explorer leave the zone" in confirm.text
    deleted = client.post(f"/hosted-zones/{zone_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert console.admin.get(f"/api/v1/hosted-zones/{zone_id}").status_code == 404
    assert client.get(f"/hosted-zones/{zone_id}").status_code == 404

    trail = console.admin.get(
        "/api/v1/audit", params={"object_type": "hosted_zone", "object_id": zone_id}
    ).json()["items"]
    # saving without a change records nothing; an edit names only the fields that changed
    assert [(e["action"], e["actor"], e["details"]) for e in trail] == [
        ("delete", WEB_ADMIN, {}),
        ("edit", WEB_ADMIN, {"fields": ["description", "max_concurrent"]}),
        ("create", WEB_ADMIN, {}),
    ]


def test_the_zone_forms_name_the_field_at_fault_and_keep_what_was_typed(
    console: ConsoleUnderTest,
) -> None:
    console.admin.post("/api/v1/hosted-zones", json={"name": "taken"})
    client, csrf = signed_in(console, "admin")
    duplicate = client.post(
        "/hosted-zones",
        data={"csrf_token": csrf, "name": "taken", "description": "mine", "max_concurrent": "1"},
    )
    assert duplicate.status_code == 400
    assert 'id="name-error"' in duplicate.text
    assert "A hosted zone with that name exists." in duplicate.text
    assert 'value="mine"' in duplicate.text
    too_many = client.post(
        "/hosted-zones",
        data={"csrf_token": csrf, "name": "fresh", "max_concurrent": "0"},
    )
    assert too_many.status_code == 400
    assert 'id="max_concurrent-error"' in too_many.text
    assert 'aria-invalid="true"' in too_many.text
    not_a_number = client.post(
        "/hosted-zones", data={"csrf_token": csrf, "name": "fresh", "max_concurrent": "two"}
    )
    assert "A whole number from 1 to 10,000." in not_a_number.text
    names = {z["name"] for z in console.admin.get("/api/v1/hosted-zones").json()}
    assert names == {"taken"}

    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "other"}).json()
    blank = client.post(
        f"/hosted-zones/{zone['id']}",
        data={"csrf_token": csrf, "name": " ", "max_concurrent": "1"},
    )
    assert blank.status_code == 400
    assert 'id="name-error"' in blank.text
    assert console.admin.get(f"/api/v1/hosted-zones/{zone['id']}").json()["name"] == "other"


def test_a_zone_whose_scans_run_is_not_deleted_and_the_page_says_why(
    console: ConsoleUnderTest,
) -> None:
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "busy"}).json()
    task = console.admin.post(
        "/api/v1/tasks", json={"name": "zoned", "hosted_zone_id": zone["id"]}
    ).json()
    with console.db.write() as conn:
        task_store.transition(
            conn, console.organization_id, task["id"], TaskStatus.ACTIVE, actor="test"
        )
    client, csrf = signed_in(console, "admin")
    refused = client.post(f"/hosted-zones/{zone['id']}/delete", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "Tasks in this zone are running; stop them first." in refused.text
    assert console.admin.get(f"/api/v1/hosted-zones/{zone['id']}").status_code == 200


def test_viewers_see_the_zones_but_only_admins_change_them(console: ConsoleUnderTest) -> None:
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "lab"}).json()
    for role in ("viewer", "operator"):
        client, csrf = signed_in(console, role)
        listed = client.get("/hosted-zones")
        assert listed.status_code == 200
        assert ">lab</a>" in listed.text
        assert "Create hosted zone" not in listed.text
        page = client.get(f"/hosted-zones/{zone['id']}").text
        assert "Delete this zone" not in page
        assert 'action="/hosted-zones/' not in page
        created = client.post("/hosted-zones", data={"csrf_token": csrf, "name": "mine"})
        assert created.status_code == 403
        assert f"needs the admin role; you are {role}" in created.text
        edit = {"csrf_token": csrf, "name": "renamed", "max_concurrent": "3"}
        assert client.post(f"/hosted-zones/{zone['id']}", data=edit).status_code == 403
        assert client.get(f"/hosted-zones/{zone['id']}/delete").status_code == 403
        delete = client.post(f"/hosted-zones/{zone['id']}/delete", data={"csrf_token": csrf})
        assert delete.status_code == 403
    assert console.admin.get(f"/api/v1/hosted-zones/{zone['id']}").json()["name"] == "lab"

    admin, _ = signed_in(console, "admin")
    forged = admin.post(f"/hosted-zones/{zone['id']}/delete", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert "Form expired" in forged.text
    _, other_admin = console.other_organization()
    theirs = other_admin.post("/api/v1/hosted-zones", json={"name": "their zone"}).json()
    assert admin.get(f"/hosted-zones/{theirs['id']}").status_code == 404
    assert "their zone" not in admin.get("/hosted-zones").text
    assert admin.get(f"/hosted-zones/{theirs['id']}/delete").status_code == 404


def test_a_member_creates_an_api_token_sees_it_once_and_revokes_it(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "viewer")
    page = client.get("/tokens")
    assert page.status_code == 200
    assert "You have no API tokens in this organization." in page.text
    assert "web session" not in page.text  # sessions are not API tokens

    made = client.post(
        "/tokens", data={"csrf_token": csrf, "name": "backup script", "expires_in_days": "30"}
    )
    assert made.status_code == 200
    match = re.search(r'id="new-token"><code>(svr_[^<]+)</code>', made.text)
    assert match is not None, made.text
    secret = match.group(1)
    me = console.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["email"] == "web-viewer@example.test"

    listed = client.get("/tokens").text
    assert "backup script" in listed
    assert secret not in listed
    (token,) = [
        t
        for t in console.client.get(
            "/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}
        ).json()
        if t["name"] == "backup script"
    ]
    expires = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    confirm = client.get(f"/tokens/{token['id']}/revoke")
    assert "Revoke API token “backup script”?" in confirm.text
    revoked = client.post(f"/tokens/{token['id']}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/tokens"
    gone = console.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401
    assert "backup script" not in client.get("/tokens").text


def test_the_token_form_names_the_field_at_fault_and_only_own_tokens_are_revoked(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    bad = client.post("/tokens", data={"csrf_token": csrf, "name": "ci", "expires_in_days": "0"})
    assert bad.status_code == 400
    assert 'id="expires_in_days-error"' in bad.text
    assert 'value="ci"' in bad.text
    unnamed = client.post("/tokens", data={"csrf_token": csrf, "name": ""})
    assert unnamed.status_code == 400
    assert 'id="name-error"' in unnamed.text
    assert "svr_" not in unnamed.text
    assert client.post("/tokens", data={"name": "no csrf"}).status_code == 403

    someone_elses = console.admin.post("/api/v1/tokens", json={"name": "admin's"}).json()
    assert client.get(f"/tokens/{someone_elses['id']}/revoke").status_code == 404
    refused = client.post(f"/tokens/{someone_elses['id']}/revoke", data={"csrf_token": csrf})
    assert refused.status_code == 404
    names = {t["name"] for t in console.admin.get("/api/v1/tokens").json()}
    assert "admin's" in names


def test_the_audit_page_shows_readable_entries_with_links_and_filters(
    console: ConsoleUnderTest,
) -> None:
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "dmz"}).json()
    task = console.admin.post(
        "/api/v1/tasks", json={"name": "weekly sweep", "start_time": FUTURE}
    ).json()
    console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
    client, _ = signed_in(console, "admin")
    assert 'href="/audit"' in client.get("/tasks").text

    page = client.get("/audit")
    assert page.status_code == 200
    assert f'<a href="/hosted-zones/{zone["id"]}">dmz</a>' in page.text
    assert f'<a href="/tasks?tab=all&amp;task={task["id"]}">weekly sweep</a>' in page.text
    assert "admin@example.test" in page.text
    assert '<th scope="col">Details</th>' in page.text
    assert page.text.index(">stop<") < page.text.index("weekly sweep</a>")

    stops = client.get("/audit", params={"action": "stop"}).text
    rows = stops.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<tr>") == 1
    assert "weekly sweep" in rows
    assert 'value="stop"' in stops  # the form keeps the filter
    history = client.get(
        "/audit", params={"object_type": "hosted_zone", "object_id": str(zone["id"])}
    ).text
    assert ">dmz</a>" in history
    assert "weekly sweep" not in history
    future = client.get("/audit", params={"since": "2099-01-01T00:00"}).text
    assert "No entry matches the filters." in future
    assert 'value="2099-01-01T00:00"' in future


def test_the_audit_page_pages_newest_first_and_names_a_bad_filter(
    console: ConsoleUnderTest,
) -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC)
    with console.db.write() as conn:
        for minute in range(60):
            audit(
                conn,
                organization_id=console.organization_id,
                actor="script@example.test",
                action="edit",
                object_type="site",
                object_id=minute + 1,
                details={"fields": ["scope", "excludes"], "note": f"change {minute}"},
                at=start + timedelta(minutes=minute),
            )
    client, _ = signed_in(console, "admin")
    first = client.get("/audit", params={"actor": "script@example.test"})
    assert "change 59" in first.text
    assert "change 10<" in first.text  # 50 a page: the newest 50
    assert "change 9<" not in first.text
    assert "fields:</span> scope, excludes" in first.text
    older = re.search(r'<a href="(/audit\?[^"]+)">Older entries</a>', first.text)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert "change 9<" in second
    assert "change 0<" in second
    assert "change 10<" not in second
    assert "change 59" not in second
    narrowed = client.get("/audit", params={"since": "2031-01-01T00:57:30.5+00:00"}).text
    assert re.findall(r"change (\d+)<", narrowed) == ["59", "58"]
    assert 'value="2031-01-01T00:57:30"' in narrowed  # as a datetime-local input shows it
    assert "Older entries" not in second
    assert ">Newest entries</a>" in second

    bad = client.get("/audit", params={"since": "yesterday", "object_id": "²"})
    assert bad.status_code == 400
    assert 'id="since-error"' in bad.text
    assert 'id="object_id-error"' in bad.text
    assert "Fix the filters to see entries." in bad.text
    upside_down = client.get(
        "/audit", params={"since": "2031-01-02T00:00", "until": "2031-01-01T00:00"}
    )
    assert upside_down.status_code == 400
    assert 'id="until-error"' in upside_down.text
    stale = client.get("/audit", params={"cursor": "garbage"})
    assert stale.status_code == 200  # a cursor that is no good starts from the newest


def test_the_audit_page_is_for_admins_and_escapes_what_users_typed(
    console: ConsoleUnderTest,
) -> None:
    console.admin.post("/api/v1/hosted-zones", json={"name": "<script>alert(1)</script>"})
    for role in ("viewer", "operator"):
        client, _ = signed_in(console, role)
        refused = client.get("/audit")
        assert refused.status_code == 403
        assert f"needs the admin role; you are {role}" in refused.text
        assert 'href="/audit"' not in client.get("/tasks").text
    for path in ("/audit", "/hosted-zones", "/tokens"):
        anonymous = browser(console).get(path)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/login?next=")
    admin, _ = signed_in(console, "admin")
    page = admin.get("/audit").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    _, other_admin = console.other_organization()
    other_admin.post("/api/v1/hosted-zones", json={"name": "their zone"})
    assert "their zone" not in admin.get("/audit").text
