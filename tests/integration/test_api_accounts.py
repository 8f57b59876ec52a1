"""Login, tokens, users, sites and the first start, through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveyor.store.bootstrap import CREDENTIALS_FILE, bootstrap_if_empty
from surveyor.store.engine import Database
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest


def test_health_answers_without_a_token(console: ConsoleUnderTest) -> None:
    response = console.anonymous().get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_openapi_document_lists_the_task_routes(console: ConsoleUnderTest) -> None:
    spec = console.anonymous().get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/tasks",
        "/api/v1/tasks/counts",
        "/api/v1/tasks/{task_id}/stop",
        "/api/v1/sites",
        "/api/v1/explorers",
        "/api/v1/hosted-zones",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/auth/login",
    ):
        assert path in spec["paths"], path


def test_login_gives_a_token_that_works(console: ConsoleUnderTest) -> None:
    response = console.anonymous().post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "admin"
    me = Api(console.client, body["token"]).get("/api/v1/users/me").json()
    assert me["email"] == ADMIN_EMAIL
    assert me["last_login_at"] is not None


def test_a_wrong_password_is_refused_and_repeated_failures_are_slowed(
    console: ConsoleUnderTest,
) -> None:
    anonymous = console.anonymous()
    for _ in range(10):
        response = anonymous.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "guess"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "the email or password is wrong"
    limited = anonymous.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert limited.status_code == 429
    assert limited.json()["error"]["details"]["retry_after"] > 0


def test_an_api_token_is_shown_once_and_stops_working_when_deleted(
    console: ConsoleUnderTest,
) -> None:
    viewer = console.as_role("viewer")
    created = viewer.post("/api/v1/tokens", json={"name": "grafana"}).json()
    token = Api(console.client, created["token"])
    assert token.get("/api/v1/tasks").status_code == 200
    listed = viewer.get("/api/v1/tokens").json()
    assert any(t["id"] == created["id"] for t in listed)
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert token.post("/api/v1/tasks", json={"name": "x"}).status_code == 403
    assert viewer.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert token.get("/api/v1/tasks").status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer svr_0123456789abcdef_wrong", "Basic abc", ""]
)
def test_bad_credentials_are_refused(console: ConsoleUnderTest, header: str) -> None:
    response = console.client.get("/api/v1/tasks", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_an_admin_adds_a_user_who_can_log_in_with_the_generated_password(
    console: ConsoleUnderTest,
) -> None:
    created = console.admin.post(
        "/api/v1/users", json={"email": "op@example.test", "role": "operator"}
    ).json()
    assert created["role"] == "operator"
    assert created["generated_password"]
    login = console.anonymous().post(
        "/api/v1/auth/login",
        json={"email": "op@example.test", "password": created["generated_password"]},
    )
    assert login.json()["role"] == "operator"
    again = console.admin.post("/api/v1/users", json={"email": "op@example.test"})
    assert again.status_code == 409
    demoted = console.admin.patch(f"/api/v1/users/{created['id']}", json={"role": "viewer"})
    assert demoted.json()["role"] == "viewer"
    assert console.admin.delete(f"/api/v1/users/{created['id']}").status_code == 204
    assert console.admin.get(f"/api/v1/users/{created['id']}").status_code == 404


def test_an_admin_cannot_lock_themselves_out(console: ConsoleUnderTest) -> None:
    me = console.admin.get("/api/v1/users/me").json()
    assert (
        console.admin.patch(f"/api/v1/users/{me['id']}", json={"role": "viewer"}).status_code == 409
    )
    assert console.admin.delete(f"/api/v1/users/{me['id']}").status_code == 409


def test_a_site_scope_is_validated_and_sized(console: ConsoleUnderTest) -> None:
    site = console.admin.post(
        "/api/v1/sites", json={"name": "lab", "scope": "127.0.1.0/24", "excludes": "127.0.1.1"}
    ).json()
    assert site["scope_size"] == 255
    bad = console.admin.post("/api/v1/sites", json={"name": "bad", "scope": "127.0.0.1/33"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["token"] == "127.0.0.1/33"
    dup = console.admin.post("/api/v1/sites", json={"name": "lab"})
    assert dup.status_code == 409


def test_the_last_site_cannot_be_deleted(console: ConsoleUnderTest) -> None:
    sites = console.admin.get("/api/v1/sites").json()
    assert len(sites) == 1
    assert sites[0]["scope"] == "127.0.0.1"
    response = console.admin.delete(f"/api/v1/sites/{sites[0]['id']}")
    assert response.status_code == 409


def test_every_admin_action_leaves_an_audit_entry(console: ConsoleUnderTest) -> None:
    from sqlalchemy import select

    from surveyor.store.schema import audit_events

    console.admin.post("/api/v1/sites", json={"name": "audited"})
    task = console.admin.post("/api/v1/tasks", json={"name": "x"}).json()
    console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
    with console.db.read() as conn:
        actions = [(r.action, r.object_type) for r in conn.execute(select(audit_events))]
    assert ("create", "site") in actions
    assert ("create", "task") in actions
    assert ("stop", "task") in actions


def test_first_start_creates_an_admin_with_a_private_password_file(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SURVEYOR_ADMIN_EMAIL", "SURVEYOR_ADMIN_PASSWORD", "SURVEYOR_BOOTSTRAP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    created = bootstrap_if_empty(db, tmp_path)
    assert created is not None
    assert created.generated_password
    path = tmp_path / CREDENTIALS_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert created.generated_password in path.read_text()
    assert bootstrap_if_empty(db, tmp_path) is None
