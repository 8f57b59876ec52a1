"""`make cluster`: a deployment of many processes on one machine, by hand (docs/deploy.md).

A throwaway PostgreSQL, two `surveyor console` (127.0.0.1:8471 and :8472), two `surveyor
worker` and three `surveyor explorer` (sites north and south, hosted zone pool), each with its
own directory under one temporary folder, each explorer given both consoles (explorer-south
console 2 first, the others console 1 first). It prints the URLs, the login, an API token
(for `/metrics` and the API) and the pids; Ctrl-C stops everything and removes the folder
(`--keep` keeps it, with every process's log).
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    parser.add_argument(
        "--keep", action="store_true", help="keep the folder with the logs after Ctrl-C"
    )
    args = parser.parse_args()
    # Each line as it is printed, also when the output goes to a file (`make cluster > log &`).
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
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
            try:
                start_cluster(url, root, args.first_port, start)
                while True:
                    signal.pause()
            finally:
                # Before PostgreSQL stops, so that nothing loses its database while stopping.
                stop(processes)
    except KeyboardInterrupt:
        pass
    finally:
        if args.keep:
            print(f"Stopped. The logs are in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            print("Stopped.")


Starter = Callable[[str, list[str], dict[str, str]], subprocess.Popen[bytes]]


def start_cluster(url: str, root: Path, first_port: int, start: Starter) -> None:
    """Consoles, workers and placed explorers on the database at `url`; prints how to use them."""
    plain = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    shared = plain | {
        "SURVEYOR_DATABASE_URL": url,
        "SURVEYOR_SECRET_KEY": encode_key(new_key()),
        "SURVEYOR_ADMIN_EMAIL": EMAIL,
        "SURVEYOR_ADMIN_PASSWORD": PASSWORD,
        "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
    }
    print(f"PostgreSQL: {url}\nEverything lives in {root}\n")
    urls = []
    pids = []
    for number in (1, 2):
        port = first_port + number - 1
        data = root / f"console-{number}"
        data.mkdir()
        console = start(
            f"console-{number}",
            ["console", "--host", "127.0.0.1", "--port", str(port)],
            shared | {"SURVEYOR_DATA": str(data)},
        )
        urls.append(f"http://127.0.0.1:{port}")
        pids.append(console.pid)
        wait_for(urls[-1], console, root / f"console-{number}.log")
    for number in (1, 2):
        data = root / f"worker-{number}"
        data.mkdir()
        start(f"worker-{number}", ["worker"], shared | {"SURVEYOR_DATA": str(data)})
    api = httpx2.Client(base_url=urls[0], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    placements = place(api)
    for name, placement in placements.items():
        answer = checked(api.post("/api/v1/enrollment-tokens", json={"name": name}))
        # explorer-south talks to console 2 first: killing either console moves one.
        order = urls[::-1] if name == "explorer-south" else urls
        command = ["explorer", "--console", order[0], "--console", order[1]]
        command += ["--state-dir", str(root / name), "--name", name]
        start(name, [*command, "--token", answer["token"]], plain)
        explorer_id = wait_for_explorer(api, name)
        checked(api.patch(f"/api/v1/explorers/{explorer_id}", json=placement))
    print(HOW_TO.format(one=urls[0], two=urls[1], pid=pids[0], login=f"{EMAIL} / {PASSWORD}"))
    print(f"API token (/metrics, the API, the CLI): {TOKEN}")
    print(f'  curl -H "Authorization: Bearer {TOKEN}" {urls[0]}/metrics\n')
    print("Ctrl-C stops everything.")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each, newest first, then wait; a second Ctrl-C does not cut this short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


HOW_TO = """
Consoles: {one} (console-1)  {two} (console-2)
Log in as {login}

Console 1 started first, so its scheduler leads (its log says "this console's scheduler
leads"); explorer-north and explorer-pool talk to console 1, explorer-south to console 2.
To watch a console die mid-scan:
  - New scan: site north, explorer-north, targets 127.0.2.0/24, default ports, rate 120
    (about 3 minutes); and a recurring one: site north, hosted zone pool, targets
    127.0.0.1, Recurring, Repeat cron, "* * * * *" (a run every minute);
  - kill -9 {pid} (console-1): the explorers move to console 2 (their logs say "moving
    to"), console 2's scheduler takes the lead and fires the next minute's run, and the
    scan finishes there.
"""


def checked(response: httpx2.Response) -> Any:
    """The JSON of a successful answer; otherwise stop, saying what the console answered."""
    if response.is_error:
        sys.exit(f"{response.request.method} {response.request.url}: {response.text}")
    return response.json()


def place(api: httpx2.Client) -> dict[str, dict[str, Any]]:
    """Sites north and south, hosted zone pool: where each explorer goes."""
    placements: dict[str, dict[str, Any]] = {}
    for name, scope in (("north", "127.0.2.0/24"), ("south", "127.0.3.0/24")):
        site = checked(api.post("/api/v1/sites", json={"name": name, "scope": scope}))
        placements[f"explorer-{name}"] = {"site_id": site["id"]}
    zone = checked(api.post("/api/v1/hosted-zones", json={"name": "pool", "max_concurrent": 1}))
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
