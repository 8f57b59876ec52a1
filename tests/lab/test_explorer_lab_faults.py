"""Faults in the middle of a lab scan, with real processes: a stop, a `kill -9` of the explorer,
a console restart.

The console runs on the tests' loopback with a short silence timeout; each explorer runs in the
lab's scanner namespace (no route out) and reaches the console only through the lab's relay,
which connects afresh for every connection, so a console restarted on its port is found again.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.ports import format_ports
from surveyor.testing.netlab import NetLab
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.explorer_processes import (
    ExplorerProcess,
    ServerProcess,
    enrollment_token,
    wait_until,
)

#: Short, so a killed explorer's scan is canceled soon, yet long enough that an explorer
#: starved of CPU on a loaded machine is not taken for dead.
SILENCE_SECONDS = 15
LAB_TIMEOUTS = {
    "SURVEYOR_EXPLORER_SILENCE_TIMEOUT": str(SILENCE_SECONDS),
    # long, so that on a loaded machine a stop is confirmed by the explorer, never forced
    "SURVEYOR_STOP_TIMEOUT": "120",
    "SURVEYOR_ONLINE_WINDOW": "10",
}
PORTS = (21, 22, 25, 80, 110, 143, 443, 587, 631, 3000, 3389, 8000, 8080, 8443)
#: Deadlines only bound the waits; none of them is what a test checks.
STARTUP_SECONDS = 60.0
REACT_SECONDS = 90.0
SCAN_SECONDS = 300.0
ENDED_WITHOUT_DATA = {"stopping", "stopped", "canceled"}


def slow_lab_scan(lab: NetLab) -> dict[str, Any]:
    """The whole lab, a thousand ports per host, 20 probes a second: many minutes of scanning,
    so a fault always lands in the middle."""
    return {"targets": lab.plan.scan_range, "tcp_ports": "1-1000", "rate": 20, "probes": []}


@pytest.fixture(scope="module")
def console(lab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One console for the module, reachable from the scanner's namespace at its own URL."""
    server = ServerProcess("console", tmp_path_factory.mktemp("console-data"), env=LAB_TIMEOUTS)
    server.start()
    try:
        assert lab.reach_loopback_port(server.port) == server.url
        yield server
    finally:
        server.close()


class LabExplorer(ExplorerProcess):
    """`surveyor explorer` running in the lab's scanner namespace."""

    def __init__(self, lab: NetLab, console: ServerProcess, state_dir: Path, name: str) -> None:
        super().__init__(console, state_dir, name)
        self.lab = lab

    def start(self, token: str | None = None) -> None:
        """Start the process and wait until it has checked in itself: a killed predecessor
        of the same name stays online for the console's online window."""
        before = self._last_checkin()
        command = [SURVEYOR, "explorer", "--console", self.console.url]
        command += ["--state-dir", str(self.state_dir), "--name", self.name]
        if token:
            command += ["--token", token]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.lab.scanner_command(command),
                env=clean_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        found = wait_until(
            lambda: (seen := self._online()) and seen["last_checkin_at"] != before and seen,
            seconds=STARTUP_SECONDS,
            what=f"{self.name} checking in",
        )
        self.explorer_id = int(found["id"])

    def _last_checkin(self) -> str | None:
        for item in self.console.api.get("/api/v1/explorers").json():
            if item["name"] == self.name:
                return str(item["last_checkin_at"])
        return None

    def command_line(self) -> list[str]:
        """What the process we hold runs now (`ip netns exec` replaces itself with it)."""
        assert self.process is not None
        raw = Path(f"/proc/{self.process.pid}/cmdline").read_bytes()
        return [part.decode() for part in raw.split(b"\0") if part]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def explorer(
    lab: NetLab, console: ServerProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LabExplorer]:
    name = f"lab-{request.node.name.removeprefix('test_')[:40]}"
    process = LabExplorer(lab, console, tmp_path / "explorer-state", name)
    try:
        process.start(enrollment_token(console))
        yield process
    finally:
        process.stop()


