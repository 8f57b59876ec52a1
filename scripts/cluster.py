"""`make cluster`: a deployment of many processes on one machine, by hand (docs/deploy.md).

A throwaway PostgreSQL, two `surveyor console` (127.0.0.1:8471 and :8472), two `surveyor
worker` and three `surveyor explorer` (sites north and south, hosted zone pool), each with its
own directory under one temporary folder, each explorer given both consoles. It prints the
URLs, the login and the pids; Ctrl-C stops everything and removes the folder.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from surveyor.security.secretbox import encode_key, new_key
from surveyor.testing.postgres import throwaway_postgres

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
EMAIL = "admin@cluster.test"
#: Made afresh for every run, and printed.
PASSWORD = secrets.token_urlsafe(12)
TOKEN = secrets.token_urlsafe(32)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"{log.stem} exited; see {log}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within a minute; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-port", type=int, default=8471)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="surveyor-cluster-"))
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = root / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - our own command, our own arguments
                [SURVEYOR, *command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        print(f"  {name:<16} pid {process.pid:<8} log {log}")
        return process

    try:
        with throwaway_postgres() as url:
            plain = {
                key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")
            }
            shared = plain | {
                "SURVEYOR_DATABASE_URL": url,
                "SURVEYOR_SECRET_KEY": encode_key(new_key()),
                "SURVEYOR_ADMIN_EMAIL": EMAIL,
                "SURVEYOR_ADMIN_PASSWORD": PASSWORD,
                "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
            }
            print(f"PostgreSQL: {url}\nEverything lives in {root}\n")
            urls = []
            for number in (1, 2):
                port = args.first_port + number - 1
                data = root / f"console-{number}"
                data.mkdir()
                console = start(
                    f"console-{number}",
                    ["console", "--host", "127.0.0.1", "--port", str(port)],
                    shared | {"SURVEYOR_DATA": str(data)},
                )
                urls.append(f"http://127.0.0.1:{port}")
                wait_for(urls[-1], console, root / f"console-{number}.log")
            for number in (1, 2):
                data = root / f"worker-{number}"
                data.mkdir()
                start(f"worker-{number}", ["worker"], shared | {"SURVEYOR_DATA": str(data)})
            api = httpx2.Client(
                base_url=urls[0], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15
            )
            placements = place(api)
            for name, placement in placements.items():
                token = api.post("/api/v1/enrollment-tokens", json={"name": name}).json()["token"]
                command = ["explorer", "--console", urls[0], "--console", urls[1]]
                command += ["--state-dir", str(root / name), "--name", name, "--token", token]
                start(name, command, plain)
                explorer_id = wait_for_explorer(api, name)
                api.patch(f"/api/v1/explorers/{explorer_id}", json=placement)
            print(f"\nConsoles: {urls[0]}  {urls[1]}\nLog in as {EMAIL} / {PASSWORD}")
            print("Scan 127.0.0.0/8 addresses, kill a console's pid, watch the other one.")
            print("Ctrl-C stops everything.")
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)
        print("Stopped.")


def place(api: httpx2.Client) -> dict[str, dict[str, Any]]:
    """Sites north and south, hosted zone pool: where each explorer goes."""
    placements: dict[str, dict[str, Any]] = {}
    for name, scope in (("north", "127.0.2.0/24"), ("south", "127.0.3.0/24")):
        site = api.post("/api/v1/sites", json={"name": name, "scope": scope}).json()
        placements[f"explorer-{name}"] = {"site_id": site["id"]}
    zone = api.post("/api/v1/hosted-zones", json={"name": "pool", "max_concurrent": 1}).json()
    placements["explorer-pool"] = {"hosted_zone_id": zone["id"]}
    return placements


def wait_for_explorer(api: httpx2.Client, name: str) -> int:
    for _ in range(600):
        for item in api.get("/api/v1/explorers").json():
            if item["name"] == name:
                return int(item["id"])
        time.sleep(0.1)
    sys.exit(f"explorer {name} did not enroll within a minute")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main()
