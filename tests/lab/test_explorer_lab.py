"""An explorer enrolled from the lab's scanner namespace scans the lab for a real console.

The console listens on the tests' loopback; the explorer runs where a scan has no route out,
and reaches the console only through the lab's Unix socket relay.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from surveyor.core.ports import format_ports
from surveyor.testing.netlab import NetLab

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
TOKEN = "lab-bootstrap-token-0123456789abcdef0123"
PORTS = (21, 22, 25, 80, 110, 143, 443, 587, 631, 3000, 3389, 8000, 8080, 8443)
STARTUP_SECONDS = 60.0
SCAN_SECONDS = 180.0
#: Statuses a scan reaches once its data is stored on the console.
DATA_STORED = {"processing_queued", "processing", "processed"}
FAILED = {"canceled", "stopped"}


@dataclass(frozen=True)
class Console:
    url: str
    client: httpx2.Client
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(what: str, check: Any, seconds: float, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {seconds} s; log:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`surveyor console` on the tests' loopback, with a bootstrap admin token."""
    data_dir = tmp_path_factory.mktemp("lab-console")
    log = data_dir / "console.log"
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    env |= {
        "SURVEYOR_DATA": str(data_dir),
        "SURVEYOR_ADMIN_EMAIL": "admin@lab.test",
        "SURVEYOR_ADMIN_PASSWORD": "correct horse battery staple",
        "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
    }
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SURVEYOR, "console", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client = httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the console exited with {process.returncode}:\n{log.read_text()}")
            try:
                return client.get("/healthz").status_code == 200
            except httpx2.TransportError:
                return False

        _wait_for("the console becoming healthy", healthy, STARTUP_SECONDS, log)
        yield Console(url, client, log)
    finally:
        client.close()
        _stop(process, grace=10.0)


@pytest.fixture(scope="module")
def lab_explorer(
    lab: NetLab, console: Console, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """An explorer enrolled from inside the scanner's namespace; yields its id once online."""
    created = console.client.post("/api/v1/enrollment-tokens", json={"name": "lab"})
    assert created.status_code == 201, created.text
    relayed_url = lab.reach_loopback_port(int(console.url.rsplit(":", 1)[1]))
    state_dir = tmp_path_factory.mktemp("lab-explorer")
    log = state_dir / "explorer.log"
    args = [SURVEYOR, "explorer", "--console", relayed_url, "--token", created.json()["token"]]
    args += ["--name", "lab-explorer", "--state-dir", str(state_dir)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            lab.scanner_command(args), stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )
    try:

        def online() -> int | None:
            if process.poll() is not None:
                pytest.fail(f"the explorer exited with {process.returncode}:\n{log.read_text()}")
            explorers = console.client.get("/api/v1/explorers").json()
            ids = [e["id"] for e in explorers if e["name"] == "lab-explorer" and e["online"]]
            return ids[0] if ids else None

        yield _wait_for("the lab explorer coming online", online, STARTUP_SECONDS, log)
    finally:
        # a graceful exit is not what this module checks; a long poll may hold it for a while
        _stop(process, grace=3.0)


def test_a_scan_task_run_by_the_lab_explorer_finds_exactly_the_lab(
    lab: NetLab, console: Console, lab_explorer: int
) -> None:
    params = {"targets": lab.plan.scan_range, "tcp_ports": format_ports(PORTS)}
    body = {"name": "lab sweep", "explorer_id": lab_explorer, "params": params}
    created = console.client.post("/api/v1/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = console.client.get(f"/api/v1/tasks/{task_id}").json()
        assert task["status"] not in FAILED, task
        return task if task["status"] in DATA_STORED else None

    _wait_for("the lab scan", finished, SCAN_SECONDS, console.log)
    data = console.client.get(f"/api/v1/tasks/{task_id}/data")
    assert data.status_code == 200, data.text
    records = [json.loads(line) for line in gzip.decompress(data.content).splitlines() if line]
    hosts = [record for record in records if record["type"] == "host"]
    found = {
        host["addresses"][0]: sorted(service["port"] for service in host["services"])
        for host in hosts
    }
    expected = lab.plan.expected_open_ports(PORTS)
    assert found == {address: list(ports) for address, ports in expected.items()}
    banners = {
        (host["addresses"][0], service["port"]): service["banner"]
        for host in hosts
        for service in host["services"]
        if service["banner"]
    }
    assert banners == {
        (str(host.address), service.port): service.plan.banner
        for host in lab.hosts
        for service in host.services
        if service.plan.banner and service.port in PORTS
    }
