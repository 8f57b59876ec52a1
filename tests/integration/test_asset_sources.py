"""Every asset's sources, and the extended host record (SPEC §7, §9), from task data to the
asset API and page, on both backends."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.store import tasks as task_store
from surveyor.store.taskdata import task_data_path
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import (
    Place,
    encode,
    host,
    process_all,
    queue_hosts,
    records,
    service,
)

T1 = "2026-03-01T12:00:00Z"
T2 = "2026-03-02T12:00:00Z"
T0 = "2026-02-27T12:00:00Z"
SSH = service(22, banner="SSH-2.0-OpenSSH_9.6p1 Debian-3")


@pytest.fixture
def place(console: ConsoleUnderTest) -> Place:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    return Place(console.organization_id, site_id)


def queue_connector(
    console: ConsoleUnderTest,
    data_dir: Path,
    place: Place,
    hosts: Sequence[Mapping[str, Any]],
    *,
    connector: str = "ldap",
    params: Mapping[str, Any] | None = None,
    finished_at: str = T1,
) -> int:
    """A connector run of `place` in `processing_queued` holding `hosts`, as a connector
    writes them (no targets, no ports in its config record)."""
    content = encode(records(hosts, targets=None, ports=None, finished_at=finished_at))
    with console.db.write() as conn:
        task = task_store.create_task(
            conn,
            {
                "organization_id": place.organization_id,
                "site_id": place.site_id,
                "name": f"{connector} sync",
                "type": TaskType.CONNECTOR.value,
                "params": {"connector": connector, **(params or {})},
            },
            actor="test",
        )
        path = task_data_path(data_dir, task.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        for step in (TaskStatus.CONNECTING, TaskStatus.CONNECTED):
            task_store.transition(conn, place.organization_id, task.id, step, actor="test")
        task_store.transition(
            conn,
            place.organization_id,
            task.id,
            TaskStatus.PROCESSING_QUEUED,
            actor="test",
            changes={"size_data": len(content), "data_sha256": _sha(content)},
        )
    return int(task.id)


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def listed(console: ConsoleUnderTest, search: str = "") -> list[dict[str, Any]]:
    answer = console.admin.get("/api/v1/assets", params={"search": search} if search else {})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def detail(console: ConsoleUnderTest, asset_id: int) -> dict[str, Any]:
    answer = console.admin.get(f"/api/v1/assets/{asset_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sources(asset: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {s["source"]: (s["first_seen"][:19], s["last_seen"][:19]) for s in asset["sources"]}


def summary(console: ConsoleUnderTest, task_id: int) -> dict[str, int]:
    task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status"] == "processed", task
    return dict(task["change_summary"])


NMAP_HOST = {
    **host("127.0.0.21", mac="00:0c:29:aa:bb:cc", hostnames=["files.corp.example"]),
    "source": "import:nmap",
    "mac_vendor": "VMware",
    "os": "Linux 5.0 - 5.14",
    "os_accuracy": 96,
    "os_version": "5.X",
    "device_type": "General Purpose",
    "uptime_seconds": 93784,
    "distance": 1,
    "description": "file server",
    "tags": ["prod", "storage", "prod"],
    "attributes": {"ou": "Servers", "owner": "it"},
    "seen_by": "core-sw1",
    "services": [
        {
            "port": 22,
            "proto": "tcp",
            "state": "open",
            "service": "ssh",
            "product": "OpenSSH",
            "version": "9.6p1 Debian 3",
            "extrainfo": "protocol 2.0",
            "cpe": ["cpe:/o:linux:linux_kernel", "cpe:/a:openbsd:openssh:9.6p1"],
        },
        {
            "port": 443,
            "proto": "tcp",
            "service": "http",
            "tunnel": "ssl",
            "product": "nginx",
            "http": {"status": 200, "server": "nginx", "title": "Files"},
            "tls": {"subject": "CN=files.corp.example", "sha256": "cd" * 32},
        },
    ],
}


def test_the_extended_host_record_reaches_the_asset_api_and_page(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, [NMAP_HOST], targets=None, ports="22,443")
    process_all(console.db, tmp_path)

    [item] = listed(console)
    asset = detail(console, item["id"])
    assert {key: asset[key] for key in ("mac_vendor", "os", "os_accuracy", "os_version")} == {
        "mac_vendor": "VMware",
        "os": "Linux 5.0 - 5.14",
        "os_accuracy": 96,
        "os_version": "5.X",
    }
    assert asset["device_type"] == "general purpose"
    assert (asset["uptime_seconds"], asset["distance"]) == (93784, 1)
    assert asset["description"] == "file server"
    assert asset["tags"] == ["prod", "storage"]
    assert asset["attributes"] == {"ou": "Servers", "owner": "it"}
    assert asset["seen_by"] == "core-sw1"
    assert list(sources(asset)) == ["import:nmap"]
    ssh, https = asset["services"]
    assert (ssh["product"], ssh["version"], ssh["extrainfo"]) == (
        "OpenSSH",
        "9.6p1 Debian 3",
        "protocol 2.0",
    )
    assert ssh["cpe"] == ["cpe:/a:openbsd:openssh:9.6p1", "cpe:/o:linux:linux_kernel"]
    assert (https["tunnel"], https["http_title"], https["tls_subject"]) == (
        "ssl",
        "Files",
        "CN=files.corp.example",
    )
    assert item["sources"] == asset["sources"]

    client, _ = signed_in(console, "viewer")
    page = html.unescape(client.get(f"/assets/{item['id']}").text)
    for shown in ("VMware", "96% sure", "file server", "prod, storage", "core-sw1", "Servers"):
        assert shown in page
    assert "9.6p1 Debian 3" in page
    assert "import:nmap" in page


def test_each_source_keeps_its_first_and_last_time_seen(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    box = host("127.0.0.30", hostnames=["box.corp.example"], services=[SSH])
    queue_hosts(console.db, tmp_path, place, [box], finished_at=T1)
    process_all(console.db, tmp_path)
    queue_hosts(console.db, tmp_path, place, [box], finished_at=T2)
    process_all(console.db, tmp_path)
    # An older import of the same host: its source is seen then, and nothing else moves.
    older = queue_hosts(console.db, tmp_path, place, [box], targets=None, finished_at=T0)
    process_all(console.db, tmp_path)

    [item] = listed(console)
    assert sources(detail(console, item["id"])) == {
        "scan": ("2026-03-01T12:00:00", "2026-03-02T12:00:00"),
        "import": ("2026-02-27T12:00:00", "2026-02-27T12:00:00"),
    }
    assert item["last_seen"].startswith("2026-03-02T12:00:00")
    assert summary(console, older)["unchanged"] == 1
    # The latest first.
    assert [s["source"] for s in item["sources"]] == ["scan", "import"]


def test_a_directory_computer_and_the_scanned_host_are_one_asset_with_both_sources(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    scanned = host("127.0.0.40", hostnames=["pc40.corp.example"], services=[SSH])
    queue_hosts(console.db, tmp_path, place, [scanned], finished_at=T1)
    process_all(console.db, tmp_path)
    computer = {
        **host("127.0.0.40", hostnames=["PC40.corp.example."]),
        "source": "ldap",
        "os": "Windows 11 Enterprise",
        "os_version": "10.0 (22631)",
        "description": "reception desk",
        "attributes": {"ou": "OU=Workstations,DC=corp,DC=example"},
    }
    del computer["services"]
    ldap = queue_connector(console, tmp_path, place, [computer], finished_at=T2)
    process_all(console.db, tmp_path)

    [item] = listed(console)
    asset = detail(console, item["id"])
    assert summary(console, ldap)["changed"] == 1
    assert set(sources(asset)) == {"scan", "ldap"}
    assert asset["os"] == "Windows 11 Enterprise"
    assert asset["description"] == "reception desk"
    # The directory says nothing of services: the scanned ones stay.
    assert [s["port"] for s in asset["services"]] == [22]
    assert [i["id"] for i in listed(console, "source:ldap")] == [item["id"]]
    assert [i["id"] for i in listed(console, "source:scan")] == [item["id"]]

    # The same directory data processed again: nothing changes, nothing is new.
    before = detail(console, item["id"])
    again = console.admin.post(f"/api/v1/tasks/{ldap}/reprocess")
    assert again.status_code == 200, again.text
    process_all(console.db, tmp_path)
    assert summary(console, ldap)["unchanged"] == 1
    after = detail(console, item["id"])
    assert {k: v for k, v in after.items() if k != "history"} == {
        k: v for k, v in before.items() if k != "history"
    }


def test_a_name_only_record_becomes_an_asset_known_by_name_then_gains_its_address(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, [host("127.0.0.9")], finished_at=T0)
    process_all(console.db, tmp_path)
    unresolved = {"type": "host", "hostnames": ["laptop7.corp.example"], "source": "ldap"}
    first = queue_connector(console, tmp_path, place, [unresolved])
    process_all(console.db, tmp_path)
    assert summary(console, first)["new"] == 1

    items = listed(console)
    assert [(i["address"], i["hostname"]) for i in items] == [
        ("127.0.0.9", None),
        ("", "laptop7.corp.example"),
    ]
    by_name = items[1]
    assert by_name["addresses"] == []
    assert [i["id"] for i in listed(console, "hostname:laptop7")] == [by_name["id"]]

    # A scan finds it at an address, named by reverse DNS: the same asset.
    seen = host("127.0.0.77", hostnames=["laptop7.corp.example"], services=[SSH])
    queue_hosts(console.db, tmp_path, place, [seen], finished_at=T2)
    process_all(console.db, tmp_path)
    asset = detail(console, by_name["id"])
    assert asset["addresses"] == ["127.0.0.77"]
    assert set(sources(asset)) == {"ldap", "scan"}
    assert len(listed(console)) == 2

    # The directory again, still without an address: the address stays.
    queue_connector(console, tmp_path, place, [unresolved], finished_at=T2)
    process_all(console.db, tmp_path)
    assert detail(console, by_name["id"])["addresses"] == ["127.0.0.77"]
    assert len(listed(console)) == 2


def test_a_name_only_record_matches_an_asset_by_any_of_its_names(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    named = host("127.0.0.50", hostnames=["a-alias.corp.example", "srv50.corp.example"])
    queue_hosts(console.db, tmp_path, place, [named], finished_at=T1)
    process_all(console.db, tmp_path)
    record = {"type": "host", "hostnames": ["srv50.corp.example"], "source": "dns"}
    queue_connector(console, tmp_path, place, [record], connector="dns", finished_at=T2)
    process_all(console.db, tmp_path)
    [item] = listed(console)
    assert item["address"] == "127.0.0.50"
    assert set(sources(item)) == {"scan", "dns"}


def test_connector_data_ignores_nothing_and_marks_nothing_offline(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, [host("127.0.0.60"), host("127.0.0.61")])
    process_all(console.db, tmp_path)
    # An SNMP run asks the agents of its targets; the neighbours in their ARP tables lie
    # elsewhere, and the hosts of the range it did not report are not gone.
    device = {**host("127.0.0.60"), "source": "snmp", "device_type": "switch"}
    neighbour = {
        **host("192.0.2.87", mac="00:11:22:33:44:99"),
        "source": "snmp",
        "seen_by": "127.0.0.60",
    }
    run = queue_connector(
        console,
        tmp_path,
        place,
        [device, neighbour],
        connector="snmp",
        params={"targets": "127.0.0.0/24"},
        finished_at=T2,
    )
    process_all(console.db, tmp_path)
    counted = summary(console, run)
    assert (counted["new"], counted["ignored"], counted["offline"]) == (1, 0, 0)
    assert all(item["alive"] for item in listed(console))
    [found] = listed(console, "seen_by:127.0.0.60")
    assert (found["address"], found["mac"]) == ("192.0.2.87", "00:11:22:33:44:99")
    assert [i["address"] for i in listed(console, "device_type:switch")] == ["127.0.0.60"]


def test_the_new_search_keys_find_assets(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, [NMAP_HOST], targets=None, ports="22,443")
    queue_hosts(console.db, tmp_path, place, [host("127.0.0.22", services=[SSH])])
    process_all(console.db, tmp_path)

    def found(query: str) -> list[str]:
        return [item["address"] for item in listed(console, query)]

    assert found("source:import:nmap") == ["127.0.0.21"]
    assert found("source:=scan") == ["127.0.0.22"]
    assert found("source:import") == ["127.0.0.21"]
    assert found("NOT source:scan") == ["127.0.0.21"]
    assert found('os:"linux 5"') == ["127.0.0.21"]
    assert found("os:debian") == ["127.0.0.22"]
    assert found("mac:00:0c:29") == ["127.0.0.21"]
    assert found("mac_vendor:vmware") == ["127.0.0.21"]
    # the import states the version; the scan's banner gives it through the fingerprint rules
    assert found('version:"9.6p1"') == ["127.0.0.21", "127.0.0.22"]
    assert found("cpe:openssh") == ["127.0.0.21", "127.0.0.22"]
    assert found("cpe:linux_kernel") == ["127.0.0.21"]
    assert found("description:file") == ["127.0.0.21"]
    bad = console.admin.get("/api/v1/assets", params={"search": "sources:scan"})
    assert bad.status_code == 400
    assert "source" in bad.text


def test_bad_extended_fields_refuse_an_import_naming_line_and_field(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    for bad, named in (
        ({"os_accuracy": 101}, "os_accuracy"),
        ({"tags": "prod"}, "tags"),
        ({"attributes": {"k": ["v"]}}, "attributes.k"),
        ({"source": "LDAP server!"}, "source"),
        ({"uptime_seconds": -1}, "uptime_seconds"),
    ):
        body = encode(records([{**host("127.0.0.5"), **bad}], targets=None))
        answer = console.admin.post(
            "/api/v1/imports",
            params={"site": place.site_id},
            content=body,
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["details"]["line"] == 2
        assert named in error["message"]
    nameless = encode(records([{"type": "host", "hostnames": []}], targets=None))
    answer = console.admin.post(
        "/api/v1/imports",
        params={"site": place.site_id},
        content=nameless,
        headers={"Content-Type": "application/gzip"},
    )
    assert answer.status_code == 400
    assert "address" in answer.json()["error"]["message"]


def test_an_export_carries_the_sources_and_details(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, [NMAP_HOST], targets=None, ports="22,443")
    process_all(console.db, tmp_path)
    answer = console.admin.get("/api/v1/assets/export", params={"format": "jsonl"})
    assert answer.status_code == 200, answer.text
    [line] = answer.text.splitlines()
    exported = json.loads(line)
    assert [s["source"] for s in exported["sources"]] == ["import:nmap"]
    assert exported["mac_vendor"] == "VMware"
    assert exported["services"][0]["version"] == "9.6p1 Debian 3"
