"""Secrets are write-only, on each backend: unique secrets are planted and every path a
credential takes is walked (the API's answers and errors, the pages, verify, the audit trail,
a console on another key); then the data directory, every table of the database (and the
SQLite dump) and every log line are searched for them. They appear nowhere: only their
ciphertext is stored.

The CLI's part (hidden prompts, `--secrets-stdin`, the console process's log) is
`tests/acceptance/test_cli_credentials.py`.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from surveyor.connectors import base
from surveyor.security.secretbox import KEY_ENV, encode_key, new_key
from surveyor.store.engine import Database
from surveyor.store.schema import credentials, metadata
from tests.integration.test_credentials import PASSWORD, StandInDirectory
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console


def planted(what: str) -> str:
    if what == "tsig":  # a TSIG secret is base64
        return base64.b64encode(b"planted tsig " + uuid.uuid4().bytes + b"!").decode()
    return f"planted-{what}-{uuid.uuid4().hex}"


class Walk:
    """Every answer a path gave, to search afterwards."""

    def __init__(self) -> None:
        self.answers: list[str] = []

    def keep(self, response: httpx2.Response, *expected: int) -> httpx2.Response:
        assert response.status_code in expected, response.text
        self.answers.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response


def files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def database_text(db: Database) -> str:
    """Every row of every table, as text."""
    lines = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


def sqlite_dump(db: Database) -> str:
    database = db.engine.url.database
    assert database is not None
    with sqlite3.connect(database) as conn:
        return "\n".join(conn.iterdump())


def test_no_answer_page_error_audit_entry_log_line_or_stored_byte_holds_a_secret(
    console: ConsoleUnderTest,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    directory = StandInDirectory()
    monkeypatch.setitem(base._REGISTRY, "ldap", directory)
    secrets = {
        what: planted(what)
        for what in ("password", "new-password", "community", "refused", "page", "tsig")
    }
    walk = Walk()
    api = console.admin

    # The API: create, read, list, edit, verify (failing and working), errors, delete.
    created = walk.keep(
        api.post(
            "/api/v1/credentials",
            json={
                "name": "directory",
                "kind": "ldap",
                "fields": {"bind_dn": "cn=svc,dc=lab", "password": secrets["password"]},
            },
        ),
        201,
    ).json()
    path = f"/api/v1/credentials/{created['id']}"
    walk.keep(api.get(path), 200)
    walk.keep(api.get("/api/v1/credentials"), 200)
    walk.keep(api.post(f"{path}/verify", json={"server": "127.0.0.1:3890"}), 200)
    walk.keep(api.post(f"{path}/verify", json={"server": "127.0.0.1", "options": {"x": 1}}), 400)
    walk.keep(api.patch(path, json={"fields": {"password": secrets["new-password"]}}), 200)
    walk.keep(api.patch(path, json={"fields": {"password": PASSWORD}}), 200)
    walk.keep(api.post(f"{path}/verify", json={"server": "127.0.0.1:3890"}), 200)
    snmp = walk.keep(
        api.post(
            "/api/v1/credentials",
            json={
                "name": "switches",
                "kind": "snmp",
                "fields": {"version": "2c", "community": secrets["community"]},
            },
        ),
        201,
    ).json()
    walk.keep(
        api.post(
            "/api/v1/credentials",
            json={
                "name": "switches",
                "kind": "snmp",
                "fields": {"version": "2c", "community": secrets["refused"]},
            },
        ),
        409,
    )
    for refused in (
        {"name": "v3", "kind": "snmp", "fields": {"version": "3", "auth_key": secrets["refused"]}},
        {"name": "x", "kind": "dns", "fields": {"tsig_secret": secrets["refused"] + "!"}},
        {"name": "x", "kind": "ldap", "fields": {"password": secrets["refused"] * 200}},
        {"name": "x", "kind": "ldap", "password": secrets["refused"]},
    ):
        walk.keep(api.post("/api/v1/credentials", json=refused), 400, 422)
    walk.keep(
        api.patch("/api/v1/credentials/999999", json={"fields": {"password": secrets["refused"]}}),
        404,
    )
    walk.keep(
        console.as_role("operator").post(
            "/api/v1/credentials",
            json={"name": "o", "kind": "ldap", "fields": {"password": secrets["refused"]}},
        ),
        403,
    )
    walk.keep(api.delete(f"/api/v1/credentials/{snmp['id']}"), 204)

    # The pages: create, list, show, edit, a refused form, verify, delete.
    client, csrf = signed_in(console, "admin")
    made = walk.keep(
        client.post(
            "/credentials",
            data={
                "csrf_token": csrf,
                "name": "transfers",
                "kind": "dns",
                "dns-tsig_name": "xfr",
                "dns-tsig_secret": "c2VjcmV0",
            },
        ),
        303,
    )
    page = made.headers["location"]
    walk.keep(client.get("/credentials"), 200)
    walk.keep(client.get(page), 200)
    walk.keep(
        client.post(
            page,
            data={"csrf_token": csrf, "name": "transfers", "dns-tsig_name": "xfr2",
                  "dns-tsig_secret": secrets["page"] + "!"},
        ),
        400,
    )  # fmt: skip
    walk.keep(
        client.post(
            "/credentials",
            data={"csrf_token": csrf, "name": "again", "kind": "ldap",
                  "ldap-password": secrets["page"]},
        ),
        400,
    )  # fmt: skip
    walk.keep(
        client.post(
            page,
            data={"csrf_token": csrf, "name": "transfers", "dns-tsig_name": "xfr",
                  "dns-tsig_secret": secrets["tsig"]},
        ),
        303,
    )  # fmt: skip
    walk.keep(client.get(page), 200)
    walk.keep(
        client.post(f"/credentials/{created['id']}/verify",
                    data={"csrf_token": csrf, "server": "127.0.0.1:3890"}),
        200,
    )  # fmt: skip
    walk.keep(client.get(f"/credentials/{created['id']}/delete"), 200)

    # The audit trail, as the API and the page show it.
    walk.keep(api.get("/api/v1/audit", params={"limit": 1000}), 200)
    walk.keep(client.get("/audit"), 200)

    # A console on another key.
    monkeypatch.setenv(KEY_ENV, encode_key(new_key()))
    with running_console(db, tmp_path / "second", monkeypatch) as second:
        walk.keep(second.admin.post(f"{path}/verify", json={"server": "127.0.0.1:3890"}), 409)
        walk.keep(second.admin.get(path), 200)
    walk.keep(api.delete(path), 204)

    searched = {
        "answers": "\n".join(walk.answers),
        "logs": "\n".join(
            f"{record.name} {record.getMessage()} {record.exc_text or ''}"
            for record in caplog.records
        ),
        "database": database_text(db),
    }
    if db.is_sqlite:
        searched["sqlite dump"] = sqlite_dump(db)
    files = list(files_under(tmp_path))
    assert any(path.name == "secret.key" for path in files)
    # The search sees what is there: the plain fields, and the second console's warning.
    assert "cn=svc,dc=lab" in searched["answers"]
    assert "transfers" in searched["database"]
    assert "were encrypted with key" in searched["logs"]
    if db.is_sqlite:
        assert any(b"transfers" in path.read_bytes() for path in files)
    for what, secret in secrets.items():
        for where, text in searched.items():
            assert secret not in text, f"the {what} secret is in the {where}"
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"the {what} secret is in {path}"
    # The page's TSIG secret was stored, sealed: only its ciphertext is there.
    with db.read() as conn:
        stored = conn.execute(select(credentials.c.secrets)).scalars().all()
    assert stored, "the page's credential is stored"
    assert all(
        value["sealed"].startswith("v1.k-") for secrets_column in stored
        for value in secrets_column.values()
    )  # fmt: skip
    assert directory.seen, "verify reached the connector, with the secret opened"
