"""A real console app on a real database, driven through HTTP by role."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from fastapi.testclient import TestClient

from surveyor.console.app import BackgroundService, create_app
from surveyor.console.state import ConsoleSettings
from surveyor.core.clock import Clock
from surveyor.store import accounts
from surveyor.store.engine import Database
from surveyor.store.records import count_records, create_record
from surveyor.store.schema import sites
from tests.support.asgi_client import InProcessClient

ADMIN_EMAIL = "admin@example.test"
ADMIN_PASSWORD = "correct horse battery staple"
BOOTSTRAP_TOKEN = "bootstrap-token-for-tests-0123456789"


class Api:
    """HTTP calls as one user: every request carries that user's bearer token."""

    def __init__(self, client: TestClient, token: str | None, *, email: str = "") -> None:
        self.client = client
        self.token = token
        self.email = email

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        headers = self._headers(kwargs.pop("headers", None))
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class ConsoleUnderTest:
    client: TestClient
    db: Database
    admin: Api
    organization_id: int
    _users: dict[str, Api] = field(default_factory=dict)

    def as_role(self, role: str, *, organization_id: int | None = None) -> Api:
        """A member with `role` (created on first use) in the given organization."""
        org_id = organization_id or self.organization_id
        key = f"{role}@{org_id}"
        if key not in self._users:
            email = f"{role}-{org_id}@example.test"
            with self.db.write() as conn:
                user = accounts.find_user_by_email(conn, email) or accounts.create_user(
                    conn, email, password=None, name=role.title()
                )
                accounts.set_membership(conn, org_id, user["id"], accounts.Role(role))
                _, token = accounts.create_token(
                    conn, user_id=user["id"], organization_id=org_id, name="test"
                )
            self._users[key] = Api(self.client, token, email=email)
        return self._users[key]

    def anonymous(self) -> Api:
        return Api(self.client, None)

    def other_organization(self) -> tuple[int, Api]:
        """A second organization with its own admin, to prove isolation."""
        with self.db.write() as conn:
            org = accounts.find_organization(conn, "Other") or accounts.create_organization(
                conn, "Other"
            )
            if not count_records(conn, sites, org["id"]):
                create_record(conn, sites, org["id"], {"name": "Other site", "scope": "127.0.0.2"})
        return org["id"], self.as_role("admin", organization_id=org["id"])


@contextmanager
def running_console(
    db: Database,
    data_dir: Path,
    monkeypatch: Any,
    *,
    raise_server_exceptions: bool = True,
    clock: Clock | None = None,
    background: Sequence[BackgroundService] = (),
    **settings: Any,
) -> Iterator[ConsoleUnderTest]:
    """The console app on `db` (on `clock`, running `background`); with
    `raise_server_exceptions=False` an exception that reaches the server is answered as a
    client would see it instead of raised in the test."""
    monkeypatch.setenv("SURVEYOR_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("SURVEYOR_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("SURVEYOR_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN)
    config = ConsoleSettings(data_dir=data_dir, database_url=str(db.engine.url), **settings)
    app = create_app(config, database=db, clock=clock, background=background)
    with InProcessClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        with db.read() as conn:
            admin_user = accounts.find_user_by_email(conn, ADMIN_EMAIL)
            assert admin_user is not None
            org_id = accounts.first_membership(conn, admin_user["id"])
            assert org_id is not None
        yield ConsoleUnderTest(client, db, Api(client, BOOTSTRAP_TOKEN, email=ADMIN_EMAIL), org_id)
