"""The SNMP connector against a real snmpd with a real ARP table (surveyor.testing.snmpd)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.connectors.snmp import SnmpConnector
from surveyor.console.services import connector_runner
from surveyor.processing.worker import Worker
from surveyor.store.engine import Database
from surveyor.testing import labnetns
from surveyor.testing.snmpd import (
    INTERFACE_ADDRESS,
    INTERFACE_ADDRESS_V6,
    INTERFACE_MAC,
    SYS_DESCR,
    SYS_LOCATION,
    SYS_NAME,
    SYS_OBJECT_ID,
    SnmpAgent,
    running_snmpd,
)
from tests.support.console import running_console


@pytest.fixture(scope="module")
def agent() -> Iterator[SnmpAgent]:
    with running_snmpd() as running:
        yield running


@pytest.fixture
def connector() -> SnmpConnector:
    return SnmpConnector()


def config(
    agent: SnmpAgent,
    credential: dict[str, str],
    *,
    targets: object = None,
    timeout: float = 5.0,
    **options: Any,
) -> ConnectorConfig:
    return ConnectorConfig(
        server="",
        options={
            "targets": targets or [agent.target],
            "port": agent.port,
            "version": credential["version"],
        }
        | options,
        credential=credential,
        timeout=timeout,
    )


def failure(connector: SnmpConnector, run: ConnectorConfig) -> str:
    with pytest.raises(ConnectorError) as caught:
        list(connector.fetch(run))
    return str(caught.value)


def assert_no_secret(agent: SnmpAgent, *texts: str) -> None:
    for text in texts:
        for secret in agent.secrets_in_use:
            assert secret not in text


def test_the_connector_registers_itself_as_snmp() -> None:
    assert isinstance(connector_named("snmp"), SnmpConnector)


@pytest.mark.parametrize("version", ["2c", "3"])
def test_the_device_becomes_one_asset_with_its_system_group(
    agent: SnmpAgent, connector: SnmpConnector, version: str
) -> None:
    credential = agent.v2c_credential() if version == "2c" else agent.v3_credential()
    records = list(connector.fetch(config(agent, credential)))
    device = records[0]
    assert device["source"] == "snmp"
    assert device["hostnames"] == [SYS_NAME]
    assert device["description"] == SYS_DESCR
    # loopback and link-local addresses tell no device apart
    assert device["addresses"] == [INTERFACE_ADDRESS, INTERFACE_ADDRESS_V6]
    assert device["mac"] == INTERFACE_MAC
    assert device["device_type"] == "switch"
    assert device["attributes"]["sysObjectID"] == SYS_OBJECT_ID
    assert device["attributes"]["sysLocation"] == SYS_LOCATION
    assert device["attributes"]["interface sw0"] == INTERFACE_MAC
    assert_no_secret(agent, json.dumps(records))


def test_each_arp_neighbour_becomes_an_asset_seen_by_the_device(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    records = list(connector.fetch(config(agent, agent.v2c_credential())))
    neighbours = {record["mac"]: record for record in records[1:]}
    expected: dict[str, list[str]] = {}
    for neighbour in agent.neighbours:
        expected.setdefault(neighbour.mac, []).append(neighbour.address)
    assert {mac: sorted(r["addresses"]) for mac, r in neighbours.items()} == {
        mac: sorted(addresses) for mac, addresses in expected.items()
    }
    for record in neighbours.values():
        assert record["seen_by"] == SYS_NAME
        assert record["source"] == "snmp"
        assert record["attributes"] == {"seen_on_interface": "sw0"}


def test_a_sweep_reads_the_agents_that_answer_and_passes_over_the_silent(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    seen: list[tuple[int, int | None]] = []
    run = config(agent, agent.v2c_credential(), targets="127.0.0.1-3", timeout=1.0, concurrency=2)
    records = list(connector.fetch(run, lambda done, total: seen.append((done, total))))
    assert [record["hostnames"] for record in records if "hostnames" in record] == [[SYS_NAME]]
    assert seen == [(2, 3), (3, 3)]


def test_verify_answers_in_words(agent: SnmpAgent, connector: SnmpConnector) -> None:
    said = connector.verify(config(agent, agent.v3_credential()))
    assert said == f"127.0.0.1:{agent.port} answered SNMPv3 as {agent.user}: {SYS_NAME}"


def test_a_wrong_community_looks_like_no_answer_and_says_so(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    wrong = {"version": "2c", "community": "wrong-community-never-shown"}
    said = failure(connector, config(agent, wrong, timeout=1.0))
    assert said == (
        f"no answer from 127.0.0.1:{agent.port} within 1 s: wrong community, or no SNMP agent there"
    )
    assert "wrong-community-never-shown" not in said


def test_an_agent_that_does_not_answer_times_out(
    connector: SnmpConnector, agent: SnmpAgent
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        run = ConnectorConfig(
            server=f"127.0.0.1:{port}",
            options={"version": "2c"},
            credential=agent.v2c_credential(),
            timeout=1.0,
        )
        said = failure(connector, run)
    assert said == (
        f"no answer from 127.0.0.1:{port} within 1 s: wrong community, or no SNMP agent there"
    )
    assert_no_secret(agent, said)


def test_no_target_answering_a_sweep_fails_naming_the_first(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    run = config(agent, agent.v2c_credential(), targets="127.0.0.2-4", timeout=1.0)
    said = failure(connector, run)
    assert said == (
        f"no answer from 127.0.0.2:{agent.port} within 1 s: wrong community, or no SNMP "
        "agent there (none of the 3 targets answered)"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"user": "nobody"}, "the agent does not know user nobody"),
        (
            {"auth_key": "wrong-auth-key-never-shown"},
            "authentication of user surveyor-v3 failed: wrong auth key or protocol",
        ),
        (
            {"auth_protocol": "MD5"},
            "authentication of user surveyor-v3 failed: wrong auth key or protocol",
        ),
    ],
)
def test_v3_authentication_failures_are_named(
    agent: SnmpAgent, connector: SnmpConnector, change: dict[str, str], problem: str
) -> None:
    said = failure(connector, config(agent, agent.v3_credential() | change, timeout=2.0))
    assert said == f"127.0.0.1:{agent.port}: {problem}"
    assert_no_secret(agent, said)
    assert "wrong-auth-key-never-shown" not in said


def test_a_wrong_v3_privacy_key_gets_no_answer(agent: SnmpAgent, connector: SnmpConnector) -> None:
    credential = agent.v3_credential() | {"priv_key": "wrong-priv-key-never-shown"}
    said = failure(connector, config(agent, credential, timeout=1.0))
    assert said == (
        f"no answer from 127.0.0.1:{agent.port} within 1 s: "
        "wrong privacy key, or no SNMPv3 agent there"
    )
    assert "wrong-priv-key-never-shown" not in said
    assert_no_secret(agent, said)


def test_a_stopped_run_reads_no_further_batch(agent: SnmpAgent, connector: SnmpConnector) -> None:
    run = config(agent, agent.v2c_credential(), targets="127.0.0.1-2", concurrency=1, timeout=1.0)
    records = connector.fetch(run)
    first = next(records)
    run.stopped.set()
    rest = list(records)
    assert first["hostnames"] == [SYS_NAME]
    assert all("seen_by" in record for record in rest)  # the first device's neighbours only


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"targets": "127.0.0.1", "community": "x"}, "unknown snmp option 'community'"),
        ({"targets": "127.0.0.1", "version": "1"}, "'version' must be"),
        ({"targets": "127.0.0.1", "port": 0}, "'port' must be a whole number from 1 to 65535"),
        ({"targets": "target!"}, "'target!' is not a valid address"),
        ({"targets": "10.0.0.0/8"}, "more than the cap"),
    ],
)
def test_bad_options_are_named(
    connector: SnmpConnector, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        connector.check_options(options)


def test_options_get_their_defaults_and_leave_the_version_to_the_credential(
    connector: SnmpConnector,
) -> None:
    checked = connector.check_options({"targets": ["127.0.0.1", "127.0.0.2"]})
    assert checked == {
        "targets": "127.0.0.1,127.0.0.2",
        "port": 161,
        "concurrency": 16,
        "retries": 1,
    }


def test_the_credentials_version_applies_when_the_task_names_none(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    run = ConnectorConfig(
        server=f"127.0.0.1:{agent.port}", options={}, credential=agent.v3_credential()
    )
    assert connector.verify(run).endswith(f"answered SNMPv3 as {agent.user}: {SYS_NAME}")


def test_a_stop_while_agents_are_silent_ends_the_run_without_an_error(
    agent: SnmpAgent, connector: SnmpConnector
) -> None:
    """The silent agent stops the task as soon as the first request reaches it: a run that
    kept waiting would end in a timeout error after a minute instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        run = ConnectorConfig(
            server=f"127.0.0.1:{port}",
            options={"version": "2c", "retries": 0},
            credential=agent.v2c_credential(),
            timeout=60.0,
        )

        def stop_on_first_request() -> None:
            silent.recvfrom(65535)
            run.stopped.set()

        watcher = threading.Thread(target=stop_on_first_request, daemon=True)
        watcher.start()
        records = list(connector.fetch(run))
        watcher.join()
    assert records == []
    assert run.stopped.is_set()


