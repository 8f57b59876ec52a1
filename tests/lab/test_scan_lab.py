"""`surveyor scan`, run in the lab's scanner namespace, finds exactly what the lab holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.ports import format_ports
from surveyor.scan.taskdata import read_task_data
from surveyor.testing.labplan import HTTP_SERVER, PortState, ServiceKind
from surveyor.testing.netlab import LabHost, NetLab

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
#: Every open port of the lab, and closed and filtered ones beside them.
PORTS = (21, 22, 23, 25, 80, 110, 143, 443, 587, 631, 3000, 3389, 5432, 8000, 8080, 8443, 9100)
#: Scans of the impaired host alone; every one must give the same findings.
IMPAIRED_RUNS = 3

Records = list[dict[str, Any]]


def scan(lab: NetLab, targets: str, output: Path) -> Records:
    """Run `surveyor scan` in the scanner's namespace and read back its task data."""
    args = [SURVEYOR, "scan", targets, "--ports", format_ports(PORTS), "-o", str(output)]
    done = lab.run_in_scanner(args, timeout=300)
    assert done.returncode == 0, f"surveyor scan failed:\n{done.stdout}\n{done.stderr}"
    return list(read_task_data(output))


def hosts_by_address(records: Records) -> dict[str, dict[str, Any]]:
    hosts = [record for record in records if record["type"] == "host"]
    by_address = {address: host for host in hosts for address in host["addresses"]}
    assert len(by_address) == len(hosts), "a host record repeats an address"
    return by_address


def open_services(host: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {
        service["port"]: service
        for service in host["services"]
        if service["proto"] == "tcp" and service["state"] == "open"
    }


def findings(host: dict[str, Any]) -> dict[int, tuple[object, ...]]:
    """What a user reads about each open port of a host: the facts that must not vary."""
    facts: dict[int, tuple[object, ...]] = {}
    for port, service in open_services(host).items():
        http = service.get("http") or {}
        tls = service.get("tls") or {}
        facts[port] = (service.get("banner"), http.get("title"), tls.get("sha256"))
    return facts


def expected_findings(host: LabHost) -> dict[int, tuple[object, ...]]:
    facts: dict[int, tuple[object, ...]] = {}
    for service in host.services:
        if service.port in PORTS:
            certificate = service.certificate
            facts[service.port] = (
                service.plan.banner,
                service.plan.http_title,
                certificate.sha256 if certificate else None,
            )
    return facts


@pytest.fixture(scope="module")
def lab_scan(lab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> Records:
    """One scan of the whole lab range (hosts and absent addresses), shared by this module."""
    return scan(lab, lab.plan.scan_range, tmp_path_factory.mktemp("scan") / "lab.jsonl.gz")


def test_the_task_data_opens_with_its_config_and_closes_with_a_summary(
    lab_scan: Records,
) -> None:
    assert lab_scan[0]["type"] == "config"
    assert lab_scan[-1]["type"] == "summary"
    assert {record["type"] for record in lab_scan[1:-1]} <= {"host"}


def test_the_scan_finds_exactly_the_lab_hosts(lab: NetLab, lab_scan: Records) -> None:
    found = set(hosts_by_address(lab_scan))
    assert found == {str(host.address) for host in lab.hosts}
    assert not found & {str(address) for address in lab.plan.absent_addresses}


def test_every_open_port_is_found_and_no_closed_or_filtered_one(
    lab: NetLab, lab_scan: Records
) -> None:
    by_address = hosts_by_address(lab_scan)
    found = {address: sorted(open_services(host)) for address, host in by_address.items()}
    expected = {
        address: list(ports) for address, ports in lab.plan.expected_open_ports(PORTS).items()
    }
    assert found == expected


def test_banners_of_server_first_services_are_reported(lab: NetLab, lab_scan: Records) -> None:
    by_address = hosts_by_address(lab_scan)
    for host in lab.hosts:
        services = open_services(by_address[str(host.address)])
        for service in host.services:
            if service.plan.kind == ServiceKind.BANNER:
                assert services[service.port]["banner"] == service.plan.banner, (host.name, service)


def test_web_servers_are_reported_with_status_server_and_title(
    lab: NetLab, lab_scan: Records
) -> None:
    by_address = hosts_by_address(lab_scan)
    for host in lab.hosts:
        services = open_services(by_address[str(host.address)])
        for service in host.services:
            if service.plan.kind in (ServiceKind.HTTP, ServiceKind.HTTPS):
                http = services[service.port]["http"]
                assert http == {
                    "status": 200,
                    "server": HTTP_SERVER,
                    "title": service.plan.http_title,
                }, (host.name, service.port)


def test_certificates_are_reported_with_subject_issuer_names_and_fingerprint(
    lab: NetLab, lab_scan: Records
) -> None:
    by_address = hosts_by_address(lab_scan)
    certificates = [
        (host, service)
        for host in lab.hosts
        for service in host.services
        if service.certificate is not None
    ]
    assert len(certificates) >= 3
    for host, service in certificates:
        assert service.certificate is not None
        tls = open_services(by_address[str(host.address)])[service.port]["tls"]
        assert {key: tls[key] for key in ("subject", "issuer", "sans", "sha256")} == {
            "subject": service.certificate.subject,
            "issuer": service.certificate.issuer,
            "sans": list(service.certificate.alt_names),
            "sha256": service.certificate.sha256,
        }, (host.name, service.port)


def test_reverse_dns_names_the_hosts(lab: NetLab, lab_scan: Records) -> None:
    by_address = hosts_by_address(lab_scan)
    for host in lab.hosts:
        # the scanner namespace's /etc/hosts gives each address a name and a short alias
        names = by_address[str(host.address)]["hostnames"]
        assert names[0] == host.hostname
        assert set(names) <= {host.hostname, host.name}


def test_closed_and_filtered_ports_are_counted_apart(lab: NetLab, lab_scan: Records) -> None:
    by_address = hosts_by_address(lab_scan)
    found = {
        address: (host["closed_ports"], host["filtered_ports"])
        for address, host in by_address.items()
    }
    expected = {}
    for host in lab.hosts:
        states = [host.port_state(port) for port in PORTS]
        expected[str(host.address)] = (
            states.count(PortState.CLOSED),
            states.count(PortState.FILTERED),
        )
    assert found == expected


def test_the_impaired_host_gives_the_same_findings_every_time(lab: NetLab, tmp_path: Path) -> None:
    impaired = next(host for host in lab.hosts if host.plan.impaired)
    expected = expected_findings(impaired)
    for run in range(IMPAIRED_RUNS):
        records = scan(lab, str(impaired.address), tmp_path / f"impaired-{run}.jsonl.gz")
        by_address = hosts_by_address(records)
        assert list(by_address) == [str(impaired.address)], f"run {run}"
        assert findings(by_address[str(impaired.address)]) == expected, f"run {run}"
