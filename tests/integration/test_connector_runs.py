"""Connector runs collected by the console (no explorer named): created through the API,
claimed by the console's runner, `new → connecting → connected → processing_queued`,
processed by a real worker into the inventory; stopped on request; canceled with the
connector's own words when it fails. The connector here is this file's own, reading a
pretend directory, so that every path is driven on purpose; the real LDAP, DNS and SNMP
connectors have their own tests against real servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from surveyor.connectors import base
from surveyor.connectors.base import ConnectorConfig, ConnectorError, Progress, no_progress
from surveyor.console.services import connector_runner
from surveyor.processing.worker import Worker
from surveyor.store.engine import Database
from tests.support.console import ConsoleUnderTest, running_console

SECRET = "pretend-directory-password-41"


class PretendDirectory:
    """A connector over a directory that exists only in this test."""

    name = "pretend"
    credential_kind = "ldap"

    def __init__(self) -> None:
        self.credentials: list[Mapping[str, str]] = []
        self.blocking = threading.Event()

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - {"hosts", "block", "fail"})
        if unknown:
            raise ValueError(f"unknown option '{unknown[0]}' (valid: hosts, block, fail)")
        hosts = options.get("hosts", 3)
        if type(hosts) is not int or not 0 <= hosts <= 200:
            raise ValueError("hosts must be a whole number from 0 to 200")
        return {"hosts": hosts, "block": bool(options.get("block")), "fail": options.get("fail")}

    def verify(self, config: ConnectorConfig) -> str:
        return f"read the pretend directory at {config.server}"

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        self.credentials.append(dict(config.credential))
        total = config.options["hosts"]
        for number in range(1, total + 1):
            progress(number, total)
            yield {
                "type": "host",
                "addresses": [f"127.0.9.{number}"],
                "hostnames": [f"computer{number}.pretend.test"],
            }
            if config.options["block"]:
                self.blocking.set()
                config.stopped.wait(120)
                return
        if config.options["fail"]:
            raise ConnectorError(f"bind to {config.server} failed: {config.options['fail']}")


@pytest.fixture
def pretend() -> Iterator[PretendDirectory]:
    connector = PretendDirectory()
    base.register(connector)
    try:
        yield connector
    finally:
        base.unregister(connector.name)


@pytest.fixture
def console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pretend: PretendDirectory
) -> Iterator[ConsoleUnderTest]:
    """A console running the connector runner it always runs, with one LDAP credential."""
    with running_console(db, tmp_path, monkeypatch, background=[connector_runner]) as running:
        answer = running.admin.post(
            "/api/v1/credentials",
            json={
                "name": "directory",
                "kind": "ldap",
                "fields": {"bind_dn": "cn=svc,dc=pretend", "password": SECRET},
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["id"] == 1
        yield running


def create(console: ConsoleUnderTest, **params: Any) -> dict[str, Any]:
    body = {
        "name": "Directory sync",
        "type": "connector",
        "params": {
            "connector": "pretend",
            "credential_id": 1,
            "server": "127.0.0.1:3890",
            **params,
        },
    }
    answer = console.admin.post("/api/v1/tasks", json=body)
    assert answer.status_code == 201, answer.text
    task: dict[str, Any] = answer.json()
    return task


def wait_for(console: ConsoleUnderTest, task_id: int, statuses: set[str]) -> dict[str, Any]:
    """The task once its status is one of `statuses` (a generous bound, not a timing)."""
    deadline = time.monotonic() + 60
    while True:
        task: dict[str, Any] = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        if task["status"] in statuses or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def history(console: ConsoleUnderTest, task_id: int) -> list[str]:
    events = console.admin.get(f"/api/v1/tasks/{task_id}/events").json()["items"]
    return [e["to_status"] for e in events if e["to_status"]]


def test_a_connector_run_passes_connecting_and_connected_then_is_processed(
    console: ConsoleUnderTest, pretend: PretendDirectory, tmp_path: Path
) -> None:
    task = create(console, hosts=5)
    assert task["status"] == "new"
    assert task["params"]["connector"] == "pretend"

    queued = wait_for(console, task["id"], {"processing_queued", "canceled"})
    assert queued["status"] == "processing_queued", queued.get("error")
    assert history(console, task["id"]) == ["new", "connecting", "connected", "processing_queued"]
    assert queued["stats"]["hosts"] == 5
    assert queued["stats"]["objects"] >= 1
    assert queued["progress"]["collect"] == 1.0
    assert pretend.credentials == [{"bind_dn": "cn=svc,dc=pretend", "password": SECRET}]
    assert SECRET not in str(console.admin.get(f"/api/v1/tasks/{task['id']}/events").json())

    # The run, then the outlier scores its changes ask for.
    assert Worker(console.db, tmp_path, name="test-worker").drain() >= 1
    done = console.admin.get(f"/api/v1/tasks/{task['id']}").json()
    assert done["status"] == "processed"
    assets = console.admin.get("/api/v1/assets", params={"search": "pretend.test"}).json()
    names = sorted(name for asset in assets["items"] for name in asset["hostnames"])
    assert names == [f"computer{n}.pretend.test" for n in range(1, 6)]


def test_a_stopped_connector_run_keeps_what_it_read(
    console: ConsoleUnderTest, pretend: PretendDirectory
) -> None:
    task = create(console, hosts=10, block=True)
    assert wait_for(console, task["id"], {"connecting"})["status"] == "connecting"
    assert pretend.blocking.wait(30)

    answer = console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stopping"
    stopped = wait_for(console, task["id"], {"stopped", "canceled"})
    assert stopped["status"] == "stopped"
    assert history(console, task["id"])[-3:] == ["connecting", "stopping", "stopped"]
    assert stopped["stats"]["hosts"] == 1  # the one computer read before the stop


def test_a_failing_connector_cancels_the_run_with_its_words_and_no_secret(
    console: ConsoleUnderTest, pretend: PretendDirectory
) -> None:
    task = create(console, hosts=2, fail="invalid credentials")
    canceled = wait_for(console, task["id"], {"canceled", "processing_queued"})
    assert canceled["status"] == "canceled"
    assert canceled["error"] == "bind to 127.0.0.1:3890 failed: invalid credentials"
    assert SECRET not in str(canceled)
    assert SECRET not in str(console.admin.get(f"/api/v1/tasks/{task['id']}/events").json())


def test_an_unusable_credential_is_refused_or_cancels_the_run_saying_why(
    console: ConsoleUnderTest, pretend: PretendDirectory
) -> None:
    params = {"connector": "pretend", "credential_id": 404, "server": "127.0.0.1:3890"}
    body = {"name": "no such credential", "type": "connector", "params": params}
    refused = console.admin.post("/api/v1/tasks", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "credential 404 does not exist"

    later = {**body, "name": "later", "start_time": "2099-01-01T00:00:00Z"}
    later["params"] = {**params, "credential_id": 1}
    task = console.admin.post("/api/v1/tasks", json=later).json()
    assert console.admin.delete("/api/v1/credentials/1").status_code == 204
    assert console.admin.post(f"/api/v1/tasks/{task['id']}/run-now").status_code == 200
    canceled = wait_for(console, task["id"], {"canceled", "processing_queued"})
    assert canceled["status"] == "canceled"
    assert canceled["error"] == "cannot read 127.0.0.1:3890: credential 1 does not exist"


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"connector": "gopher"}, "connector", "choose one of"),
        ({"credential_id": "one"}, "credential_id", "id of a credential"),
        ({"server": ""}, "server", "server is required"),
        ({"server": "host:99999"}, "server", "from 1 to 65535"),
        ({"hosts": "many"}, "params", "hosts must be a whole number"),
    ],
)
def test_bad_connector_params_are_refused_naming_the_fault(
    console: ConsoleUnderTest, params: dict[str, Any], field: str, words: str
) -> None:
    body = {
        "name": "bad",
        "type": "connector",
        "params": {"connector": "pretend", "credential_id": 1, "server": "127.0.0.1", **params},
    }
    answer = console.admin.post("/api/v1/tasks", json=body)
    assert answer.status_code == 400, answer.text
    assert words in answer.text
    assert field in answer.text


def test_a_connector_run_cannot_name_a_hosted_zone(console: ConsoleUnderTest) -> None:
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "Zone A"})
    assert zone.status_code == 201, zone.text
    body = {
        "name": "zoned",
        "type": "connector",
        "hosted_zone_id": zone.json()["id"],
        "params": {"connector": "pretend", "credential_id": 1, "server": "127.0.0.1"},
    }
    answer = console.admin.post("/api/v1/tasks", json=body)
    assert answer.status_code == 400, answer.text
    assert "leave out the hosted zone" in answer.text
