"""Issue 4's acceptance on a fresh `surveyor up`: a scan of 127.0.0.1 ends `processed` with a
change summary; scanning again is `unchanged`; after the found service stops, the next scan
shows the asset changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.explorer_processes import (
    ServerProcess,
    banner_listener,
    closed_loopback_port,
    wait_until,
)

SCAN_SECONDS = 60


def scan(up: ServerProcess, name: str, ports: str) -> dict[str, Any]:
    task = up.create_scan(name=name, params={"targets": "127.0.0.1", "tcp_ports": ports})
    return up.wait_for_status(
        task["id"], {"processed", "canceled", "stopped"}, seconds=SCAN_SECONDS
    )


def loopback_asset(up: ServerProcess) -> dict[str, Any]:
    [asset] = up.api.get("/api/v1/assets", params={"search": "address:=127.0.0.1"}).json()["items"]
    return dict(asset)


def test_scanning_loopback_three_times_gives_new_then_unchanged_then_changed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "fresh-data"
    data.mkdir()
    up = ServerProcess("up", data)
    up.start()
    try:
        wait_until(
            lambda: [e for e in up.api.get("/api/v1/explorers").json() if e["online"]],
            seconds=20,
            what="the embedded explorer coming online",
        )
        closed = closed_loopback_port()
        with banner_listener() as port:
            ports = f"{port},{closed}"
            first = scan(up, "first", ports)
            second = scan(up, "second", ports)
            with_service = loopback_asset(up)
        third = scan(up, "third", ports)
        without_service = loopback_asset(up)
        report = up.api.get(f"/api/v1/tasks/{third['id']}/changes").json()
    finally:
        up.close()

    for task in (first, second, third):
        assert task["status"] == "processed", task["error"]
        assert task["progress"]["process"] == 1.0
    assert first["change_summary"]["new"] == 1
    assert first["change_summary"]["total"] == 1
    assert second["change_summary"] == {
        "new": 0,
        "changed": 0,
        "offline": 0,
        "online": 0,
        "unchanged": 1,
        "ignored": 0,
        "total": 1,
    }
    assert third["change_summary"]["changed"] == 1
    assert with_service["ports"] == [f"tcp/{port} ssh"]
    assert without_service["ports"] == []
    [change] = report["items"]
    assert change["kind"] == "changed"
    assert change["details"]["services"] == {"removed": [f"tcp/{port} ssh"]}
