"""DNS connector runs as tasks, on each backend: a real BIND (surveyor.testing.named) read by
the console's own runner with a TSIG credential, the zones' names merged by a worker into the
inventory (`source:dns`; a later reverse zone's PTR names on the same assets), and a refused
transfer canceled with words naming the server and the zone, merging nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.console.services import connector_runner
from surveyor.processing.worker import Worker
from surveyor.store.engine import Database
from surveyor.testing.named import (
    CLOSED_ZONE,
    FORWARD_ZONE,
    REVERSE_ZONE,
    NamedServer,
    running_named,
)
from tests.support.console import ConsoleUnderTest, running_console

HOSTS = 30


@pytest.fixture(scope="module")
def named() -> Iterator[NamedServer]:
    with running_named(HOSTS) as server:
        yield server


@pytest.fixture
def console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: NamedServer
) -> Iterator[ConsoleUnderTest]:
    with running_console(db, tmp_path, monkeypatch, background=[connector_runner]) as running:
        fields = {
            "tsig_name": named.tsig_name,
            "tsig_algorithm": named.tsig_algorithm,
            "tsig_secret": named.tsig_secret,
        }
        answer = running.admin.post(
            "/api/v1/credentials", json={"name": "zones", "kind": "dns", "fields": fields}
        )
        assert answer.status_code == 201, answer.text
        yield running


def run_zones(console: ConsoleUnderTest, named: NamedServer, zones: list[str]) -> dict[str, Any]:
    """A connector task transferring `zones`, once the console's runner is done with it."""
    credential_id = console.admin.get("/api/v1/credentials").json()[0]["id"]
    params = {"connector": "dns", "credential_id": credential_id, "server": named.server}
    body = {"name": "Zones", "type": "connector", "params": params | {"zones": zones}}
    answer = console.admin.post("/api/v1/tasks", json=body)
    assert answer.status_code == 201, answer.text
    task_id = answer.json()["id"]
    deadline = time.monotonic() + 60  # a generous bound, not a timing
    while True:
        task: dict[str, Any] = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        if task["status"] in ("processing_queued", "canceled") or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def processed(console: ConsoleUnderTest, queued: dict[str, Any], folder: Path) -> dict[str, Any]:
    assert queued["status"] == "processing_queued", queued["error"]
    assert Worker(console.db, folder, name="dns-worker").drain() >= 1
    done: dict[str, Any] = console.admin.get(f"/api/v1/tasks/{queued['id']}").json()
    assert done["status"] == "processed", done["error"]
    return done


def test_zone_transfer_tasks_put_the_zones_names_on_assets_from_dns(
    console: ConsoleUnderTest, named: NamedServer, tmp_path: Path
) -> None:
    forward = run_zones(console, named, [FORWARD_ZONE])
    events = console.admin.get(f"/api/v1/tasks/{forward['id']}/events").json()["items"]
    assert [e["to_status"] for e in events if e["to_status"]] == [
        "new",
        "connecting",
        "connected",
        "processing_queued",
    ]
    assert processed(console, forward, tmp_path)["stats"]["hosts"] >= HOSTS
    found = console.admin.get(
        "/api/v1/assets", params={"search": "source:dns", "limit": 100}
    ).json()["items"]
    by_address = {asset["address"]: asset for asset in found if asset["address"]}
    for host in named.hosts:
        assert host.fqdn in by_address[host.ipv4]["hostnames"]
        detail = console.admin.get(f"/api/v1/assets/{by_address[host.ipv4]['id']}").json()
        if host.ipv6:
            assert host.ipv6 in detail["addresses"]
        assert [source["source"] for source in detail["sources"]] == ["dns"]

    # The reverse zone's PTR names land on the assets the forward zone made: nothing new.
    reverse = processed(console, run_zones(console, named, [REVERSE_ZONE]), tmp_path)
    assert reverse["change_summary"]["new"] == 0
    assert reverse["change_summary"]["changed"] + reverse["change_summary"]["unchanged"] == HOSTS
    again = console.admin.get(
        "/api/v1/assets", params={"search": "source:dns", "limit": 100}
    ).json()["items"]
    assert len(again) == len(found)


def test_a_refused_transfer_cancels_the_task_naming_server_and_zone(
    console: ConsoleUnderTest, named: NamedServer
) -> None:
    canceled = run_zones(console, named, [CLOSED_ZONE])
    assert canceled["status"] == "canceled"
    assert named.server in canceled["error"]
    assert CLOSED_ZONE in canceled["error"]
    assert "refused" in canceled["error"]
    assert named.tsig_secret not in str(canceled)
    assert console.admin.get("/api/v1/assets").json()["items"] == []  # nothing half-merged
