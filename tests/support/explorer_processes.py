"""Real Surveyor processes for acceptance tests of the explorer protocol: a console (or
`surveyor up`) that can be restarted on its port and data, explorers that can be killed,
and a loopback listener for them to find. Everything stays on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2

from tests.acceptance.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BOOTSTRAP_TOKEN,
    SURVEYOR,
    clean_environment,
    free_loopback_port,
)

T = TypeVar("T")
BANNER = b"SSH-2.0-SurveyorAcceptance\r\n"


def wait_until(check: Callable[[], T | None], *, seconds: float, what: str) -> T:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s")


class ServerProcess:
    """`surveyor console` or `surveyor up` on a loopback port with its own data directory."""

    def __init__(
        self, command: str, data_dir: Path, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.command = command
        self.data_dir = data_dir
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"{command}.log"
        self.env = clean_environment() | {
            "SURVEYOR_DATA": str(data_dir),
            "SURVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
            "SURVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SURVEYOR_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
            "SURVEYOR_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx2.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"},
            timeout=15,
            trust_env=False,
        )

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [SURVEYOR, self.command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, seconds=60, what=f"{self.command} start-up")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.command} exited:\n{self.log.read_text()}")
        try:
            # The client of the API, not `httpx2.get`, which builds a client (and a TLS
            # context) at each poll.
            return self.api.get("/healthz", timeout=1.0).status_code == 200
        except httpx2.TransportError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.stop()
        self.api.close()

    def task(self, task_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.get(f"/api/v1/tasks/{task_id}").json()
        return answer

    def events(self, task_id: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api.get(
            f"/api/v1/tasks/{task_id}/events", params={"limit": 1000}
        ).json()["items"]
        return items

    def wait_for_status(
        self, task_id: int, statuses: set[str], *, seconds: float
    ) -> dict[str, Any]:
        return wait_until(
            lambda: (task := self.task(task_id))["status"] in statuses and task,
            seconds=seconds,
            what=f"task {task_id} reaching {sorted(statuses)}",
        )

    def wait_until_reached(self, task_id: int, status: str, *, seconds: float) -> dict[str, Any]:
        """Wait until the task has been in `status` (it may have moved on since: processing
        workers are quick), and return the task as it is now."""
        wait_until(
            lambda: status in {event["to_status"] for event in self.events(task_id)},
            seconds=seconds,
            what=f"task {task_id} reaching {status}",
        )
        return self.task(task_id)

    def create_scan(self, **body: Any) -> dict[str, Any]:
        response = self.api.post("/api/v1/tasks", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def import_hosts(self, records: list[dict[str, Any]], *, finished_at: str) -> dict[str, Any]:
        """Import host records (SPEC §7), seen at `finished_at`, into the default site; the
        import task."""
        summary = {"type": "summary", "hosts": len(records), "finished_at": finished_at}
        lines = [{"type": "config"}, *records, summary]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        response = self.api.post("/api/v1/imports", content=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def task_records(self, task_id: int) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/tasks/{task_id}/data")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/gzip"
        lines = gzip.decompress(response.content).decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class ExplorerProcess:
    """`surveyor explorer` enrolled (at its first start) with an enrollment token."""

    def __init__(self, console: ServerProcess, state_dir: Path, name: str) -> None:
        self.console = console
        self.state_dir = state_dir
        self.name = name
        self.log = state_dir.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.explorer_id: int | None = None

    def start(self, token: str | None = None) -> None:
        command = [SURVEYOR, "explorer", "--console", self.console.url]
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
        found = wait_until(self._online, seconds=30, what=f"explorer {self.name} online")
        self.explorer_id = int(found["id"])

    def _online(self) -> dict[str, Any] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the explorer exited:\n{self.log.read_text()}")
        for item in self.console.api.get("/api/v1/explorers").json():
            if item["name"] == self.name and item["online"]:
                found: dict[str, Any] = item
                return found
        return None

    def kill(self) -> None:
        """`kill -9`: no goodbye, no last report."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def enrollment_token(console: ServerProcess) -> str:
    response = console.api.post("/api/v1/enrollment-tokens", json={"name": "acceptance"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@contextmanager
def banner_listener(*addresses: str) -> Iterator[int]:
    """TCP listeners that greet like an SSH server, on one port of each loopback address
    (default 127.0.0.1); yields the port."""
    servers: list[socket.socket] = []
    port = 0
    for address in addresses or ("127.0.0.1",):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((address, port))
        server.listen(64)
        server.settimeout(0.2)
        port = int(server.getsockname()[1])
        servers.append(server)
    done = threading.Event()

    def serve(server: socket.socket) -> None:
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                try:
                    connection.sendall(BANNER)
                    connection.settimeout(0.5)
                    connection.recv(1024)
                except OSError:
                    pass

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield port
    finally:
        done.set()
        for thread in threads:
            thread.join(2)
        for server in servers:
            server.close()


def closed_loopback_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    return free_loopback_port()