def _fail_with_logs(what: str, console: ServerProcess, explorer: LabExplorer) -> str:
    return (
        f"{what}\n--- explorer log ---\n{explorer.log_text()[-3000:]}"
        f"\n--- console log ---\n{console.log.read_text(errors='replace')[-3000:]}"
    )


def wait_for_data(console: ServerProcess, explorer: LabExplorer, task_id: int) -> dict[str, Any]:
    """Wait until the task's data is stored on the console; return the task as it is now.
    A task that ends without data fails the test at once, with both logs."""

    def stored() -> dict[str, Any] | None:
        reached = {event["to_status"] for event in console.events(task_id)}
        task = console.task(task_id)
        if "processing_queued" in reached:
            return task
        assert task["status"] not in ENDED_WITHOUT_DATA, _fail_with_logs(
            f"the task ended without data: {task}", console, explorer
        )
        return None

    return wait_until(stored, seconds=SCAN_SECONDS, what=f"task {task_id} storing its data")


def wait_mid_scan(console: ServerProcess, explorer: LabExplorer, task_id: int) -> dict[str, Any]:
    """Wait until the explorer scans the task and has reported probes sent; return the task."""

    def scanning() -> dict[str, Any] | None:
        assert explorer.alive(), _fail_with_logs("the explorer exited", console, explorer)
        task = console.task(task_id)
        assert task["status"] in {"new", "active"}, task
        sent = (task.get("stats") or {}).get("probes_sent", 0)
        return task if task["status"] == "active" and sent > 0 else None

    return wait_until(scanning, seconds=REACT_SECONDS, what=f"task {task_id} scanning")


def wait_for_quiet(lab: NetLab, *, window: float, seconds: float) -> int:
    """Wait until the scanner's namespace sends nothing into the lab for `window` seconds."""

    def quiet() -> int | None:
        before = lab.scanner_packets_sent()
        time.sleep(window)
        after = lab.scanner_packets_sent()
        return after if after == before else None

    return wait_until(quiet, seconds=seconds, what="the scanner's namespace falling silent")