def test_the_agent_leaves_no_namespace_folder_or_process_behind() -> None:
    with running_snmpd() as running:
        namespace, directory = running.namespace, running.directory
        assert namespace in labnetns.existing_namespaces()
    assert namespace not in labnetns.existing_namespaces()
    assert not directory.exists()


def test_an_snmp_task_makes_the_device_and_its_neighbours_assets_on_each_backend(
    agent: SnmpAgent, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's own runner reads the agent; a worker merges the device and its ARP
    neighbours into the inventory, found by `source:snmp` and `mac:`."""
    with running_console(db, tmp_path, monkeypatch, background=[connector_runner]) as console:
        fields = agent.v2c_credential()
        made = console.admin.post(
            "/api/v1/credentials", json={"name": "switches", "kind": "snmp", "fields": fields}
        )
        assert made.status_code == 201, made.text
        params = {
            "connector": "snmp",
            "credential_id": made.json()["id"],
            "server": agent.target,
            "port": agent.port,
        }
        answer = console.admin.post(
            "/api/v1/tasks", json={"name": "Switch", "type": "connector", "params": params}
        )
        assert answer.status_code == 201, answer.text
        task_id = answer.json()["id"]
        deadline = time.monotonic() + 60  # a generous bound, not a timing
        while True:
            task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
            if task["status"] in ("processing_queued", "canceled") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert task["status"] == "processing_queued", task["error"]
        assert Worker(db, tmp_path, name="snmp-worker").drain() >= 1
        done = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        assert done["status"] == "processed", done["error"]

        def search(text: str) -> list[dict[str, Any]]:
            found = console.admin.get("/api/v1/assets", params={"search": text, "limit": 100})
            assert found.status_code == 200, found.text
            items: list[dict[str, Any]] = found.json()["items"]
            return items

        macs = {neighbour.mac for neighbour in agent.neighbours}
        assets = search("source:snmp")
        assert len(assets) == 1 + len(macs)
        assert done["change_summary"]["new"] == len(assets)
        [device] = search(f"mac:{INTERFACE_MAC}")
        assert SYS_NAME in device["hostnames"]
        for mac in macs:
            [neighbour] = search(f"mac:{mac}")
            addresses = {n.address for n in agent.neighbours if n.mac == mac}
            assert neighbour["address"] in addresses
        assert_no_secret(agent, json.dumps(assets), json.dumps(done))
