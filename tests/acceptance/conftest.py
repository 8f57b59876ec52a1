"""Acceptance fixtures: a real console process on loopback, started the way users start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

ADMIN_EMAIL = "admin@example.test"
ADMIN_PASSWORD = "correct horse battery staple"
BOOTSTRAP_TOKEN = "acceptance-bootstrap-token-0123456789abcdef"
STARTUP_SECONDS = 60.0
#: The `surveyor` executable of the environment running the tests.
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))


@dataclass(frozen=True)
class ConsoleProcess:
    """A console answering at `url`, with a first admin who also has an API token."""

    url: str
    data_dir: Path
    admin_email: str
    admin_password: str
    token: str


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This environment without any Surveyor setting that could leak into a test."""
    return {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    # One client for all the polls: each `httpx2.get` would build a client, and its TLS
    # context, again (tens of milliseconds of CPU, ten times a second, while the console
    # starts on the same machine).
    with httpx2.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the console exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"the console was not healthy within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def console_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """`surveyor console` on a free loopback port with its own data directory."""
    data_dir = tmp_path_factory.mktemp("console-data")
    log = data_dir / "console.log"
    port = free_loopback_port()
    env = clean_environment() | {
        "SURVEYOR_DATA": str(data_dir),
        "SURVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
        "SURVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SURVEYOR_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
        "SURVEYOR_LOG_LEVEL": "warning",
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
        try:
            _wait_until_healthy(url, process, log)
            yield ConsoleProcess(url, data_dir, ADMIN_EMAIL, ADMIN_PASSWORD, BOOTSTRAP_TOKEN)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
