"""The explorer protocol with real processes on loopback: a `surveyor console` and a
`surveyor explorer` talking HTTP, scanning only 127.0.0.0/8 (SPEC §14).

The console runs with short timeouts (silence 3 s, unconfirmed stop 5 s) so the tests do
not wait for the production defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.explorer_processes import (
    BANNER,
    ExplorerProcess,
    ServerProcess,
    banner_listener,
    closed_loopback_port,
    enrollment_token,
    wait_until,
)

SHORT_TIMEOUTS = {
    "SURVEYOR_EXPLORER_SILENCE_TIMEOUT": "3",
    "SURVEYOR_STOP_TIMEOUT": "5",
    "SURVEYOR_ONLINE_WINDOW": "10",
}
#: A scan of loopback addresses that runs for minutes at this rate: long enough to be
#: stopped, or to lose its explorer, in the middle.
SLOW_SCAN = {"targets": "127.0.1.0/24", "tcp_ports": "1-100", "rate": 200, "probes": []}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One console for the module; each test has its own explorer and pins its scans to it."""
    server = ServerProcess("console", tmp_path_factory.mktemp("console-data"), env=SHORT_TIMEOUTS)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def explorer(
    console: ServerProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ExplorerProcess]:
    name = f"explorer-{request.node.name.removeprefix('test_')[:40]}"
    process = ExplorerProcess(console, tmp_path / "explorer-state", name)
    process.start(enrollment_token(console))
    try:
        yield process
    finally:
        process.stop()


def progressing(console: ServerProcess, task_id: int) -> bool:
    task = console.task(task_id)
    return task["status"] == "active" and task["progress"]["collect"] > 0