def host_services(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    hosts = [record for record in records if record["type"] == "host"]
    return {
        host["addresses"][0]: sorted(service["port"] for service in host["services"])
        for host in hosts
    }


def small_lab_scan(lab: NetLab) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """A quick scan of two lab hosts, and the open ports its data must hold."""
    chosen = [lab.host("bastion"), lab.host("mail")]
    ports = (22, 25, 80, 110)
    params = {
        "targets": ",".join(str(host.address) for host in chosen),
        "tcp_ports": format_ports(ports),
        "probes": ["banner"],
    }
    expected = {
        str(host.address): [port for port in host.plan.open_ports if port in ports]
        for host in chosen
    }
    return params, expected


def test_a_lab_scan_stopped_mid_way_halts_and_the_explorer_takes_the_next_task(
    lab: NetLab, console: ServerProcess, explorer: LabExplorer
) -> None:
    task = console.create_scan(
        name="lab slow", explorer_id=explorer.explorer_id, params=slow_lab_scan(lab)
    )
    wait_mid_scan(console, explorer, task["id"])
    assert explorer.process is not None
    scanning_pid = explorer.process.pid
    sending = lab.scanner_packets_sent()
    wait_until(
        lambda: lab.scanner_packets_sent() > sending,
        seconds=REACT_SECONDS,
        what="the scan sending into the lab",
    )

    answer = console.api.post(f"/api/v1/tasks/{task['id']}/stop")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stopping"
    stopped = console.wait_for_status(task["id"], {"stopped"}, seconds=REACT_SECONDS)

    assert stopped["progress"]["collect"] < 1.0
    # what it found before the stop is kept, marked partial
    assert stopped["size_data"] > 0
    assert stopped["data_partial"] is True
    # the explorer, not the console's stop timeout, ended it: it confirms (uploading what it
    # found) only once its scan thread has returned
    confirmation = console.events(task["id"])[-1]
    assert confirmation["actor"] == f"explorer:{explorer.name}"
    assert "stopped the scan" in confirmation["message"]
    # and nothing of the scan goes on: the scanner's namespace falls silent
    silent_at = wait_for_quiet(lab, window=3.0, seconds=REACT_SECONDS)
    assert console.task(task["id"])["status"] == "stopped"

    # the same explorer process is still there, and takes the next task
    assert explorer.alive()
    assert explorer.process.pid == scanning_pid
    params, expected = small_lab_scan(lab)
    follow_up = console.create_scan(
        name="lab follow-up", explorer_id=explorer.explorer_id, params=params
    )
    wait_for_data(console, explorer, follow_up["id"])
    assert host_services(console.task_records(follow_up["id"])) == expected
    assert lab.scanner_packets_sent() > silent_at
    assert console.task(task["id"])["status"] == "stopped"


def test_a_killed_lab_explorers_scan_is_canceled_and_a_fresh_explorer_takes_new_work(
    lab: NetLab, console: ServerProcess, explorer: LabExplorer
) -> None:
    task = console.create_scan(
        name="lab orphan", explorer_id=explorer.explorer_id, params=slow_lab_scan(lab)
    )
    wait_mid_scan(console, explorer, task["id"])
    # the signal must reach the explorer itself, not a wrapper that would leave it running
    assert explorer.command_line()[1:3] == [SURVEYOR, "explorer"]

    explorer.kill()
    canceled = console.wait_for_status(task["id"], {"canceled"}, seconds=REACT_SECONDS)

    assert canceled["error"] == (
        f"the explorer '{explorer.name}' stopped reporting for {SILENCE_SECONDS} s while "
        "scanning; the scan was canceled"
    )
    assert canceled["size_data"] == 0
    assert canceled["progress"]["collect"] < 1.0
    spool = explorer.state_dir / "spool"
    assert list(spool.iterdir()), "the killed scan left no partial data to clean up"

    # a fresh process on the same state directory is the same explorer, and works
    first_id = explorer.explorer_id
    explorer.start()  # no enrollment token: the state directory holds the identity
    assert explorer.explorer_id == first_id
    # the killed scan's partial data is dropped: nothing will ever upload it
    assert list(spool.iterdir()) == []
    params, expected = small_lab_scan(lab)
    follow_up = console.create_scan(name="lab after kill", explorer_id=first_id, params=params)
    wait_for_data(console, explorer, follow_up["id"])
    assert host_services(console.task_records(follow_up["id"])) == expected
    assert console.task(task["id"])["status"] == "canceled"


def test_a_lab_scan_completes_although_the_console_restarts_in_the_middle(
    lab: NetLab, console: ServerProcess, explorer: LabExplorer
) -> None:
    # about half a minute of scanning at 10 probes a second
    params = {"targets": lab.plan.scan_range, "tcp_ports": format_ports(PORTS), "rate": 10}
    task = console.create_scan(name="lab survivor", explorer_id=explorer.explorer_id, params=params)
    before = wait_mid_scan(console, explorer, task["id"])["progress"]["collect"]

    console.stop()
    # the explorer notices the console is gone while it is still scanning
    wait_until(
        lambda: f"task {task['id']}: cannot report progress" in explorer.log_text(),
        seconds=REACT_SECONDS,
        what="the explorer missing the console mid-scan",
    )
    console.start()
    done = wait_for_data(console, explorer, task["id"])

    assert before < 1.0
    assert done["progress"]["collect"] == 1.0
    records = console.task_records(task["id"])
    expected = lab.plan.expected_open_ports(PORTS)
    assert host_services(records) == {address: list(ports) for address, ports in expected.items()}
    banners = {
        (host["addresses"][0], service["port"]): service["banner"]
        for host in (record for record in records if record["type"] == "host")
        for service in host["services"]
        if service["banner"]
    }
    assert banners == {
        (str(host.address), service.port): service.plan.banner
        for host in lab.hosts
        for service in host.services
        if service.plan.banner and service.port in PORTS
    }
    events = console.events(task["id"])
    assert not any(event["kind"] == "relaunched" for event in events)
    assert not any(event["to_status"] == "canceled" for event in events)
