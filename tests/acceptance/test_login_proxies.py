"""Login rate limits of a real `surveyor console`: a client cannot choose the address it is
limited by, unless it is a proxy the console was told to trust (`SURVEYOR_TRUSTED_PROXIES`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.acceptance.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.explorer_processes import ServerProcess


@pytest.fixture
def console_behind_proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    """A console that believes `X-Forwarded-For` from loopback, where its proxy would be."""
    server = ServerProcess("console", tmp_path, env={"SURVEYOR_TRUSTED_PROXIES": "127.0.0.1"})
    server.start()
    yield server
    server.close()


@pytest.fixture
def console_without_proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess("console", tmp_path)
    server.start()
    yield server
    server.close()


def login(server: ServerProcess, password: str, forwarded_for: str) -> httpx2.Response:
    return httpx2.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
        trust_env=False,
    )


def test_rotating_x_forwarded_for_does_not_escape_the_login_limit(
    console_without_proxy: ServerProcess,
) -> None:
    for n in range(10):
        assert login(console_without_proxy, "guess", f"203.0.113.{n}").status_code == 401
    limited = login(console_without_proxy, ADMIN_PASSWORD, "203.0.113.200")
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["details"]["retry_after"] > 0


def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(
    console_behind_proxy: ServerProcess,
) -> None:
    for _ in range(10):
        assert login(console_behind_proxy, "guess", "203.0.113.9").status_code == 401
    assert login(console_behind_proxy, ADMIN_PASSWORD, "203.0.113.9").status_code == 429
    # the account's owner, behind the same proxy, is another address: not limited
    owner = login(console_behind_proxy, ADMIN_PASSWORD, "198.51.100.1")
    assert owner.status_code == 200, owner.text
    assert owner.json()["email"] == ADMIN_EMAIL


def test_an_account_attacked_from_many_addresses_slows_them_and_lets_its_owner_in(
    console_behind_proxy: ServerProcess,
) -> None:
    attackers = [f"203.0.113.{n}" for n in range(30)]
    for source in attackers:
        assert login(console_behind_proxy, "guess", source).status_code == 401
    # the last attacker tries again at once, and must now wait; the owner need not
    again = login(console_behind_proxy, ADMIN_PASSWORD, attackers[-1])
    assert again.status_code == 429, again.text
    assert login(console_behind_proxy, ADMIN_PASSWORD, "198.51.100.1").status_code == 200
