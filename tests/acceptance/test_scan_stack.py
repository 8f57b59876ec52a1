"""TCP/IP stack hints (scan/stack.py) read from the SYN-ACKs of real listeners on loopback
(127.83.0.0/16 is this module's own; SPEC §14), with the privilege to open a raw socket
(root, as the tests run) and without it (`CAP_NET_RAW` dropped from the scanning process).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.identify import STACK_ATTRIBUTE, identify, reasons
from surveyor.processing.records import parse_host
from surveyor.scan import read_task_data
from surveyor.scan.stack import StackHints, parse_syn_ack
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.scan_services import LoopbackServices, loopback_services

COMMAND_SECONDS = 60
#: What the scanning process runs under for the unprivileged case: root without CAP_NET_RAW
#: (neither in its bounding set nor inherited), so no raw socket can be opened.
WITHOUT_NET_RAW = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"]
SERVER = "127.83.0.2"
OTHER = "127.83.0.3"


def system_ttl() -> int:
    """The TTL this system starts its packets with: what a loopback SYN-ACK arrives with."""
    return int(Path("/proc/sys/net/ipv4/ip_default_ttl").read_text())


def loopback_mss() -> int:
    """The MSS a listener on loopback announces: the MTU (at most an IPv4 packet's 65,535
    bytes) less the IPv4 and TCP headers."""
    return min(int(Path("/sys/class/net/lo/mtu").read_text()), 65535) - 40


def send_window_scale(sock: socket.socket) -> int:
    """The peer's window scale as the kernel took it from the SYN-ACK (`TCP_INFO`)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("B", info, 6)[0] & 0x0F


@pytest.fixture(scope="module")
def services() -> Iterator[LoopbackServices]:
    with loopback_services() as running:
        yield running


@pytest.fixture
def hints() -> Iterator[StackHints]:
    assert os.geteuid() == 0, "the tests run as root, who may open a raw socket"
    opened = StackHints.open(range(1, 65536), lambda address: address.startswith("127.83."))
    assert opened is not None
    try:
        yield opened
    finally:
        opened.close()


def test_the_first_syn_ack_of_a_host_is_read_as_the_kernel_sent_it(
    services: LoopbackServices, hints: StackHints
) -> None:
    port = services.silent(SERVER)
    with socket.create_connection((SERVER, port), timeout=5) as client:
        scale = send_window_scale(client)
    hint = hints.take(SERVER)
    assert hint is not None
    assert hint["ttl"] == system_ttl()
    assert isinstance(hint["window"], int)
    assert 0 < hint["window"] <= 65535
    options = str(hint["options"]).split(",")
    assert options[0] == f"M{loopback_mss()}"
    assert f"W{scale}" in options  # the window scale the client's kernel read from it
    assert hints.take(SERVER) is None  # taken once


def test_syn_acks_of_other_addresses_or_ports_are_not_kept(
    services: LoopbackServices,
) -> None:
    scanned = services.silent(OTHER)
    elsewhere, other_port = services.silent(SERVER), services.silent(OTHER)
    hints = StackHints.open([scanned], lambda address: address == OTHER)
    assert hints is not None
    try:
        for address, port in ((SERVER, elsewhere), (OTHER, other_port)):
            with socket.create_connection((address, port), timeout=5):
                pass
        assert (hints.take(SERVER), hints.take(OTHER)) == (None, None)
        with socket.create_connection((OTHER, scanned), timeout=5):
            pass
        assert hints.take(OTHER) is not None
    finally:
        hints.close()


