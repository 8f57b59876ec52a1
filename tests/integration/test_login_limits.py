"""Logging in under attack: the attacker's source waits, the account's owner gets in."""

from __future__ import annotations

import pytest

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.service.login import (
    LoginLimits,
    LoginRefused,
    LoginThrottle,
    Refusal,
    Session,
    log_in,
)
from surveyor.store import accounts
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.1"


class Logins:
    """Logins through the service, from chosen sources, against the console's database, all
    at one moment (the throttle's clock stands still)."""

    def __init__(self, console: ConsoleUnderTest, limits: LoginLimits | None = None) -> None:
        self.db = console.db
        self.throttle = LoginThrottle(limits, clock=lambda: 1000.0)

    def session(
        self, source: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
    ) -> Session:
        return log_in(
            self.db,
            self.throttle,
            email=email,
            password=password,
            source=source,
            now=SYSTEM_CLOCK.now(),
        )

    def refused(
        self, source: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
    ) -> LoginRefused:
        with pytest.raises(LoginRefused) as refused:
            self.session(source, email, password)
        return refused.value


@pytest.fixture
def logins(console: ConsoleUnderTest) -> Logins:
    return Logins(console)


def test_the_owner_signs_in_from_elsewhere_while_the_attackers_source_waits(
    console: ConsoleUnderTest, logins: Logins
) -> None:
    for _ in range(10):
        assert logins.refused(ATTACKER, password="guess").refusal is Refusal.WRONG_CREDENTIALS
    limited = logins.refused(ATTACKER)
    # even the right password gets the attacker nothing but a wait
    assert limited.refusal is Refusal.RATE_LIMITED
    assert limited.retry_after is not None
    assert limited.retry_after > 0

    session = logins.session(OWNER)
    assert session.email == ADMIN_EMAIL
    assert Api(console.client, session.token).get("/api/v1/users/me").status_code == 200


def test_an_account_attacked_from_many_sources_slows_them_but_not_its_owner(
    console: ConsoleUnderTest,
) -> None:
    logins = Logins(console, LoginLimits(account_alarm=5))
    attackers = [f"203.0.113.{n}" for n in range(5)]
    for source in attackers:
        assert logins.refused(source, password="guess").refusal is Refusal.WRONG_CREDENTIALS
    for source in attackers:
        assert logins.refused(source).refusal is Refusal.RATE_LIMITED
    assert logins.session(OWNER).email == ADMIN_EMAIL


def test_spraying_one_password_over_many_accounts_from_many_sources_is_slowed(
    console: ConsoleUnderTest,
) -> None:
    logins = Logins(console, LoginLimits(global_alarm=8))
    sprayers = [f"198.18.0.{n}" for n in range(8)]
    for n, source in enumerate(sprayers):
        sprayed = logins.refused(source, email=f"user{n}@example.test", password="Summer2026!")
        assert sprayed.refusal is Refusal.WRONG_CREDENTIALS
    slowed = logins.refused(sprayers[0], email="user99@example.test", password="Summer2026!")
    assert slowed.refusal is Refusal.RATE_LIMITED
    assert logins.session(OWNER).email == ADMIN_EMAIL


def test_a_right_password_without_a_membership_opens_no_session(
    console: ConsoleUnderTest, logins: Logins
) -> None:
    with console.db.write() as conn:
        accounts.create_user(conn, "loner@example.test", password="a long enough password")
    found = logins.refused(OWNER, email="loner@example.test", password="a long enough password")
    assert found.refusal is Refusal.NOT_A_MEMBER
