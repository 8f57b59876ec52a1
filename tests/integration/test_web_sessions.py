"""Web console sessions: signing in and out, cookie flags, CSRF, roles, security headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx2
from fastapi.testclient import TestClient

from surveyor.store import accounts
from tests.support.asgi_client import InProcessClient
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, ConsoleUnderTest

FUTURE = "2099-01-01T00:00:00Z"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(console: ConsoleUnderTest, *, https: bool = False) -> TestClient:
    """A client of its own (its own cookies), like a second browser."""
    base = "https://testserver" if https else "http://testserver"
    return InProcessClient.beside(console.client, base_url=base, follow_redirects=False)


def signed_in(console: ConsoleUnderTest, role: str = "admin") -> tuple[TestClient, str]:
    """A browser with a session for a member with `role`, and the session's CSRF token."""
    email = f"web-{role}@example.test"
    with console.db.write() as conn:
        user = accounts.find_user_by_email(conn, email) or accounts.create_user(
            conn, email, password=None
        )
        accounts.set_membership(conn, console.organization_id, user["id"], accounts.Role(role))
        _, token = accounts.create_token(
            conn,
            user_id=user["id"],
            organization_id=console.organization_id,
            name="web session",
            kind="session",
            expires_at=datetime.now(UTC) + accounts.SESSION_LIFETIME,
        )
    client = browser(console)
    client.cookies.set("surveyor_session", token)
    page = client.get("/tasks")
    assert page.status_code == 200, page.text
    match = _CSRF_META.search(page.text)
    assert match is not None
    return client, match.group(1)


def create(console: ConsoleUnderTest, **body: Any) -> dict[str, Any]:
    response = console.admin.post("/api/v1/tasks", json={"name": "sweep", **body})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def log_in(client: TestClient, email: str, password: str, **extra: str) -> httpx2.Response:
    form = client.get("/login")
    match = _CSRF_FIELD.search(form.text)
    assert match is not None
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": match.group(1), **extra},
    )


def test_pages_send_visitors_without_a_session_to_the_login_page(
    console: ConsoleUnderTest,
) -> None:
    client = browser(console)
    for path in ("/tasks?tab=failed", "/tasks/new", "/explorers", "/sites", "/assets"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert client.get("/").headers["location"] == "/tasks"


def test_signing_in_sets_a_private_cookie_and_returns_to_the_page_asked_for(
    console: ConsoleUnderTest,
) -> None:
    client = browser(console)
    response = log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, next="/tasks?tab=failed")
    assert response.status_code == 303
    assert response.headers["location"] == "/tasks?tab=failed"
    cookie = response.headers["set-cookie"]
    assert "surveyor_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    page = client.get("/tasks?tab=failed")
    assert page.status_code == 200
    assert ADMIN_EMAIL in page.text


def test_the_session_cookie_is_secure_over_https(console: ConsoleUnderTest) -> None:
    client = browser(console, https=True)
    response = log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    session_cookie = next(
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith("surveyor_session=")
    )
    assert "Secure" in session_cookie


def test_a_wrong_password_is_refused_and_repeated_failures_are_rate_limited(
    console: ConsoleUnderTest,
) -> None:
    client = browser(console)
    wrong = log_in(client, ADMIN_EMAIL, "not it")
    assert wrong.status_code == 401
    assert "The email or password is wrong." in wrong.text
    assert "surveyor_session" not in wrong.headers.get("set-cookie", "")
    for _ in range(10):
        last = log_in(client, ADMIN_EMAIL, "not it")
    assert last.status_code == 429
    assert "Too many failed sign-ins" in last.text
    assert log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 429


def test_the_login_form_needs_its_own_csrf_token(console: ConsoleUnderTest) -> None:
    client = browser(console)
    forged = client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "x"}
    )
    assert forged.status_code == 403
    assert "surveyor_session" not in forged.headers.get("set-cookie", "")


def test_after_login_the_browser_only_goes_to_pages_of_this_console(
    console: ConsoleUnderTest,
) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "\\\\evil", "tasks"):
        client = browser(console)
        response = log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, next=target)
        assert response.headers["location"] == "/tasks", target


def test_signing_out_ends_the_session_for_good(console: ConsoleUnderTest) -> None:
    client, csrf = signed_in(console)
    token = client.cookies.get("surveyor_session")
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    replay = browser(console)
    replay.cookies.set("surveyor_session", token or "")
    assert replay.get("/tasks").status_code == 303
    assert (
        console.anonymous()
        .get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        .status_code
        == 401
    )


def test_a_post_without_the_sessions_csrf_token_changes_nothing(
    console: ConsoleUnderTest,
) -> None:
    task = create(console, start_time=FUTURE)
    client, csrf = signed_in(console, "operator")
    for data in ({}, {"csrf_token": "0" * len(csrf)}):
        refused = client.post(f"/tasks/{task['id']}/stop", data=data)
        assert refused.status_code == 403
        assert "could not be verified" in refused.text
    _, other_csrf = signed_in(console, "admin")
    assert other_csrf != csrf
    assert (
        client.post(f"/tasks/{task['id']}/stop", data={"csrf_token": other_csrf}).status_code == 403
    )
    assert console.admin.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "new"
    accepted = client.post(f"/tasks/{task['id']}/stop", data={"csrf_token": csrf})
    assert accepted.status_code == 303
    assert console.admin.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "stopped"


def test_a_viewer_sees_no_actions_and_cannot_post_them(console: ConsoleUnderTest) -> None:
    task = create(console, start_time=FUTURE)
    client, csrf = signed_in(console, "viewer")
    page = client.get(f"/tasks?tab=scheduled&task={task['id']}")
    assert page.status_code == 200
    assert 'data-action="stop"' not in page.text
    assert 'href="/tasks/new"' not in page.text
    refused = client.post(f"/tasks/{task['id']}/stop", data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert "needs the operator role" in refused.text
    assert client.get("/tasks/new").status_code == 403
    assert client.post("/tasks/new", data={"csrf_token": csrf, "name": "x"}).status_code == 403
    assert console.admin.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "new"
    operator, _ = signed_in(console, "operator")
    assert 'data-action="stop"' in operator.get(f"/tasks?task={task['id']}").text


def test_pages_forbid_inline_scripts_and_framing(console: ConsoleUnderTest) -> None:
    client, _ = signed_in(console)
    pages = [client.get(path) for path in ("/tasks", "/tasks/new", "/explorers", "/sites")]
    for response in [*pages, browser(console).get("/login")]:
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in response.text
        assert " onclick=" not in response.text
