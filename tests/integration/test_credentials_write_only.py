"""Secrets are write-only, on each backend: unique secrets are planted and every path a
credential takes is walked (the API's answers and errors, the pages, verify, the audit trail,
a console on another key; then real connector tasks against a real slapd whose password is
the planted secret: one processed into the inventory and runs that fail, with their events,
errors, task data, change reports and the asset exports); then the data directory (gzip files
read inflated), every table of the database, the database's dump (SQLite's `iterdump`,
PostgreSQL's `pg_dump`) and every log line are searched for them. They appear nowhere: only
their ciphertext is stored.

The CLI's part (hidden prompts, `--secrets-stdin`, the console process's log) is
`tests/acceptance/test_cli_credentials.py`.
"""

from __future__ import annotations

import base64
import gzip
import logging
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from surveyor.connectors import base
from surveyor.console.services import connector_runner
from surveyor.processing.worker import Worker
from surveyor.security.secretbox import KEY_ENV, encode_key, new_key
from surveyor.store.engine import Database
from surveyor.store.schema import credentials, metadata
from surveyor.testing.slapd import generate_computers, private_slapd
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
        body = inflated(response.content).decode(errors="replace")
        self.answers.append(f"{response.status_code} {dict(response.headers)} {body}")
        return response


def inflated(content: bytes) -> bytes:
    """The bytes, and if they are gzip (task data, its downloads), what they inflate to."""
    if content[:2] == b"\x1f\x8b":
        return content + b"\n" + gzip.decompress(content)
    return content


def files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def stored_bytes(path: Path) -> bytes:
    return inflated(path.read_bytes())


def database_text(db: Database) -> str:
    """Every row of every table, as text."""
    lines = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


def database_dump(db: Database) -> str:
    """The whole database as its own dump tool writes it: SQLite's `iterdump`, `pg_dump`."""
    if db.is_sqlite:
        database = db.engine.url.database
        assert database is not None
        with sqlite3.connect(database) as conn:
            return "\n".join(conn.iterdump())
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        ["pg_dump", "--no-owner", "--dbname", url], capture_output=True, text=True, check=True
    )
    assert "CREATE TABLE public.credentials" in done.stdout, done.stdout[:2000]
    return done.stdout


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )


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
        "logs": log_text(caplog),
        "database": database_text(db),
        "database dump": database_dump(db),
    }
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
            assert secret.encode() not in stored_bytes(path), f"the {what} secret is in {path}"
    # The page's TSIG secret was stored, sealed: only its ciphertext is there.
    with db.read() as conn:
        stored = conn.execute(select(credentials.c.secrets)).scalars().all()
    assert stored, "the page's credential is stored"
    assert all(
        value["sealed"].startswith("v1.k-") for secrets_column in stored
        for value in secrets_column.values()
    )  # fmt: skip
    assert directory.seen, "verify reached the connector, with the secret opened"


