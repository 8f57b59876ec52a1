"""Connector runs end to end, with real processes: a `surveyor console` that reads a real
slapd itself, a separate `surveyor explorer` that reads it when the task names it, and an
explorer killed mid-connect. The credential's secret reaches the explorer for its attempt
only: it is never on the explorer's disk, in its log, or in anything the console shows.
Every test runs with the console on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.testing.slapd import SlapdServer
from tests.support.databases import fresh_database
from tests.support.explorer_processes import (
    ExplorerProcess,
    ServerProcess,
    enrollment_token,
)
from tests.support.ldap import dns_server, silent_server

#: The ten computers HOST000000..HOST000009 of the session's slapd.
FILTER = "(&(objectClass=computer)(cn=HOST00000*))"
NAMES = {f"host00000{n}.lab.test": f"127.0.7.{n + 1}" for n in range(10)}


@pytest.fixture(params=["sqlite", "postgresql"])
def console(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """The console on each backend: its own SQLite file, or a fresh PostgreSQL database."""
    env = {"SURVEYOR_EXPLORER_SILENCE_TIMEOUT": "3", "SURVEYOR_LOG_LEVEL": "info"}
    if request.param == "postgresql":
        env["SURVEYOR_DATABASE_URL"] = fresh_database(request.getfixturevalue("postgres_url"))
    server = ServerProcess("console", tmp_path / "console", env=env)
    server.data_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def resolver() -> Iterator[str]:
    with dns_server(NAMES) as address:
        yield address


def ldap_credential(console: ServerProcess, slapd: SlapdServer) -> int:
    answer = console.api.post(
        "/api/v1/credentials",
        json={
            "name": "lab directory",
            "kind": "ldap",
            "fields": {"bind_dn": slapd.bind_dn, "password": slapd.password},
        },
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def connector_task(
    console: ServerProcess, credential: int, server: str, **extra: Any
) -> dict[str, Any]:
    params = {"connector": "ldap", "credential_id": credential, "server": server}
    params |= extra.pop("params", {})
    body = {"name": "Directory", "type": "connector", "params": params, **extra}
    return console.create_scan(**body)


def transitions(console: ServerProcess, task_id: int) -> list[str]:
    return [event["to_status"] for event in console.events(task_id) if event["to_status"]]


def assert_secret_nowhere(secret: str, *places: Path) -> None:
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"


def test_the_console_reads_the_directory_itself_when_no_explorer_is_named(
    console: ServerProcess, slapd: SlapdServer, resolver: str
) -> None:
    credential = ldap_credential(console, slapd)
    task = connector_task(
        console,
        credential,
        slapd.server,
        params={
            "base_dn": slapd.base_dn,
            "filter": FILTER,
            "resolve": True,
            "dns_server": resolver,
        },
    )
    done = console.wait_for_status(task["id"], {"processed", "canceled"}, seconds=90)
    assert done["status"] == "processed", done.get("error")
    assert transitions(console, task["id"]) == [
        "new",
        "connecting",
        "connected",
        "processing_queued",
        "processing",
        "processed",
    ]
    assert done["stats"]["hosts"] == 10
    assert done["change_summary"]["new"] == 10
    records = [r for r in console.task_records(task["id"]) if r["type"] == "host"]
    assert {tuple(r["hostnames"]) for r in records} == {(name,) for name in NAMES}
    assert all(r["source"] == "ldap" for r in records)
    assets = console.api.get("/api/v1/assets", params={"search": "lab.test", "limit": 50}).json()
    found = {a["hostname"]: a["address"] for a in assets["items"]}
    assert found == NAMES
    assert all(a["os"].startswith("Windows") for a in assets["items"])
    assert_secret_nowhere(slapd.password, console.data_dir)
    assert slapd.password not in str(console.events(task["id"]))


def test_an_explorer_named_by_the_task_reads_the_directory_and_keeps_no_secret(
    console: ServerProcess, slapd: SlapdServer, resolver: str, tmp_path: Path
) -> None:
    explorer = ExplorerProcess(console, tmp_path / "explorer-state", "inside")
    explorer.start(enrollment_token(console))
    try:
        credential = ldap_credential(console, slapd)
        task = connector_task(
            console,
            credential,
            slapd.server,
            explorer_id=explorer.explorer_id,
            params={
                "base_dn": slapd.base_dn,
                "filter": FILTER,
                "resolve": True,
                "dns_server": resolver,
            },
        )
        done = console.wait_for_status(task["id"], {"processed", "canceled"}, seconds=90)
        assert done["status"] == "processed", done.get("error")
        assert done["explorer_id"] == explorer.explorer_id
        launched = [e for e in console.events(task["id"]) if e["to_status"] == "connecting"]
        assert launched[0]["actor"] == "explorer:inside"
        assert done["stats"]["hosts"] == 10
    finally:
        explorer.stop()
    assert_secret_nowhere(slapd.password, explorer.state_dir, explorer.log, console.data_dir)


def test_an_explorer_killed_mid_connect_leaves_a_canceled_run_naming_the_server(
    console: ServerProcess, slapd: SlapdServer, tmp_path: Path
) -> None:
    explorer = ExplorerProcess(console, tmp_path / "explorer-state", "doomed")
    explorer.start(enrollment_token(console))
    with silent_server() as stalled:
        server = f"127.0.0.2:{stalled.port}"
        credential = ldap_credential(console, slapd)
        task = connector_task(
            console,
            credential,
            server,
            explorer_id=explorer.explorer_id,
            params={"base_dn": slapd.base_dn},
        )
        assert stalled.connected.wait(60), "the explorer never connected"
        assert console.task(task["id"])["status"] == "connecting"
        explorer.kill()
        ended = console.wait_for_status(task["id"], {"canceled", "stopped"}, seconds=60)
    assert ended["status"] == "canceled"
    assert "doomed" in ended["error"]
    assert f"reading {server}" in ended["error"]
    assert ended["error"].endswith("the connector run was canceled")
    assets = console.api.get("/api/v1/assets").json()["items"]
    assert assets == []  # nothing half-merged
