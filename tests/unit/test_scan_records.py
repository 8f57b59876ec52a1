"""A host record stays within the console's record limit, however many ports answer."""

from __future__ import annotations

from typing import Any

from surveyor.core.jsonl_limits import MAX_RECORD_BYTES
from surveyor.core.ports import MAX_PORT
from surveyor.scan.jobs import HostScan
from surveyor.scan.probes.banner import MAX_BANNER_CHARS
from surveyor.scan.probes.http import MAX_TITLE_CHARS
from surveyor.scan.records import (
    MAX_SERVICES_BYTES,
    MAX_SERVICES_PER_HOST,
    HostAssembly,
    host_record,
)
from surveyor.scan.taskdata import encode_record

EVERY_PORT = tuple(range(1, MAX_PORT + 1))
#: What JSON makes longest per character: a control character is written `\u0001`, a
#: character outside the BMP takes 4 bytes of UTF-8.
CONTROL = "\x01"
WIDE = "\U0001f600"


#: The longest parts a service entry could have, and then some: a banner of the longest
#: kind, an HTTP answer, and a certificate naming hundreds of hosts (built once, shared).
RICHEST: dict[str, Any] = {
    "proto": "tcp",
    "state": "open",
    "service": "https",
    "banner": WIDE * MAX_BANNER_CHARS,
    "product": CONTROL * MAX_TITLE_CHARS,
    "http": {
        "status": 200,
        "server": CONTROL * MAX_TITLE_CHARS,
        "title": CONTROL * MAX_TITLE_CHARS,
    },
    "tls": {
        "subject": "CN=" + WIDE * 1000,
        "issuer": "CN=" + WIDE * 1000,
        "sans": [f"{n}." + CONTROL * 200 for n in range(300)],
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": "2027-01-01T00:00:00Z",
        "sha256": "ab" * 32,
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
    },
}


def richest_entry(port: int) -> dict[str, Any]:
    return {"port": port, **RICHEST}


def size_of(record: dict[str, Any]) -> int:
    return len(encode_record(record))


def test_a_host_open_on_every_port_lists_its_lowest_ports_and_says_how_many_it_left_out() -> None:
    record = host_record(HostScan(7, "127.0.0.9", True, EVERY_PORT), ["tarpit.example"])

    assert size_of(record) < MAX_RECORD_BYTES // 4
    assert [s["port"] for s in record["services"]] == list(range(1, MAX_SERVICES_PER_HOST + 1))
    assert record["services_truncated"] == MAX_PORT - MAX_SERVICES_PER_HOST


def test_the_worst_case_host_record_stays_well_under_the_record_limit() -> None:
    """Every one of 65,535 ports described as richly as can be, and the longest names."""
    assembly = HostAssembly([f"{n}." + WIDE * 60 + ".example" for n in range(64)])
    for port in EVERY_PORT:
        assembly.set_service(richest_entry(port))
    assembly.scan = HostScan(7, "fd00::1:2:3:4", True, EVERY_PORT, rtt=0.5)

    record = assembly.record()

    listed = [s["port"] for s in record["services"]]
    assert listed == list(range(1, len(listed) + 1))
    assert record["services_truncated"] == MAX_PORT - len(listed)
    assert size_of({"services": record["services"]}) <= MAX_SERVICES_BYTES
    assert size_of(record) < MAX_RECORD_BYTES * 3 // 4


def test_one_richest_service_alone_fits_the_record() -> None:
    record = host_record(HostScan(7, "127.0.0.9", True, (443,)), [], {443: richest_entry(443)})
    assert [s["port"] for s in record["services"]] == [443]
    assert "services_truncated" not in record


def test_a_host_with_as_many_ports_as_a_record_lists_is_not_truncated() -> None:
    ports = tuple(range(1000, 1000 + MAX_SERVICES_PER_HOST))
    record = host_record(HostScan(7, "127.0.0.9", True, ports), [])
    assert [s["port"] for s in record["services"]] == list(ports)
    assert "services_truncated" not in record
