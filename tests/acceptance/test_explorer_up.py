"""`surveyor up` scans out of the box: on a fresh data directory, a scan of 127.0.0.1
created from the CLI runs on the embedded explorer and its data downloads."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from tests.acceptance.conftest import BOOTSTRAP_TOKEN, SURVEYOR, clean_environment
from tests.support.explorer_processes import (
    BANNER,
    ServerProcess,
    banner_listener,
    closed_loopback_port,
    wait_until,
)


def test_a_scan_of_loopback_created_from_the_cli_runs_on_the_embedded_explorer(
    tmp_path: Path,
) -> None:
    data = tmp_path / "fresh-data"
    data.mkdir()
    up = ServerProcess("up", data)
    up.start()
    try:
        embedded = wait_until(
            lambda: [e for e in up.api.get("/api/v1/explorers").json() if e["online"]],
            seconds=20,
            what="the embedded explorer coming online",
        )
        closed = closed_loopback_port()
        with banner_listener() as port:
            ports = ["--ports", f"{port},{closed}", "--json"]
            created = subprocess.run(
                [SURVEYOR, "task", "create", "first scan", "--targets", "127.0.0.1", *ports],
                env=clean_environment()
                | {
                    "SURVEYOR_URL": up.url,
                    "SURVEYOR_TOKEN": BOOTSTRAP_TOKEN,
                    "HOME": str(tmp_path),
                },
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            task = json.loads(created.stdout)
            up.wait_until_reached(task["id"], "processing_queued", seconds=30)
        records = up.task_records(task["id"])
        launched = " ".join(event["message"] for event in up.events(task["id"]))
    finally:
        up.close()

    assert [explorer["name"] for explorer in embedded] == ["embedded"]
    assert "launched on explorer 'embedded'" in launched
    hosts = [record for record in records if record["type"] == "host"]
    assert [host["addresses"] for host in hosts] == [["127.0.0.1"]]
    services = {service["port"]: service for service in hosts[0]["services"]}
    assert set(services) == {port}
    assert BANNER.decode().strip() in (services[port]["banner"] or "")
    identity = data / "embedded-explorer" / "identity.json"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
