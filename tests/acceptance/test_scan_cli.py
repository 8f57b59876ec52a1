"""`surveyor scan` run as a user runs it, against real services on 127.78.0.0/16 (SPEC §14)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.scan import read_task_data
from surveyor.testing.ptr_server import PtrServer
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.scan_services import LoopbackServices, loopback_services

COMMAND_SECONDS = 60
SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2"


@pytest.fixture(scope="module")
def services() -> Iterator[LoopbackServices]:
    with loopback_services() as running:
        yield running


@pytest.fixture(scope="module")
def ports(services: LoopbackServices) -> dict[str, int]:
    return {
        "ssh": services.banner("127.78.0.2", SSH_BANNER),
        "web": services.http("127.78.0.3", "CLI test page"),
        "closed": services.closed_port("127.78.0.2"),
    }


def surveyor_scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SURVEYOR, "scan", *args],
        env=clean_environment() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )


def port_list(ports: dict[str, int]) -> str:
    return ",".join(str(port) for port in sorted(ports.values()))


def test_a_scan_writes_task_data_that_reads_back_and_lists_what_it_found(
    ports: dict[str, int], tmp_path: Path
) -> None:
    output = tmp_path / "scan.jsonl.gz"
    done = surveyor_scan(
        "127.78.0.1-4", "--ports", port_list(ports), "--probes", "banner,http", "-o", str(output)
    )
    assert done.returncode == 0, done.stderr
    records = list(read_task_data(output))
    assert [records[0]["type"], records[-1]["type"]] == ["config", "summary"]
    found = {
        record["addresses"][0]: {s["port"]: s for s in record["services"]}
        for record in records
        if record["type"] == "host"
    }
    assert set(found) == {"127.78.0.1", "127.78.0.2", "127.78.0.3", "127.78.0.4"}
    assert set(found["127.78.0.2"]) == {ports["ssh"]}
    assert found["127.78.0.2"][ports["ssh"]]["banner"] == SSH_BANNER
    assert found["127.78.0.3"][ports["web"]]["http"]["title"] == "CLI test page"
    assert "OpenSSH_9.2p1" in done.stdout
    assert "CLI test page" in done.stdout
    assert "Scanned 4 hosts" in done.stderr
    assert str(output) in done.stderr.replace("\n", "")


def test_json_prints_only_the_summary_record(ports: dict[str, int]) -> None:
    done = surveyor_scan("127.78.0.2", "--ports", port_list(ports), "--probes", "none", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {key: summary[key] for key in ("type", "hosts_total", "hosts_up", "open_ports")} == {
        "type": "summary",
        "hosts_total": 1,
        "hosts_up": 1,
        "open_ports": 1,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.78.0.1", "127.0.0.300"], "TARGETS: '127.0.0.300' is not a valid address"),
        (["127.78.0.1", "--ports", "22,http"], "--ports: 'http' is not a port"),
        (["127.78.0.1", "--rate", "fast"], "--rate: 'rate' must be a whole number"),
        (["127.78.0.1", "--probes", "ping"], "--probes: 'ping' is not a probe"),
        (["127.78.0.1", "--exclude", "127.78.0.1"], "nothing left to scan after excludes"),
        (["127.0.0.0/8"], "more than the cap of 65,536"),
        (
            ["127.78.0.1", "--dns-servers", "ns.example"],
            "--dns-servers: 'ns.example' is not a name server address",
        ),
        (
            ["127.78.0.1", "--dns-servers", "127.0.0.1:99999"],
            "--dns-servers: '127.0.0.1:99999': the port must be a number from 1 to 65535",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_scanned_naming_the_culprit(
    args: list[str], message: str, tmp_path: Path
) -> None:
    output = tmp_path / "never.jsonl.gz"
    done = surveyor_scan(*args, "-o", str(output))
    assert done.returncode == 1
    assert message in " ".join(done.stderr.split())
    assert not output.exists()


def test_reverse_dns_asks_the_name_servers_given(ports: dict[str, int], tmp_path: Path) -> None:
    output = tmp_path / "named.jsonl.gz"
    with PtrServer("127.78.0.0/24", domain="cli-test.test") as server:
        host, port = server.address
        done = surveyor_scan(
            "127.78.0.2-3",
            "-p",
            port_list(ports),
            "--probes",
            "rdns",
            "--dns-servers",
            f"{host}:{port}",
            "-o",
            str(output),
        )
    assert done.returncode == 0, done.stderr
    names = {
        record["addresses"][0]: record["hostnames"]
        for record in read_task_data(output)
        if record["type"] == "host"
    }
    assert names == {
        "127.78.0.2": ["host-0-2.cli-test.test"],
        "127.78.0.3": ["host-0-3.cli-test.test"],
    }


def test_an_output_that_cannot_be_written_is_refused_before_scanning(tmp_path: Path) -> None:
    done = surveyor_scan("127.78.0.1", "-o", str(tmp_path / "missing" / "out.jsonl.gz"))
    assert done.returncode == 1
    assert "--output: cannot write in" in " ".join(done.stderr.split())
    done = surveyor_scan("127.78.0.1", "-o", str(tmp_path))
    assert done.returncode == 2  # a usage error
    assert "is a directory" in done.stderr


def test_ctrl_c_stops_the_scan_and_still_writes_what_was_found(
    services: LoopbackServices, tmp_path: Path
) -> None:
    first = services.silent("127.78.1.1")
    output = tmp_path / "stopped.jsonl.gz"
    # 127.78.1.1 comes first; the other 50,000 addresses at 50 probes/s would take 17 minutes
    targets, options = "127.78.1.1-127.78.200.255", ["--no-ping", "--probes", "none"]
    process = subprocess.Popen(
        [
            SURVEYOR,
            "scan",
            targets,
            "--ports",
            str(first),
            "--rate",
            "50",
            *options,
            "-o",
            str(output),
        ],
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert services.wait_for_connection("127.78.1.1", first, timeout=COMMAND_SECONDS)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=COMMAND_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    records = list(read_task_data(output))
    assert records[-1]["type"] == "summary"
    assert records[-1]["stopped"] is True
    assert "Stopped after" in stderr


def test_a_terminal_sees_a_progress_bar_of_hosts(ports: dict[str, int], tmp_path: Path) -> None:
    text = run_in_terminal(
        [SURVEYOR, "scan", "127.78.0.1-2", "--ports", str(ports["ssh"]), "--probes", "none"]
    )
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "Scanning" in plain
    assert "2/2 hosts" in plain
    assert "100%" in plain


def run_in_terminal(args: list[str]) -> str:
    """Run a command with a pseudo-terminal as its output; everything it wrote."""
    controller, terminal = pty.openpty()
    env: dict[str, Any] = clean_environment() | {"COLUMNS": "160", "TERM": "xterm"}
    process = subprocess.Popen(args, env=env, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], COMMAND_SECONDS)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=COMMAND_SECONDS) == 0, output.decode(errors="replace")
    finally:
        process.kill()
        os.close(controller)
    return output.decode(errors="replace")
