"""The API and the web console's pages reach the same services: the same action through
either entrance is refused alike and leaves the same audit entries (on each backend)."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest

WEB_ADMIN = "web-admin@example.test"


def trail(console: ConsoleUnderTest, object_type: str, actor: str) -> list[tuple[str, Any]]:
    """The (action, details) of the actor's audit entries on objects of a type, oldest first."""
    answer = console.admin.get("/api/v1/audit", params={"object_type": object_type, "actor": actor})
    assert answer.status_code == 200, answer.text
    return [(entry["action"], entry["details"]) for entry in reversed(answer.json()["items"])]


def test_an_api_token_made_and_revoked_on_its_page_is_audited_as_through_the_api(
    console: ConsoleUnderTest,
) -> None:
    page, csrf = signed_in(console, "admin")
    made = page.post("/tokens", data={"csrf_token": csrf, "name": "nightly"})
    assert made.status_code == 200
    token_id = re.search(r'href="/tokens/(\d+)/revoke"', page.get("/tokens").text)
    assert token_id is not None
    revoked = page.post(f"/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303

    created = console.admin.post("/api/v1/tokens", json={"name": "nightly"})
    assert created.status_code == 201
    assert console.admin.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204

    expected = [("create", {"name": "nightly"}), ("delete", {"name": "nightly"})]
    assert trail(console, "token", WEB_ADMIN) == expected
    assert trail(console, "token", console.admin.email) == expected


def test_an_enrollment_token_is_refused_and_audited_alike_on_the_page_and_the_api(
    console: ConsoleUnderTest,
) -> None:
    page, csrf = signed_in(console, "admin")
    form = {"csrf_token": csrf, "name": "lab", "max_uses": "3", "no_expiry": "1"}

    refused_page = page.post("/explorers/enrollment-tokens", data={**form, "site_id": "999999"})
    refused_api = console.admin.post(
        "/api/v1/enrollment-tokens",
        json={"name": "lab", "max_uses": 3, "expires_in_days": None, "site_id": 999999},
    )
    assert refused_page.status_code == 400
    assert refused_api.status_code == 400
    message = refused_api.json()["error"]["message"]
    assert message == "site 999999 does not exist"
    assert message in refused_page.text
    assert trail(console, "enrollment_token", WEB_ADMIN) == []

    assert page.post("/explorers/enrollment-tokens", data=form).status_code == 200
    made = console.admin.post(
        "/api/v1/enrollment-tokens", json={"name": "lab", "max_uses": 3, "expires_in_days": None}
    )
    assert made.status_code == 201

    expected = [("create", {"name": "lab", "expires_at": None, "max_uses": 3})]
    assert trail(console, "enrollment_token", WEB_ADMIN) == expected
    assert trail(console, "enrollment_token", console.admin.email) == expected
