"""A login costs one Argon2 verification whether or not its account exists, so the time it
takes tells nothing about the account. Counted, not timed: every verification the console
makes goes through `argon2.PasswordHasher.verify`."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from surveyor.store import accounts
from surveyor.store.schema import users
from tests.integration.test_web_sessions import browser
from tests.integration.test_web_sessions import log_in as web_log_in
from tests.support.console import ADMIN_EMAIL, ConsoleUnderTest

GONE_PASSWORD = "the right password, of a deactivated account"


class Verifications:
    """Every Argon2 verification the console makes, with the hash it checked against."""

    def __init__(self) -> None:
        self.hashes: list[str] = []


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    seen = Verifications()
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        seen.hashes.append(hash if isinstance(hash, str) else hash.decode())
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return seen


def parameters(argon2_hash: str) -> str:
    """`$argon2id$v=19$m=…,t=…,p=…`: what decides how long a verification takes."""
    return "$".join(argon2_hash.split("$")[:4])


def api_login(console: ConsoleUnderTest, email: str, password: str) -> int:
    response = console.anonymous().post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    )
    return response.status_code


def test_an_unknown_inactive_or_passwordless_account_costs_one_real_verification(
    console: ConsoleUnderTest, verifications: Verifications
) -> None:
    assert api_login(console, ADMIN_EMAIL, "not the password") == 401
    assert len(verifications.hashes) == 1
    real_parameters = parameters(verifications.hashes[0])

    with console.db.write() as conn:
        gone = accounts.create_user(conn, "gone@example.test", password=GONE_PASSWORD)
        accounts.set_membership(conn, console.organization_id, gone["id"], accounts.Role.VIEWER)
        conn.execute(update(users).where(users.c.id == gone["id"]).values(is_active=False))
    passwordless = console.as_role("operator").email
    verifications.hashes.clear()

    for email, password in (
        ("nobody@example.test", "any password at all"),
        ("gone@example.test", GONE_PASSWORD),
        (passwordless, "any password at all"),
    ):
        before = len(verifications.hashes)
        assert api_login(console, email, password) == 401, email
        assert len(verifications.hashes) == before + 1, email
        assert parameters(verifications.hashes[-1]) == real_parameters, email


def test_the_web_sign_in_checks_an_unknown_email_against_a_real_hash(
    console: ConsoleUnderTest, verifications: Verifications
) -> None:
    response = web_log_in(browser(console), "nobody@example.test", "any password at all")
    assert response.status_code == 401
    assert len(verifications.hashes) == 1
    assert verifications.hashes[0].startswith("$argon2id$")
