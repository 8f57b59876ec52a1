"""A cluster on one machine, as on several: a throwaway PostgreSQL, two `surveyor console`
on their own ports, two `surveyor worker` and three `surveyor explorer` (two sites and a
hosted zone), each process with its own data directory. Scans of loopback listeners run,
are processed and land in the inventory; one console is killed (-9) while they scan, the
explorers move to the other console, and it shows every task finished, once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.security.secretbox import encode_key, new_key
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.databases import fresh_database
from tests.support.explorer_processes import (
    ExplorerProcess,
    ServerProcess,
    banner_listener,
    enrollment_token,
    wait_until,
)

#: The loopback address each placement's listener answers on.
LISTENERS = {"north": "127.0.2.1", "south": "127.0.3.1", "zone": "127.0.4.1"}
#: Slow enough (16 addresses at 8 probes/s) to be killed half-way through.
RATE = 8
DEADLINE = 90


class WorkerProcess:
    """`surveyor worker` with its own data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.log = data_dir.parent / f"{data_dir.name}.log"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [SURVEYOR, "worker"],
                env=clean_environment() | env | {"SURVEYOR_DATA": str(data_dir)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ClusterExplorer(ExplorerProcess):
    """An explorer given every console's URL, in its own order."""

    def __init__(self, consoles: list[ServerProcess], state_dir: Path, name: str) -> None:
        super().__init__(consoles[0], state_dir, name)
        self.consoles = consoles

    def start(self, token: str | None = None) -> None:
        command = [SURVEYOR, "explorer"]
        for console in self.consoles:
            command += ["--console", console.url]
        command += ["--state-dir", str(self.state_dir), "--name", self.name]
        if token:
            command += ["--token", token]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env=clean_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        found = wait_until(self._online, seconds=60, what=f"explorer {self.name} online")
        self.explorer_id = int(found["id"])


@pytest.fixture
def cluster_env(postgres_url: str) -> dict[str, str]:
    return {
        "SURVEYOR_DATABASE_URL": fresh_database(postgres_url, prefix="cluster"),
        "SURVEYOR_SECRET_KEY": encode_key(new_key()),
        # Processing is the workers' alone, so they must find data another console received.
        "SURVEYOR_WORKERS": "0",
    }


@pytest.fixture
def consoles(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for name in ("console-a", "console-b"):
            (tmp_path / name).mkdir()
            server = ServerProcess("console", tmp_path / name, env=cluster_env)
            started.append(server)
            server.start()  # one after the other: the first creates the schema
        yield started
    finally:
        for server in started:
            server.close()


def place(console: ServerProcess) -> dict[str, int]:
    """Two sites and a hosted zone; the ids of each placement's site and zone."""
    ids: dict[str, int] = {}
    for name in ("north", "south"):
        answer = console.api.post(
            "/api/v1/sites", json={"name": name, "scope": f"{LISTENERS[name][:-1]}0/28"}
        )
        assert answer.status_code == 201, answer.text
        ids[name] = int(answer.json()["id"])
    answer = console.api.post("/api/v1/hosted-zones", json={"name": "pool", "max_concurrent": 1})
    assert answer.status_code == 201, answer.text
    ids["zone"] = int(answer.json()["id"])
    return ids


def test_a_cluster_carries_on_when_a_console_is_killed_mid_scan(
    tmp_path: Path, consoles: list[ServerProcess], cluster_env: dict[str, str]
) -> None:
    a, b = consoles
    ids = place(a)
    explorers = [
        ClusterExplorer([a, b], tmp_path / "explorer-north", "explorer-north"),
        ClusterExplorer([b, a], tmp_path / "explorer-south", "explorer-south"),
        ClusterExplorer([a, b], tmp_path / "explorer-zone", "explorer-zone"),
    ]
    workers: list[WorkerProcess] = []
    try:
        for explorer, placed in zip(explorers, ("north", "south", "zone"), strict=True):
            explorer.start(enrollment_token(a))
            body = {"site_id": ids[placed]} if placed != "zone" else {"hosted_zone_id": ids["zone"]}
            answer = a.api.patch(f"/api/v1/explorers/{explorer.explorer_id}", json=body)
            assert answer.status_code == 200, answer.text
        for name in ("worker-1", "worker-2"):
            (tmp_path / name).mkdir()
            workers.append(WorkerProcess(tmp_path / name, cluster_env))
        with banner_listener(*LISTENERS.values()) as port:
            pinned = {"north": explorers[0].explorer_id, "south": explorers[1].explorer_id}
            tasks = run_scans_and_kill(a, b, ids, port, pinned)
            finished = {
                task_id: b.wait_for_status(
                    task_id, {"processed", "canceled", "stopped"}, seconds=DEADLINE
                )
                for task_id in tasks
            }
        assert_every_task_finished_once(b, finished)
        moved = [e.name for e in explorers if "stopped answering; moving to" in e.log.read_text()]
        assert {"explorer-north", "explorer-zone"} <= set(moved), moved
        assert_inventory_has_each_listener(b, ids)
        for worker in workers:
            assert worker.process.poll() is None, worker.log.read_text()
    finally:
        for explorer in explorers:
            explorer.stop()
        for worker in workers:
            worker.stop()


def run_scans_and_kill(
    a: ServerProcess, b: ServerProcess, ids: dict[str, int], port: int, pinned: dict[str, Any]
) -> dict[int, str]:
    """One-off scans of each placement's listener, created through both consoles; console A
    killed once every scan is running. The task ids and where each scanned.

    The sites' scans name their explorer: the zone's explorer has no site, so it could take
    a site's scan and leave the zone's waiting."""
    tasks: dict[int, str] = {}
    for placed, through in (("north", a), ("south", b), ("zone", a)):
        address = LISTENERS[placed]
        body: dict[str, Any] = {
            "name": f"scan {placed}",
            "site_id": ids["north" if placed == "zone" else placed],
            "params": {
                "targets": f"{address[:-1]}0/28",
                "tcp_ports": str(port),
                "rate": RATE,
                "probes": ["banner"],
            },
        }
        if placed == "zone":
            body["hosted_zone_id"] = ids["zone"]
        else:
            body["explorer_id"] = pinned[placed]
        tasks[through.create_scan(**body)["id"]] = placed
    wait_until(
        lambda: all(b.task(task_id)["status"] == "active" for task_id in tasks),
        seconds=DEADLINE,
        what="every scan running",
    )
    assert a.process is not None
    a.process.kill()  # kill -9, mid-scan: no goodbye to explorers or workers
    a.process.wait()
    return tasks


def assert_every_task_finished_once(b: ServerProcess, finished: dict[int, dict[str, Any]]) -> None:
    for task_id, task in finished.items():
        assert task["status"] == "processed", (task_id, task["status"], task["error"])
        assert task["progress"]["collect"] == 1.0
        # Every loopback address answers (a refusal is an answer); the listener's has a service.
        assert task["change_summary"]["new"] == 16, task["change_summary"]
        moves = [event["to_status"] for event in b.events(task_id) if event.get("to_status")]
        assert moves.count("active") == 1, f"task {task_id} was launched again: {moves}"
        assert moves.count("processed") == 1, f"task {task_id} was processed twice: {moves}"
        runs = b.api.get(f"/api/v1/tasks/{task_id}/processing-runs").json()
        runs = runs["items"] if isinstance(runs, dict) else runs
        assert len(runs) == 1, f"task {task_id} has {len(runs)} processing runs"
    counts = b.api.get("/api/v1/tasks/counts").json()["counts"]
    assert counts["completed"] >= len(finished)
    assert counts["active"] == 0
    assert counts["processing"] == 0 or all(
        t["type"] != "scan"
        for t in b.api.get("/api/v1/tasks", params={"tab": "processing"}).json()["items"]
    )


def assert_inventory_has_each_listener(b: ServerProcess, ids: dict[str, int]) -> None:
    for placed, address in LISTENERS.items():
        found = b.api.get("/api/v1/assets", params={"search": f"address:={address}"}).json()
        [asset] = found["items"]
        assert asset["ports"], asset
        assert asset["site_id"] == ids["north" if placed == "zone" else placed]