def test_packets_that_are_not_ipv4_syn_acks_are_no_hint() -> None:
    syn_ack = bytearray(40)
    syn_ack[0], syn_ack[8], syn_ack[9] = 0x45, 60, socket.IPPROTO_TCP
    syn_ack[12:16] = socket.inet_aton("198.51.100.7")
    struct.pack_into("!HH", syn_ack, 20, 443, 40000)
    syn_ack[32], syn_ack[33] = 0x50, 0x12
    struct.pack_into("!H", syn_ack, 34, 29200)
    assert parse_syn_ack(bytes(syn_ack)) == (
        "198.51.100.7",
        443,
        {"ttl": 60, "window": 29200, "options": ""},
    )
    for flags in (0x02, 0x10, 0x14, 0x16):  # SYN, ACK, RST-ACK, SYN-RST-ACK
        syn_ack[33] = flags
        assert parse_syn_ack(bytes(syn_ack)) is None
    assert parse_syn_ack(b"\x60" + bytes(60)) is None
    assert parse_syn_ack(bytes(syn_ack[:30])) is None


def surveyor_scan(port: int, output: Path, *, privileged: bool) -> subprocess.CompletedProcess[str]:
    command = [SURVEYOR, "scan", SERVER, "--ports", str(port), "-o", str(output)]
    return subprocess.run(
        command if privileged else [*WITHOUT_NET_RAW, *command],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )


def host_record(output: Path) -> dict[str, Any]:
    found = [record for record in read_task_data(output) if record["type"] == "host"]
    assert len(found) == 1
    return found[0]


def test_a_privileged_scan_records_the_hint_and_an_unprivileged_one_as_before(
    services: LoopbackServices, tmp_path: Path
) -> None:
    port = services.silent(SERVER)  # says nothing, so no answer names a system
    privileged, unprivileged = tmp_path / "root.jsonl.gz", tmp_path / "no-raw.jsonl.gz"
    done = surveyor_scan(port, privileged, privileged=True)
    assert done.returncode == 0, done.stderr
    done = surveyor_scan(port, unprivileged, privileged=False)
    assert done.returncode == 0, done.stderr

    with_hint, without = host_record(privileged), host_record(unprivileged)
    assert "tcp_stack" not in without
    hint = with_hint.pop("tcp_stack")
    assert hint["ttl"] == system_ttl()
    assert str(hint["options"]).startswith(f"M{loopback_mss()},")
    # apart from the hint (and the round trip, measured anew), the records are the same
    with_hint["timing"] = without["timing"] = None
    assert with_hint == without

    # processing: the hint is the asset's attribute, and the weak evidence names Linux
    seen = parse_host(host_record(privileged), 1)
    assert seen.os == "Linux"
    assert seen.details is not None
    stack = dict(seen.details.attributes)[STACK_ATTRIBUTE]
    assert stack.startswith(f"TTL {system_ttl()}, window {hint['window']}, options M")
    why = reasons(identify(seen.services, stack=stack))
    assert why == (
        f"Linux family (TTL {system_ttl()}, window {hint['window']}), from the TCP/IP stack",
    )
    blind = parse_host(host_record(unprivileged), 1)
    assert (blind.os, blind.details) == ("", None)


def test_without_the_privilege_no_raw_socket_opens() -> None:
    check = "from surveyor.scan.stack import StackHints; print(StackHints.open([1], bool))"
    done = subprocess.run(
        [*WITHOUT_NET_RAW, sys.executable, "-c", check],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=True,
    )
    assert done.stdout.strip() == "None"


def test_a_banner_naming_the_system_outweighs_the_hint(
    services: LoopbackServices, tmp_path: Path
) -> None:
    port = services.banner(SERVER, "220 ftp.example Microsoft FTP Service")
    output = tmp_path / "scan.jsonl.gz"
    done = surveyor_scan(port, output, privileged=True)
    assert done.returncode == 0, done.stderr
    record = host_record(output)
    assert "tcp_stack" in record
    seen = parse_host(record, 1)
    assert seen.os == "Windows"
    assert seen.details is not None
    found = identify(seen.services, stack=dict(seen.details.attributes)[STACK_ATTRIBUTE])
    assert found.os == "Windows"
    assert 0 < found.os_confidence < identify(seen.services).os_confidence
    assert reasons(found)[-1].endswith("outweighed by what the host answered")
    assert json.dumps(record)  # the record stays plain JSON
