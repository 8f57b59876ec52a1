"""The explorer protocol over a network path that breaks: a real `surveyor console` and a real
`surveyor explorer` reaching it through a TCP relay the test controls (all on loopback; the
scans target only 127.0.0.0/8, SPEC §14).

- a network blip in the middle of a scan: the explorer reconnects with backoff and finishes
  the scan, which is neither canceled nor launched again;
- an upload broken half-way, by a reset or by a path that goes silent: nothing partial is
  kept, the explorer sends it again, and the console stores the data once, whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx2
import pytest

from tests.support.explorer_processes import (
    BANNER,
    ExplorerProcess,
    ServerProcess,
    banner_listener,
    enrollment_token,
    wait_until,
)
from tests.support.tcp_relay import TcpRelay

#: Silence is tolerated for longer than the blips below: a blip must not cost the scan.
TIMEOUTS = {
    "SURVEYOR_EXPLORER_SILENCE_TIMEOUT": "60",
    "SURVEYOR_ONLINE_WINDOW": "120",
    "SURVEYOR_UPLOAD_IDLE_TIMEOUT": "2",
}
#: How many refused connections the network blip lasts.
BLIP_REFUSALS = 3


@dataclass
class ConsoleVia:
    """The console as an explorer behind the relay sees it (the test still asks it directly)."""

    url: str
    api: httpx2.Client


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess("console", tmp_path_factory.mktemp("console-data"), env=TIMEOUTS)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def relay(console: ServerProcess) -> Iterator[TcpRelay]:
    with TcpRelay(console.port) as path:
        yield path


@pytest.fixture
def explorer(
    console: ServerProcess, relay: TcpRelay, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ExplorerProcess]:
    name = f"explorer-{request.node.name.removeprefix('test_')[:30]}-{uuid4().hex[:6]}"
    via = ConsoleVia(relay.url, console.api)
    process = ExplorerProcess(via, tmp_path / "explorer-state", name)  # type: ignore[arg-type]
    process.start(enrollment_token(console))
    try:
        yield process
    finally:
        process.stop()


def test_a_network_blip_mid_scan_is_survived_and_the_scan_completes(
    console: ServerProcess, relay: TcpRelay, explorer: ExplorerProcess
) -> None:
    params = {"targets": "127.0.2.0/28", "tcp_ports": "1-40", "rate": 60, "probes": []}
    task = console.create_scan(name="blip", explorer_id=explorer.explorer_id, params=params)
    wait_until(
        lambda: (
            (found := console.task(task["id"]))["status"] == "active"
            and found["progress"]["collect"] > 0
        ),
        seconds=30,
        what="scan progress",
    )

    with relay.outage():
        # The blip lasts until the explorer has been refused a few times (a report and its
        # retries): long enough to matter, and no longer than needed.
        wait_until(
            lambda: relay.refused >= BLIP_REFUSALS or None,
            seconds=60,
            what="the explorer trying to reach the console during the blip",
        )
        during = console.task(task["id"])

    done = console.wait_until_reached(task["id"], "processing_queued", seconds=90)
    assert during["status"] == "active"
    assert during["progress"]["collect"] < 1.0
    assert done["progress"]["collect"] == 1.0
    hosts = [r for r in console.task_records(task["id"]) if r["type"] == "host"]
    assert hosts
    assert all(r["addresses"][0].startswith("127.0.2.") for r in hosts)
    kinds = [event["kind"] for event in console.events(task["id"])]
    assert "relaunched" not in kinds
    statuses = [e["to_status"] for e in console.events(task["id"]) if e["to_status"]]
    assert "canceled" not in statuses
    # it noticed, kept scanning, and retried with backoff (not once per probe)
    retries = explorer.log.read_text().count("cannot report progress")
    assert 2 <= retries <= 20


@pytest.mark.parametrize("fault", ["reset", "silence"])
def test_an_upload_broken_half_way_is_sent_again_and_stored_once_whole(
    console: ServerProcess, relay: TcpRelay, explorer: ExplorerProcess, fault: str
) -> None:
    if fault == "reset":
        relay.cut_next_upload()
    else:
        relay.stall_next_upload()
    with banner_listener() as port:
        task = console.create_scan(
            name=f"upload broken by {fault}",
            explorer_id=explorer.explorer_id,
            params={"targets": "127.0.0.1", "tcp_ports": str(port), "probes": ["banner"]},
        )
        done = console.wait_until_reached(task["id"], "processing_queued", seconds=60)

    assert (relay.uploads_cut, relay.uploads_stalled) == ((1, 0) if fault == "reset" else (0, 1))
    failure = "upload failed" + ("" if fault == "reset" else r" \(the console at \S+ answered 408")
    assert re.search(failure, explorer.log.read_text())
    records = console.task_records(task["id"])
    assert [record["type"] for record in records] == ["config", "host", "summary"]
    services = {s["port"]: s for s in records[1]["services"]}
    assert BANNER.decode().strip() in services[port]["banner"]
    assert done["size_data"] > 0
    # the broken upload left no partial file behind
    wait_until(
        lambda: not list(console.data_dir.rglob(f".{task['id']}-*.part")),
        seconds=10,
        what="the broken upload's partial file to go",
    )
    queued = [e for e in console.events(task["id"]) if e["to_status"] == "processing_queued"]
    assert len(queued) == 1
