"""The lab is what it claims to be, checked from the scanner's namespace without the scan engine."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Network, ip_interface

from surveyor.testing.labplan import (
    HTTP_SERVER,
    IMPAIRED_DELAY_MS,
    LAB_SUBNET,
    PortState,
    ServiceKind,
)
from surveyor.testing.netlab import NetLab

#: Ports nothing listens on in the standard lab (unless a host's firewall drops them).
SAMPLE_UNUSED_PORTS = (23, 3389, 5432, 8888, 9100)
#: Long enough for the kernel's SYN retransmissions to get through 5 % loss.
PATIENT_TIMEOUT = 8.0


def test_open_ports_accept_and_unused_ports_refuse(lab: NetLab) -> None:
    targets = [
        (host.address, port)
        for host in lab.hosts
        if not host.plan.impaired
        for port in (*host.plan.open_ports, *SAMPLE_UNUSED_PORTS)
        if port not in host.plan.filtered_ports
    ]
    states = lab.probe(targets, timeout=2.0)
    expected = {
        (str(address), port): lab.host_at(address).port_state(port) for address, port in targets
    }
    assert states == expected
    assert {PortState.OPEN, PortState.CLOSED} == set(states.values())


def test_filtered_ports_drop_the_syn_so_connects_time_out(lab: NetLab) -> None:
    targets = [(host.address, port) for host in lab.hosts for port in host.plan.filtered_ports]
    assert len(targets) >= 3
    assert set(lab.probe(targets, timeout=1.0).values()) == {"filtered"}


def test_the_impaired_host_answers_late_but_answers(lab: NetLab) -> None:
    impaired = next(host for host in lab.hosts if host.plan.impaired)
    normal = lab.host("web")
    targets = [(impaired.address, port) for port in impaired.plan.open_ports] * 5
    names = [f"{address}:{port}" for address, port in targets]
    args = [sys.executable, "-m", "surveyor.testing.labprobe", "connect", str(PATIENT_TIMEOUT)]
    done = lab.run_in_scanner([*args, *names, f"{normal.address}:80"], timeout=60)
    results = json.loads(done.stdout)
    assert {result["state"] for result in results.values()} == {"open"}
    delay = IMPAIRED_DELAY_MS / 1000
    assert min(results[name]["seconds"] for name in names) >= delay
    assert results[f"{normal.address}:80"]["seconds"] < delay


def test_the_impaired_host_loses_about_one_answer_in_twenty(lab: NetLab) -> None:
    impaired = next(host for host in lab.hosts if host.plan.impaired)
    # A lost reset leaves the connect waiting for the kernel's retransmission after 1 s.
    targets = [(impaired.address, port) for port in range(20000, 20400)]
    states = list(lab.probe(targets, timeout=0.6).values())
    lost = states.count("filtered")
    assert states.count("closed") + lost == len(targets)
    # 5 % of 400 is 20; the bounds are far in the tails of the binomial distribution
    assert 4 <= lost <= 45


def test_absent_addresses_do_not_answer(lab: NetLab) -> None:
    targets = [(address, 80) for address in lab.plan.absent_addresses[:3]]
    assert set(lab.probe(targets, timeout=PATIENT_TIMEOUT).values()) == {"unreachable"}


def test_banners_say_what_the_plan_says(lab: NetLab) -> None:
    services = [
        (host, service)
        for host in lab.hosts
        for service in host.services
        if service.plan.kind == ServiceKind.BANNER
    ]
    facts = lab.grab(ServiceKind.BANNER, [(host.address, svc.port) for host, svc in services])
    assert {key: value["banner"] for key, value in facts.items()} == {
        (str(host.address), svc.port): svc.plan.banner for host, svc in services
    }


def test_web_servers_serve_their_titles_and_certificates(lab: NetLab) -> None:
    for kind in (ServiceKind.HTTP, ServiceKind.HTTPS):
        services = [
            (host, service)
            for host in lab.hosts
            for service in host.services
            if service.plan.kind == kind
        ]
        facts = lab.grab(kind, [(host.address, svc.port) for host, svc in services])
        for host, service in services:
            seen = facts[(str(host.address), service.port)]
            assert (seen["status"], seen["server"]) == (200, HTTP_SERVER)
            assert seen["title"] == service.plan.http_title
            if service.certificate is not None:
                assert seen["subject_cn"] == service.certificate.subject_cn
                assert seen["sha256"] == service.certificate.sha256


def test_reverse_names_resolve_inside_the_scanner_namespace_only_from_the_lab(lab: NetLab) -> None:
    portal = lab.host("portal")
    done = lab.run_in_scanner(["getent", "hosts", str(portal.address)])
    assert done.stdout.split() == [str(portal.address), portal.hostname, portal.name]
    done = lab.run_in_scanner(["cat", "/etc/resolv.conf"])
    assert done.stdout.strip() == "nameserver 127.0.0.1"


def test_the_scanner_namespace_has_no_route_out(lab: NetLab) -> None:
    unicast = ["ip", "-4", "-j", "route", "show", "table", "all", "type", "unicast"]
    routes = json.loads(lab.run_in_scanner(unicast).stdout)
    assert [route["dst"] for route in routes] == [str(LAB_SUBNET)]
    ipv6 = lab.run_in_scanner(["ip", "-6", "-j", "route", "show"]).stdout
    assert all(route["dst"].startswith("fe80::") for route in json.loads(ipv6 or "[]"))
    # an address outside the lab fails locally, at once: no packet can leave
    outside = lab.probe([("203.0.113.1", 80)], timeout=5.0)
    assert outside == {("203.0.113.1", 80): "unreachable"}


def _host_namespace_json(*args: str) -> list[dict[str, object]]:
    done = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout or "[]"))


def test_the_lab_is_not_reachable_from_the_host_namespace(lab: NetLab) -> None:
    """Checked from the kernel's tables, without sending a packet from the host namespace."""
    addresses = [
        ip_interface(f"{info['local']}/{info['prefixlen']}")
        for link in _host_namespace_json("-4", "addr", "show")
        for info in link["addr_info"]  # type: ignore[attr-defined]
    ]
    assert not [address for address in addresses if address.ip in LAB_SUBNET]
    for route in _host_namespace_json("-4", "route", "show", "table", "all"):
        destination = str(route["dst"])
        if destination != "default":
            assert not IPv4Network(destination, strict=False).overlaps(LAB_SUBNET), route
    host_links = {str(link["ifname"]) for link in _host_namespace_json("link", "show")}
    lab_links = {
        str(link["ifname"])
        for link in json.loads(
            subprocess.run(
                ["ip", "-n", lab.switch_namespace, "-j", "link", "show"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    }
    assert host_links.isdisjoint(lab_links - {"lo"})