#: Computers in the private slapd of the connector test.
COMPUTERS = 12


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settled(api: Any, task_id: int, statuses: set[str]) -> dict[str, Any]:
    """The task once its status is one of `statuses` (a generous bound, not a timing)."""
    deadline = time.monotonic() + 60
    while True:
        task: dict[str, Any] = api.get(f"/api/v1/tasks/{task_id}").json()
        if task["status"] in statuses or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def test_connector_tasks_their_failures_reports_exports_and_dumps_hold_no_secret(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = {what: planted(what) for what in ("bind password", "wrong password")}
    walk = Walk()
    data_dir = tmp_path  # the console's data directory, and the SQLite database's
    with (
        private_slapd(generate_computers(COMPUTERS), password=secrets["bind password"]) as slapd,
        running_console(db, data_dir, monkeypatch, background=[connector_runner]) as console,
    ):
        api = console.admin

        def credential(name: str, password: str) -> int:
            fields = {"bind_dn": slapd.bind_dn, "password": password}
            body = {"name": name, "kind": "ldap", "fields": fields}
            return int(walk.keep(api.post("/api/v1/credentials", json=body), 201).json()["id"])

        def connector_task(name: str, credential_id: int, server: str, **options: Any) -> int:
            params = {
                "connector": "ldap",
                "credential_id": credential_id,
                "server": server,
                "base_dn": slapd.base_dn,
                **options,
            }
            body = {"name": name, "type": "connector", "params": params}
            return int(walk.keep(api.post("/api/v1/tasks", json=body), 201).json()["id"])

        right = credential("directory", secrets["bind password"])
        wrong = credential("stale directory", secrets["wrong password"])
        verified = []
        for credential_id in (right, wrong):
            verify = {"server": slapd.server, "options": {"base_dn": slapd.base_dn}}
            answer = api.post(f"/api/v1/credentials/{credential_id}/verify", json=verify)
            verified.append(walk.keep(answer, 200).json())
        assert verified[0]["ok"] is True, verified
        assert "invalid credentials" in verified[1]["message"], verified

        # A run that works: the console's runner reads the real slapd with the planted
        # password, a worker processes what it read into the inventory.
        synced = connector_task("Directory", right, slapd.server)
        queued = settled(api, synced, {"processing_queued", "canceled"})
        assert queued["status"] == "processing_queued", queued["error"]
        assert Worker(db, data_dir, name="write-only-worker").drain() >= 1
        processed = settled(api, synced, {"processed"})
        assert processed["status"] == "processed", processed["error"]
        assert processed["change_summary"]["new"] == COMPUTERS

        # Runs that fail: a wrong password, a refused connection, a CA that did not sign the
        # server's certificate. Each is canceled with words naming the server.
        refused = f"127.0.0.1:{closed_port()}"
        failing = {
            connector_task("Wrong password", wrong, slapd.server): slapd.server,
            connector_task("Refused", right, refused): refused,
            connector_task(
                "Untrusted", right, slapd.ldaps_server, tls="ldaps",
                ca_file=str(slapd.other_ca_file),
            ): slapd.ldaps_server,
        }  # fmt: skip
        for task_id, server in failing.items():
            canceled = settled(api, task_id, {"canceled", "processing_queued"})
            assert canceled["status"] == "canceled", canceled
            assert server in canceled["error"]
        errors = [api.get(f"/api/v1/tasks/{task_id}").json()["error"] for task_id in failing]
        assert any("invalid credentials" in error for error in errors), errors

        # Every answer about those tasks: the API's, the pages', and every download.
        client, _csrf = signed_in(console, "admin")
        for task_id in (synced, *failing):
            walk.keep(api.get(f"/api/v1/tasks/{task_id}"), 200)
            walk.keep(api.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 500}), 200)
            walk.keep(api.get(f"/api/v1/tasks/{task_id}/processing-runs"), 200)
            walk.keep(client.get("/tasks", params={"task": task_id}), 200)
        walk.keep(api.get("/api/v1/tasks", params={"tab": "failed"}), 200)
        walk.keep(api.get("/api/v1/tasks", params={"tab": "completed"}), 200)
        walk.keep(api.get(f"/api/v1/tasks/{next(iter(failing))}/data"), 404, 409)
        data = walk.keep(api.get(f"/api/v1/tasks/{synced}/data"), 200)
        assert b"host000000.lab.test" in gzip.decompress(data.content)
        walk.keep(client.get(f"/tasks/{synced}/data"), 200)
        for report_format in ("json", "jsonl", "csv"):
            report = walk.keep(
                api.get(f"/api/v1/tasks/{synced}/changes", params={"format": report_format}),
                200,
            )
            assert "host000000.lab.test" in report.text
        walk.keep(client.get(f"/tasks/{synced}/changes"), 200)
        for export_format in ("csv", "jsonl"):
            export = walk.keep(
                api.get("/api/v1/assets/export", params={"format": export_format}), 200
            )
            assert "host000011.lab.test" in export.text
            walk.keep(client.get("/assets/export", params={"format": export_format}), 200)
        assets = walk.keep(api.get("/api/v1/assets", params={"search": "source:ldap"}), 200)
        assert len(assets.json()["items"]) == COMPUTERS
        asset_id = assets.json()["items"][0]["id"]
        walk.keep(api.get(f"/api/v1/assets/{asset_id}"), 200)
        walk.keep(client.get("/assets", params={"search": "source:ldap"}), 200)
        walk.keep(client.get(f"/assets/{asset_id}"), 200)
        walk.keep(client.get("/credentials"), 200)
        walk.keep(client.get(f"/credentials/{right}"), 200)
        walk.keep(api.get("/api/v1/audit", params={"limit": 1000}), 200)

    searched = {
        "answers": "\n".join(walk.answers),
        "logs": log_text(caplog),
        "database": database_text(db),
        "database dump": database_dump(db),
    }
    files = list(files_under(data_dir))
    # The search sees what is there: the computers, the failures' words, the stored data.
    assert "host000005.lab.test" in searched["answers"]
    assert "invalid credentials" in searched["answers"]
    assert "host000005.lab.test" in searched["database dump"]
    assert any(b"host000005.lab.test" in stored_bytes(path) for path in files)
    assert any(path.suffix == ".gz" for path in files), "the task data is on disk"
    for what, secret in secrets.items():
        for where, text in searched.items():
            assert secret not in text, f"the {what} is in the {where}"
        for path in files:
            assert secret.encode() not in stored_bytes(path), f"the {what} is in {path}"
