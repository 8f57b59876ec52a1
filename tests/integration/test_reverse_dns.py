"""The scan's reverse lookups against a real DNS server on loopback (`testing.ptr_server`).

Only the server on 127.0.0.1 is asked; the scans here target 127.79.0.0/24 (SPEC §14).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from surveyor.core.scan_params import validate_scan_params
from surveyor.scan import run_scan
from surveyor.scan.probes.reverse_dns import (
    UNREACHABLE_AFTER,
    DnsSource,
    ReverseLookups,
    lookups_for,
    parse_dns_server,
    read_hosts_file,
)
from surveyor.scan.rtt import TimeoutBounds
from surveyor.scan.settings import ScanSettings
from surveyor.testing.ptr_server import Faults, PtrServer, ptr_name

#: generous: a lookup here ends in well under a second unless something is wrong
WAIT = 60.0
NETWORK = "127.79.0.0/24"


@pytest.fixture
def lookups() -> Iterator[list[ReverseLookups]]:
    """Every ReverseLookups a test makes is closed after it."""
    made: list[ReverseLookups] = []
    yield made
    for each in made:
        each.close()


def names_of(lookups: ReverseLookups, addresses: list[str]) -> dict[str, list[str]]:
    futures = {address: lookups.lookup(address) for address in addresses}
    return {address: future.result(timeout=WAIT) for address, future in futures.items()}


def addresses(network: str = NETWORK) -> list[str]:
    return [str(address) for address in ipaddress.IPv4Network(network)]


def test_every_answered_address_gets_the_servers_name_despite_delays_and_drops(
    lookups: list[ReverseLookups],
) -> None:
    faults = Faults(delay_every=10, delay=0.5, drop_first_every=20, silent_every=50)
    with PtrServer(NETWORK, faults=faults) as server:
        # 5 s a lookup: the 0.5 s delays and the resends fit well inside it on a busy machine
        reverse = ReverseLookups(DnsSource([server.address]), timeout=5.0, concurrency=32)
        lookups.append(reverse)
        found = names_of(reverse, addresses())
        expected = server.expected()
        asked = server.stats.asked
    assert {address: names for address, names in found.items() if names} == {
        address: [name] for address, name in expected.items()
    }
    never = set(addresses()) - expected.keys()
    assert len(never) == 5
    assert all(found[address] == [] for address in never)
    # a dropped first query was sent again and answered
    dropped = addresses()[10]  # the 11th address: every 20th, from the 11th on, loses its first
    assert found[dropped] == [ptr_name(dropped, "rdns-test.test")]
    assert asked[ipaddress.ip_address(dropped).reverse_pointer] >= 2


def test_an_address_is_asked_once_per_scan(lookups: list[ReverseLookups]) -> None:
    with PtrServer(NETWORK) as server:
        reverse = ReverseLookups(DnsSource([server.address]), timeout=2.0, concurrency=4)
        lookups.append(reverse)
        first = names_of(reverse, ["127.79.0.7", "127.79.0.7", "127.79.0.8"])
        again = names_of(reverse, ["127.79.0.7"])
        queries = server.stats.queries
    assert first["127.79.0.7"] == again["127.79.0.7"] == ["host-0-7.rdns-test.test"]
    assert queries == 2


def test_no_more_lookups_are_in_flight_than_the_concurrency_allows(
    lookups: list[ReverseLookups],
) -> None:
    slow = Faults(delay_every=1, delay=0.3)  # every answer waits, so lookups pile up
    with PtrServer(NETWORK, faults=slow) as server:
        reverse = ReverseLookups(DnsSource([server.address]), timeout=5.0, concurrency=8)
        lookups.append(reverse)
        found = names_of(reverse, addresses()[:60])
        most = server.stats.most_outstanding
    assert all(names for names in found.values())
    # each lookup may have a resent copy outstanding too, never more lookups than 8
    assert 1 <= most <= 16


def test_the_budget_ends_every_open_lookup_with_no_names(lookups: list[ReverseLookups]) -> None:
    with PtrServer(NETWORK, faults=Faults(silent=True)) as server:
        # a lookup alone would wait an hour: only the budget can end them
        reverse = ReverseLookups(DnsSource([server.address]), timeout=3600.0, concurrency=64)
        lookups.append(reverse)
        futures = [reverse.lookup(address) for address in addresses()[:20]]
        reverse.expire_after(0.2)
        assert [future.result(timeout=WAIT) for future in futures] == [[]] * 20
        # after the budget, a new lookup answers at once, without asking
        queries = server.stats.queries
        assert reverse.lookup("127.79.0.200").result(timeout=WAIT) == []
        assert server.stats.queries == queries


def test_an_unreachable_server_is_given_up_on(lookups: list[ReverseLookups]) -> None:
    with PtrServer(NETWORK, faults=Faults(silent=True)) as server:
        reverse = ReverseLookups(DnsSource([server.address]), timeout=0.2, concurrency=64)
        lookups.append(reverse)
        first = names_of(reverse, addresses()[:UNREACHABLE_AFTER])
        queries = server.stats.queries
        later = names_of(reverse, addresses()[UNREACHABLE_AFTER : UNREACHABLE_AFTER + 50])
        assert server.stats.queries == queries
    assert all(names == [] for names in [*first.values(), *later.values()])


def test_the_hosts_file_answers_before_dns(lookups: list[ReverseLookups], tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# comment\n127.79.0.5 Router.Lab router # trailing\n127.79.0.5 later-line\nbad line\n"
    )
    assert read_hosts_file(hosts) == {"127.79.0.5": ["Router.Lab", "router"]}
    with PtrServer(NETWORK) as server:
        reverse = lookups_for(
            None,
            servers=[server.address],
            timeout=2.0,
            concurrency=4,
            threads=1,
            hosts_file=hosts,
        )
        lookups.append(reverse)
        found = names_of(reverse, ["127.79.0.5", "127.79.0.6"])
        queries = server.stats.queries
    assert found == {
        "127.79.0.5": ["router.lab", "router"],
        "127.79.0.6": ["host-0-6.rdns-test.test"],
    }
    assert queries == 1


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("127.0.0.153", ("127.0.0.153", 53)),
        (" 127.0.0.1:5353 ", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5300", ("::1", 5300)),
    ],
)
def test_name_servers_are_given_as_address_and_optional_port(
    given: str, parsed: tuple[str, int]
) -> None:
    assert parse_dns_server(given) == parsed


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("ns.example", "is not a name server address"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:dns", "the port must be a number from 1 to 65535"),
        ("[::1]5300", "expected [IPV6]:PORT"),
    ],
)
def test_a_malformed_name_server_is_refused_with_a_reason(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_dns_server(given)


def scan_names(settings: ScanSettings, targets: str) -> dict[str, list[str]]:
    params = validate_scan_params(
        {"targets": targets, "tcp_ports": "9", "probes": "rdns", "host_ping": False},
        default_targets="",
        default_excludes="",
        scope_cap=65536,
    )
    return {
        record["addresses"][0]: record["hostnames"]
        for record in run_scan(params, settings=settings)
        if record["type"] == "host"
    }


FAST = TimeoutBounds(initial=0.5, minimum=0.1, maximum=1.0)


def test_a_scan_names_its_hosts_through_the_configured_servers() -> None:
    with PtrServer(NETWORK) as server:
        settings = ScanSettings(timeouts=FAST, dns_servers=(server.address,))
        found = scan_names(settings, "127.79.0.1-4")
    assert found == {f"127.79.0.{n}": [f"host-0-{n}.rdns-test.test"] for n in range(1, 5)}


def test_a_scan_waits_no_longer_than_its_budget_for_names() -> None:
    with PtrServer(NETWORK, faults=Faults(silent=True)) as server:
        # each lookup alone could wait an hour; the budget ends them once the ports are done
        settings = ScanSettings(
            timeouts=FAST, dns_servers=(server.address,), rdns_timeout=3600.0, rdns_budget=0.3
        )
        found = scan_names(settings, "127.79.0.1-4")
    assert found == {f"127.79.0.{n}": [] for n in range(1, 5)}