def test_an_enrolled_explorer_scans_loopback_and_the_data_holds_the_listener_it_found(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    closed = closed_loopback_port()
    with banner_listener() as port:
        task = console.create_scan(
            name="loopback",
            explorer_id=explorer.explorer_id,
            params={"targets": "127.0.0.1", "tcp_ports": f"{port},{closed}", "probes": ["banner"]},
        )
        console.wait_until_reached(task["id"], "processing_queued", seconds=30)

    records = console.task_records(task["id"])
    assert [record["type"] for record in records] == ["config", "host", "summary"]
    host = records[1]
    assert host["addresses"] == ["127.0.0.1"]
    services = {service["port"]: service for service in host["services"]}
    assert set(services) == {port}
    assert BANNER.decode().strip() in services[port]["banner"]
    shown = console.task(task["id"])
    assert shown["size_data"] > 0
    assert shown["progress"]["collect"] == 1.0


def test_a_scan_stopped_mid_way_halts_and_becomes_stopped(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    task = console.create_scan(name="slow", explorer_id=explorer.explorer_id, params=SLOW_SCAN)
    wait_until(lambda: progressing(console, task["id"]), seconds=20, what="scan progress")

    answer = console.api.post(f"/api/v1/tasks/{task['id']}/stop")
    assert answer.json()["status"] == "stopping"
    stopped = console.wait_for_status(task["id"], {"stopped"}, seconds=5)

    assert stopped["progress"]["collect"] < 1.0
    assert stopped["data_partial"] is True
    confirmation = console.events(task["id"])[-1]
    assert confirmation["actor"] == f"explorer:{explorer.name}"
    assert "stopped the scan" in confirmation["message"]


def test_a_stopped_scan_keeps_the_listeners_it_found_and_its_data_is_processed(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    """Issue 10.8: a scan stopped mid-way keeps what it found, and processing it marks
    nothing offline (here: a known asset of the scope the stop kept it from reaching)."""
    closed = closed_loopback_port()
    # The scan walks the range in groups of hosts; a listener early in the range is found
    # within seconds at this rate, long before the scan could end.
    with banner_listener("127.0.1.40", "127.0.1.200") as port:
        task = console.create_scan(
            name="stopped half way",
            explorer_id=explorer.explorer_id,
            params={
                "targets": "127.0.1.0/24",
                "tcp_ports": f"{port},{closed}",
                "rate": 40,
                "host_ping": False,
                "probes": ["banner"],
            },
        )
        wait_until(
            lambda: console.task(task["id"])["stats"].get("open_ports", 0) >= 1,
            seconds=30,
            what="a listener found",
        )
        console.api.post(f"/api/v1/tasks/{task['id']}/stop")
        stopped = console.wait_for_status(task["id"], {"stopped"}, seconds=10)

    assert stopped["progress"]["collect"] < 1.0
    assert stopped["size_data"] > 0
    assert stopped["data_partial"] is True
    records = console.task_records(task["id"])
    assert (records[0]["type"], records[-1]["type"]) == ("config", "summary")
    assert records[-1]["stopped"] is True
    found = {r["addresses"][0]: r for r in records if r["type"] == "host"}
    listening = {a: r["services"] for a, r in found.items() if r["services"]}
    assert listening
    assert set(listening) <= {"127.0.1.40", "127.0.1.200"}
    for services in listening.values():
        assert [s["port"] for s in services] == [port]
        assert BANNER.decode().strip() in services[0]["banner"]
    # A known asset the stopped scan never reached, last seen long before it.
    unreached = next(f"127.0.1.{n}" for n in range(2, 254) if f"127.0.1.{n}" not in found)
    known = console.import_hosts(
        [{"type": "host", "addresses": [unreached]}], finished_at="2020-01-01T00:00:00Z"
    )
    console.wait_for_status(known["id"], {"processed"}, seconds=30)

    answer = console.api.post(f"/api/v1/tasks/{task['id']}/reprocess")
    assert answer.status_code == 200, answer.text
    processed = console.wait_for_status(task["id"], {"processed"}, seconds=30)

    assert processed["change_summary"]["offline"] == 0
    assert processed["change_summary"]["new"] == len(found)
    assets = {
        a["address"]: a
        for a in console.api.get("/api/v1/assets", params={"limit": 1000}).json()["items"]
    }
    for address in listening:
        assert assets[address]["ports"] == [f"tcp/{port} ssh"]
    assert assets[unreached]["alive"] is True


def test_a_killed_explorers_scan_is_canceled_after_the_timeout_with_a_clear_error(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    task = console.create_scan(name="orphan", explorer_id=explorer.explorer_id, params=SLOW_SCAN)
    wait_until(lambda: progressing(console, task["id"]), seconds=20, what="scan progress")

    explorer.kill()
    canceled = console.wait_for_status(task["id"], {"canceled"}, seconds=10)

    assert canceled["error"] == (
        f"the explorer '{explorer.name}' stopped reporting for 3 s while scanning; "
        "the scan was canceled"
    )


def test_a_scan_completes_although_the_console_restarts_in_the_middle(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    params = {"targets": "127.0.1.0/28", "tcp_ports": "1-30", "rate": 100, "probes": []}
    task = console.create_scan(name="survivor", explorer_id=explorer.explorer_id, params=params)
    wait_until(lambda: progressing(console, task["id"]), seconds=20, what="scan progress")
    before = console.task(task["id"])["progress"]["collect"]

    console.stop()
    console.start()
    done = console.wait_until_reached(task["id"], "processing_queued", seconds=40)

    assert before < 1.0
    assert done["progress"]["collect"] == 1.0
    hosts = [record for record in console.task_records(task["id"]) if record["type"] == "host"]
    assert hosts
    assert all(record["addresses"][0].startswith("127.0.1.") for record in hosts)
    assert not any(event["kind"] == "relaunched" for event in console.events(task["id"]))


def test_a_restarted_explorer_keeps_its_identity(
    console: ServerProcess, explorer: ExplorerProcess
) -> None:
    first_id = explorer.explorer_id

    explorer.stop()
    explorer.start()  # no enrollment token this time

    assert explorer.explorer_id == first_id
    names = [item["name"] for item in console.api.get("/api/v1/explorers").json()]
    assert names.count(explorer.name) == 1
    assert not any(name.startswith(f"{explorer.name}-") for name in names)


def holds_a_poll(console: ServerProcess, explorer: ExplorerProcess) -> bool:
    """Whether the explorer has polled since it enrolled: enrolling notes its check-in just
    before its row is created, every poll after that. With nothing to do, it is holding that
    poll now."""
    found = console.api.get(f"/api/v1/explorers/{explorer.explorer_id}").json()
    checked_in = datetime.fromisoformat(found["last_checkin_at"])
    return checked_in > datetime.fromisoformat(found["created_at"])


def test_a_pinned_scan_of_an_explorer_killed_while_idle_shows_explorer_offline_within_seconds(
    tmp_path: Path,
) -> None:
    """The console notices the killed explorer's dropped poll; it does not wait for the
    online window (the production default of 60 s here) to pass."""
    data_dir = tmp_path / "console-data"
    data_dir.mkdir()
    server = ServerProcess("console", data_dir)
    server.start()
    explorer = ExplorerProcess(server, tmp_path / "explorer-state", "killed-while-idle")
    try:
        explorer.start(enrollment_token(server))
        wait_until(
            lambda: holds_a_poll(server, explorer),
            seconds=10,
            what="the explorer asking for work",
        )

        explorer.kill()
        wait_until(
            lambda: (
                not server.api.get(f"/api/v1/explorers/{explorer.explorer_id}").json()["online"]
            ),
            seconds=8,
            what="the killed explorer showing offline",
        )
        task = server.create_scan(
            name="pinned",
            explorer_id=explorer.explorer_id,
            params={"targets": "127.0.0.1", "tcp_ports": "9", "probes": []},
        )
        waiting = wait_until(
            lambda: (
                (found := server.task(task["id"]))["wait_reason"] == "explorer_offline" and found
            ),
            seconds=5,
            what="the pinned scan waiting with reason explorer_offline",
        )

        assert waiting["status"] == "new"
        messages = [event["message"] for event in server.events(task["id"])]
        assert f"waiting for its explorer to come online ('{explorer.name}')" in messages
    finally:
        explorer.stop()
        server.close()
