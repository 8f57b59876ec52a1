"""The API's login and the web sign-in are one login: the same answer to the same attempt,
and failures at either entrance count towards the limits of both."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

import pytest
from fastapi.testclient import TestClient

from surveyor.console.state import ConsoleState
from surveyor.service.login import LoginLimits, LoginThrottle
from surveyor.store import accounts
from surveyor.store.accounts import Role
from tests.integration.test_web_sessions import browser
from tests.integration.test_web_sessions import log_in as web_log_in
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest

PASSWORD = "a password long enough"
LONER = "loner@example.test"  # the right password, but no membership anywhere
RETIRED = "retired@example.test"  # a member whose account was deactivated
UNKNOWN = "nobody@example.test"
#: Failed logins of one source on one account before that source waits (the default is
#: 10; fewer keep the tests short, the rule is the same).
PER_SOURCE_AND_ACCOUNT = 4
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Outcome(StrEnum):
    SIGNED_IN = "signed in"
    WRONG_CREDENTIALS = "wrong credentials"
    NOT_A_MEMBER = "not a member"
    RATE_LIMITED = "rate limited"


Entrance = Callable[[str, str], Outcome]


def through_the_api(console: ConsoleUnderTest) -> Entrance:
    def attempt(email: str, password: str) -> Outcome:
        answer = console.anonymous().post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        if answer.status_code == 200:
            me = Api(console.client, answer.json()["token"]).get("/api/v1/users/me")
            assert me.status_code == 200, me.text
            assert me.json()["email"] == email
            return Outcome.SIGNED_IN
        code = answer.json()["error"]["code"]
        return {
            (401, "unauthenticated"): Outcome.WRONG_CREDENTIALS,
            (403, "forbidden"): Outcome.NOT_A_MEMBER,
            (429, "rate_limited"): Outcome.RATE_LIMITED,
        }[answer.status_code, code]

    return attempt


def through_the_web(console: ConsoleUnderTest) -> Entrance:
    def attempt(email: str, password: str) -> Outcome:
        client = browser(console)
        answer = web_log_in(client, email, password)
        if answer.status_code == 303:
            assert client.get("/account").status_code == 200
            return Outcome.SIGNED_IN
        assert "surveyor_session" not in answer.headers.get("set-cookie", "")
        said = {
            401: "The email or password is wrong.",
            403: "You are not a member of any organization.",
            429: "Too many failed sign-ins.",
        }[answer.status_code]
        assert said in answer.text
        return {
            401: Outcome.WRONG_CREDENTIALS,
            403: Outcome.NOT_A_MEMBER,
            429: Outcome.RATE_LIMITED,
        }[answer.status_code]

    return attempt


@pytest.fixture
def entrances(console: ConsoleUnderTest) -> dict[str, Entrance]:
    state: ConsoleState = console.client.app.state.console
    state.login_limiter = LoginThrottle(LoginLimits(per_source_and_account=PER_SOURCE_AND_ACCOUNT))
    with console.db.write() as conn:
        accounts.create_user(conn, LONER, password=PASSWORD)
        retired = accounts.create_user(conn, RETIRED, password=PASSWORD)
        accounts.set_membership(conn, console.organization_id, retired["id"], Role.VIEWER)
        accounts.update_account(conn, retired["id"], is_active=False)
    return {"api": through_the_api(console), "web": through_the_web(console)}


CASES = {
    "the right password": (ADMIN_EMAIL, ADMIN_PASSWORD, Outcome.SIGNED_IN),
    "a wrong password": (ADMIN_EMAIL, "not the password", Outcome.WRONG_CREDENTIALS),
    "an unknown e-mail": (UNKNOWN, PASSWORD, Outcome.WRONG_CREDENTIALS),
    "an account without membership": (LONER, PASSWORD, Outcome.NOT_A_MEMBER),
    "an inactive account": (RETIRED, PASSWORD, Outcome.WRONG_CREDENTIALS),
}
#: Whether `PER_SOURCE_AND_ACCOUNT` such attempts make the source wait.
COUNTED = {
    "the right password": False,
    "a wrong password": True,
    "an unknown e-mail": True,
    "an account without membership": False,
    "an inactive account": True,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_entrances_answer_a_login_alike(entrances: dict[str, Entrance], case: str) -> None:
    email, password, expected = CASES[case]
    answers = {name: attempt(email, password) for name, attempt in entrances.items()}
    assert answers == {"api": expected, "web": expected}


@pytest.mark.parametrize("case", sorted(CASES))
def test_attempts_at_either_entrance_count_towards_the_limit_of_both(
    entrances: dict[str, Entrance], case: str
) -> None:
    email, password, expected = CASES[case]
    api, web = entrances["api"], entrances["web"]
    # alternately at each entrance, from one source (the test client's address)
    for attempt in range(PER_SOURCE_AND_ACCOUNT):
        assert (web if attempt % 2 else api)(email, password) is expected
    after = Outcome.RATE_LIMITED if COUNTED[case] else expected
    assert {"api": api(email, password), "web": web(email, password)} == {
        "api": after,
        "web": after,
    }


def test_a_source_made_to_wait_at_one_entrance_waits_at_the_other_even_with_the_password(
    entrances: dict[str, Entrance],
) -> None:
    api, web = entrances["api"], entrances["web"]
    for _ in range(PER_SOURCE_AND_ACCOUNT):
        assert api(ADMIN_EMAIL, "a guess") is Outcome.WRONG_CREDENTIALS
    assert web(ADMIN_EMAIL, ADMIN_PASSWORD) is Outcome.RATE_LIMITED
    assert api(ADMIN_EMAIL, ADMIN_PASSWORD) is Outcome.RATE_LIMITED


def test_wrong_current_passwords_on_the_api_and_the_account_page_count_together(
    console: ConsoleUnderTest, entrances: dict[str, Entrance]
) -> None:
    email = "ana@example.test"
    with console.db.write() as conn:
        ana = accounts.create_user(conn, email, password=PASSWORD)
        accounts.set_membership(conn, console.organization_id, ana["id"], Role.OPERATOR)
    token = console.anonymous().post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    api = Api(console.client, token.json()["token"])
    client: TestClient = browser(console)
    assert web_log_in(client, email, PASSWORD).status_code == 303
    match = _CSRF_META.search(client.get("/account").text)
    assert match is not None

    def through_the_api(current: str) -> int:
        answer = api.post(
            "/api/v1/users/me/password",
            json={"current_password": current, "new_password": "a brand new password"},
        )
        return answer.status_code

    def through_the_web(current: str) -> int:
        answer = client.post(
            "/account/password",
            data={
                "csrf_token": match.group(1),
                "current_password": current,
                "new_password": "a brand new password",
                "new_password_again": "a brand new password",
            },
        )
        return answer.status_code

    for attempt in range(PER_SOURCE_AND_ACCOUNT):
        change = through_the_web if attempt % 2 else through_the_api
        assert change(f"guess {attempt}") == 403
    assert through_the_api(PASSWORD) == 429
    assert through_the_web(PASSWORD) == 429
    # nothing changed: the password still opens a session, at either entrance
    assert entrances["api"](email, PASSWORD) is Outcome.SIGNED_IN
    assert entrances["web"](email, PASSWORD) is Outcome.SIGNED_IN
