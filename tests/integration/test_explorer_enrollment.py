"""Enrollment and presence (SPEC §6): admins hand out enrollment tokens, explorers trade
them for their own secret, and an explorer is online while it keeps checking in."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import httpx2
from sqlalchemy import select

from surveyor.store import explorers as explorer_store
from surveyor.store.schema import audit_events, enrollment_tokens, explorers
from tests.support.console import ConsoleUnderTest
from tests.support.explorers import (
    HOST,
    enroll,
    enrollment_token,
    set_checkin,
    utcnow,
)


def _enroll_with(console: ConsoleUnderTest, token: str, **body: object) -> httpx2.Response:
    response: httpx2.Response = console.client.post(
        "/api/v1/explorer/enroll",
        json={**HOST, **body},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response


def test_an_enrollment_token_is_shown_once_and_stored_only_as_a_digest(
    console: ConsoleUnderTest,
) -> None:
    created = enrollment_token(console.admin, name="datacenter")

    assert created["token"].startswith("sve_")
    assert created["usable"] is True
    listed = console.admin.get("/api/v1/enrollment-tokens").json()
    assert [item["name"] for item in listed] == ["datacenter"]
    assert "token" not in listed[0]
    with console.db.read() as conn:
        stored = conn.execute(select(enrollment_tokens)).mappings().one()
    secret_half = created["token"].split("_", 2)[2]
    assert secret_half not in stored.values()
    assert created["token"] not in stored.values()


def test_only_admins_manage_enrollment_tokens(console: ConsoleUnderTest) -> None:
    for role in ("viewer", "operator"):
        api = console.as_role(role)
        assert api.post("/api/v1/enrollment-tokens", json={"name": "x"}).status_code == 403
        assert api.get("/api/v1/enrollment-tokens").status_code == 403


def test_an_explorer_enrolls_and_its_own_secret_is_stored_only_as_a_digest(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console, name="branch-office")

    assert explorer.secret.startswith("svx_")
    with console.db.read() as conn:
        row = conn.execute(select(explorers).where(explorers.c.id == explorer.id)).mappings().one()
    assert explorer.secret.split("_", 2)[2] not in row.values()
    assert row["secret_hash"]
    shown = console.admin.get(f"/api/v1/explorers/{explorer.id}").json()
    assert shown["name"] == "branch-office"
    assert shown["online"] is True
    assert (shown["version"], shown["hostname"], shown["os"]) == (
        "9.9.9",
        "probe-host",
        "Linux test",
    )
    assert shown["addresses"] == ["127.0.0.5"]


def test_a_revoked_token_enrolls_nobody_but_explorers_enrolled_with_it_keep_working(
    console: ConsoleUnderTest,
) -> None:
    created = enrollment_token(console.admin)
    first = _enroll_with(console, created["token"], name="before-revoke")
    assert first.status_code == 201
    explorer_secret = first.json()["secret"]

    assert console.admin.delete(f"/api/v1/enrollment-tokens/{created['id']}").status_code == 204

    refused = _enroll_with(console, created["token"], name="after-revoke")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    still = console.client.post(
        "/api/v1/explorer/poll",
        json={**HOST, "wait": 0},
        headers={"Authorization": f"Bearer {explorer_secret}"},
    )
    assert still.status_code == 200
    listed = console.admin.get(f"/api/v1/enrollment-tokens/{created['id']}").json()
    assert listed["usable"] is False
    assert listed["uses"] == 1


def test_an_expired_token_enrolls_nobody(console: ConsoleUnderTest) -> None:
    created = enrollment_token(console.admin, expires_in_days=1)
    with console.db.write() as conn:
        conn.execute(
            enrollment_tokens.update()
            .where(enrollment_tokens.c.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    refused = _enroll_with(console, created["token"])

    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]["message"]


def test_an_unknown_token_enrolls_nobody(console: ConsoleUnderTest) -> None:
    refused = _enroll_with(console, "sve_0123456789abcdef_not-a-real-secret")
    assert refused.status_code == 401


def test_a_token_for_a_site_and_zone_enrolls_explorers_into_them(
    console: ConsoleUnderTest,
) -> None:
    site = console.admin.post("/api/v1/sites", json={"name": "Branch", "scope": "127.0.0.2"})
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "Pool", "max_concurrent": 2})

    explorer = enroll(console, site_id=site.json()["id"], hosted_zone_id=zone.json()["id"])

    shown = console.admin.get(f"/api/v1/explorers/{explorer.id}").json()
    assert shown["site_id"] == site.json()["id"]
    assert shown["hosted_zone_id"] == zone.json()["id"]


def test_explorers_on_one_host_without_a_chosen_name_get_unique_names(
    console: ConsoleUnderTest,
) -> None:
    token = enrollment_token(console.admin)["token"]

    names = [_enroll_with(console, token).json()["name"] for _ in range(3)]

    assert names == ["probe-host", "probe-host-2", "probe-host-3"]


def test_a_chosen_name_that_is_taken_is_refused(console: ConsoleUnderTest) -> None:
    token = enrollment_token(console.admin)["token"]
    assert _enroll_with(console, token, name="twin").status_code == 201

    again = _enroll_with(console, token, name="twin")

    assert again.status_code == 409


def test_a_check_in_updates_version_and_host_info(console: ConsoleUnderTest) -> None:
    explorer = enroll(console)

    explorer.poll(version="127.0.0", hostname="renamed-host", addresses=["192.0.2.7", "::1"])

    shown = console.admin.get(f"/api/v1/explorers/{explorer.id}").json()
    assert shown["version"] == "127.0.0"
    assert shown["hostname"] == "renamed-host"
    assert shown["addresses"] == ["192.0.2.7", "::1"]


def test_an_explorer_is_offline_once_it_missed_the_online_window(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    with console.db.write() as conn:
        set_checkin(conn, explorer.id, utcnow() - timedelta(seconds=61))

    assert console.admin.get(f"/api/v1/explorers/{explorer.id}").json()["online"] is False
    explorer.poll()
    assert console.admin.get(f"/api/v1/explorers/{explorer.id}").json()["online"] is True


def test_a_deleted_explorer_can_no_longer_connect(console: ConsoleUnderTest) -> None:
    explorer = enroll(console)

    assert console.admin.delete(f"/api/v1/explorers/{explorer.id}").status_code == 204

    refused = explorer.post("/poll", {**HOST, "wait": 0})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unknown_explorer"


def test_a_request_without_a_secret_or_with_an_api_token_is_refused(
    console: ConsoleUnderTest,
) -> None:
    bare = console.client.post("/api/v1/explorer/poll", json={**HOST, "wait": 0})
    assert bare.status_code == 401
    as_admin = console.admin.post("/api/v1/explorer/poll", json={**HOST, "wait": 0})
    assert as_admin.status_code == 401


def test_another_organizations_enrollment_tokens_are_not_found(
    console: ConsoleUnderTest,
) -> None:
    created = enrollment_token(console.admin)
    _, other_admin = console.other_organization()

    assert other_admin.get(f"/api/v1/enrollment-tokens/{created['id']}").status_code == 404
    assert other_admin.delete(f"/api/v1/enrollment-tokens/{created['id']}").status_code == 404
    assert other_admin.get("/api/v1/enrollment-tokens").json() == []


def test_an_enrollment_token_expires_after_seven_days_unless_asked_otherwise(
    console: ConsoleUnderTest,
) -> None:
    before = utcnow()
    default = enrollment_token(console.admin)
    chosen = enrollment_token(console.admin, expires_in_days=30)
    forever = enrollment_token(console.admin, expires_in_days=None)
    after = utcnow()

    expires = datetime.fromisoformat(default["expires_at"])
    assert before + timedelta(days=7) <= expires <= after + timedelta(days=7)
    assert datetime.fromisoformat(chosen["expires_at"]) >= before + timedelta(days=30)
    assert forever["expires_at"] is None
    assert (default["state"], forever["state"]) == ("usable", "usable")
    with console.db.read() as conn:
        audited = conn.execute(
            select(audit_events.c.details).where(
                audit_events.c.object_type == "enrollment_token",
                audit_events.c.object_id == forever["id"],
            )
        ).scalar_one()
    assert audited["expires_at"] is None


def test_a_token_limited_to_two_uses_enrolls_two_explorers_and_then_nobody(
    console: ConsoleUnderTest,
) -> None:
    created = enrollment_token(console.admin, max_uses=2)

    first = _enroll_with(console, created["token"], name="one")
    second = _enroll_with(console, created["token"], name="two")
    third = _enroll_with(console, created["token"], name="three")

    assert (first.status_code, second.status_code) == (201, 201)
    assert third.status_code == 401
    assert third.json()["error"]["message"] == (
        f"the enrollment token '{created['name']}' is used up: "
        "2 explorers enrolled with it, its limit"
    )
    shown = console.admin.get(f"/api/v1/enrollment-tokens/{created['id']}").json()
    assert (shown["uses"], shown["max_uses"], shown["state"], shown["usable"]) == (
        2,
        2,
        "used_up",
        False,
    )
    names = [item["name"] for item in console.admin.get("/api/v1/explorers").json()]
    assert "three" not in names


def test_a_refused_enrollment_does_not_count_as_a_use(console: ConsoleUnderTest) -> None:
    created = enrollment_token(console.admin, max_uses=1)
    enroll(console, name="taken")

    clash = _enroll_with(console, created["token"], name="taken")
    fresh = _enroll_with(console, created["token"], name="fresh")

    assert clash.status_code == 409
    assert fresh.status_code == 201


def test_token_limits_are_checked(console: ConsoleUnderTest) -> None:
    for body in ({"expires_in_days": 0}, {"max_uses": 0}, {"expires_in_days": "soon"}):
        refused = console.admin.post("/api/v1/enrollment-tokens", json={"name": "x", **body})
        assert refused.status_code == 422, body
        assert refused.json()["error"]["details"]


def test_the_last_use_of_a_token_goes_to_one_of_two_concurrent_enrollments(
    console: ConsoleUnderTest,
) -> None:
    created = enrollment_token(console.admin, max_uses=1)
    with console.db.read() as conn:
        token = explorer_store.find_enrollment_token(conn, created["token"])
    assert token is not None
    counted = threading.Event()
    release = threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        with console.db.write() as conn:
            results["first"] = explorer_store.count_enrollment(conn, token["id"], now=utcnow())
            counted.set()
            assert release.wait(10)

    def second() -> None:
        with console.db.write() as conn:
            results["second"] = explorer_store.count_enrollment(conn, token["id"], now=utcnow())

    one = threading.Thread(target=first)
    one.start()
    assert counted.wait(10)
    two = threading.Thread(target=second)
    two.start()
    release.set()
    one.join(10)
    two.join(10)

    assert results == {"first": True, "second": False}
    shown = console.admin.get(f"/api/v1/enrollment-tokens/{created['id']}").json()
    assert shown["uses"] == 1
