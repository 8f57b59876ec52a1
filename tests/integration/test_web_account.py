"""The web console's account page: who you are, and changing your own password."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from surveyor.store import accounts
from surveyor.store.accounts import Role
from tests.integration.test_web_sessions import browser, log_in
from tests.support.console import Api, ConsoleUnderTest

EMAIL = "ana@example.test"
PASSWORD = "ana's first password"
NEW_PASSWORD = "ana's second password"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def signed_in_as_ana(console: ConsoleUnderTest) -> tuple[TestClient, str]:
    with console.db.write() as conn:
        ana = accounts.create_user(conn, EMAIL, password=PASSWORD, name="Ana Lyst")
        accounts.set_membership(conn, console.organization_id, ana["id"], Role.OPERATOR)
    client = browser(console)
    assert log_in(client, EMAIL, PASSWORD).status_code == 303
    page = client.get("/account")
    assert page.status_code == 200
    match = _CSRF_META.search(page.text)
    assert match is not None
    return client, match.group(1)


def api_session(console: ConsoleUnderTest, password: str) -> Api:
    response = console.anonymous().post(
        "/api/v1/auth/login", json={"email": EMAIL, "password": password}
    )
    assert response.status_code == 200, response.text
    return Api(console.client, response.json()["token"])


def change(client: TestClient, csrf: str, current: str, new: str, again: str | None = None) -> str:
    response = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )
    return f"{response.status_code} {response.text}"


def test_the_account_page_shows_who_you_are_and_is_linked_from_every_page(
    console: ConsoleUnderTest,
) -> None:
    client, _ = signed_in_as_ana(console)
    page = client.get("/account").text
    assert EMAIL in page
    assert "Ana Lyst" in page
    row = re.search(
        r"<td[^>]*>Default</td>\s*<td[^>]*>operator</td>\s*<td[^>]*>\s*(.*?)</td>", page, re.S
    )
    assert row is not None
    assert "signed in here" in row.group(1)
    assert 'href="/account"' in client.get("/tasks").text
    assert browser(console).get("/account").status_code == 303


def test_changing_your_password_on_the_web_signs_out_your_other_sessions_only(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in_as_ana(console)
    elsewhere = api_session(console, PASSWORD)
    answer = change(client, csrf, PASSWORD, NEW_PASSWORD)
    assert answer.startswith("200 ")
    assert "Your password was changed. 1 other session or API token was signed out." in answer
    assert client.get("/tasks").status_code == 200
    assert elsewhere.get("/api/v1/users/me").status_code == 401
    assert log_in(browser(console), EMAIL, PASSWORD).status_code == 401
    assert log_in(browser(console), EMAIL, NEW_PASSWORD).status_code == 303


def test_a_refused_password_change_says_why_and_changes_nothing(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in_as_ana(console)
    wrong = change(client, csrf, "not my password", NEW_PASSWORD)
    assert wrong.startswith("403 ")
    assert "The current password is wrong." in wrong
    differ = change(client, csrf, PASSWORD, NEW_PASSWORD, "something else entirely")
    assert differ.startswith("400 ")
    assert "The two new passwords differ." in differ
    short = change(client, csrf, PASSWORD, "short")
    assert short.startswith("400 ")
    assert "at least 12 characters" in short
    forged = change(client, "forged", PASSWORD, NEW_PASSWORD)
    assert forged.startswith("403 ")
    assert "Form expired" in forged
    assert log_in(browser(console), EMAIL, PASSWORD).status_code == 303


def test_a_member_of_two_organizations_switches_between_them_on_the_account_page(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in_as_ana(console)
    other_org, _other_admin = console.other_organization()
    with console.db.write() as conn:
        ana = accounts.find_user_by_email(conn, EMAIL)
        assert ana is not None
        accounts.set_membership(conn, other_org, ana["id"], Role.VIEWER)
    first_session = client.cookies.get("surveyor_session")
    page = client.get("/account").text
    assert "Other" in page
    assert "Work here" in page

    switched = client.post(
        "/account/organization", data={"csrf_token": csrf, "organization_id": str(other_org)}
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/tasks"
    second_session = client.cookies.get("surveyor_session")
    assert second_session
    assert second_session != first_session
    # the new session works in the other organization, with the role held there
    me = Api(console.client, second_session).get("/api/v1/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "viewer"
    assert "Other site" in client.get("/sites").text
    # the session it replaced is over
    assert Api(console.client, first_session or "").get("/api/v1/users/me").status_code == 401


def test_switching_to_an_organization_you_are_not_in_is_refused_and_keeps_the_session(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in_as_ana(console)
    other_org, _ = console.other_organization()
    session = client.cookies.get("surveyor_session")
    refused = client.post(
        "/account/organization", data={"csrf_token": csrf, "organization_id": str(other_org)}
    )
    assert refused.status_code == 403
    assert "not a member of that organization" in refused.text
    assert client.cookies.get("surveyor_session") == session
    assert Api(console.client, session or "").get("/api/v1/users/me").status_code == 200
    forged = client.post(
        "/account/organization", data={"csrf_token": "forged", "organization_id": "1"}
    )
    assert forged.status_code == 403
    assert client.cookies.get("surveyor_session") == session
