"""The DNS connector against a real BIND started for these tests (surveyor.testing.named)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.connectors.dns import DnsConnector
from surveyor.testing.named import (
    CLOSED_ZONE,
    FORWARD_ZONE,
    KEYED_ZONE,
    REVERSE_ZONE,
    NamedServer,
    running_named,
)

#: Enough hosts that a transfer of the zone takes several messages.
HOSTS = 2000


@pytest.fixture(scope="module")
def named() -> Iterator[NamedServer]:
    with running_named(HOSTS) as server:
        yield server


@pytest.fixture
def connector() -> DnsConnector:
    return DnsConnector()


def tsig_of(named: NamedServer, **changed: str) -> dict[str, str]:
    fields = {
        "tsig_name": named.tsig_name,
        "tsig_algorithm": named.tsig_algorithm,
        "tsig_secret": named.tsig_secret,
    }
    return fields | changed


def config(
    server: str, zones: list[str], credential: dict[str, str] | None = None, timeout: float = 5.0
) -> ConnectorConfig:
    return ConnectorConfig(
        server=server,
        options={"zones": zones},
        credential=credential or {},
        timeout=timeout,
    )


def failure(connector: DnsConnector, run: ConnectorConfig) -> str:
    with pytest.raises(ConnectorError) as caught:
        list(connector.fetch(run))
    return str(caught.value)


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records that carry addresses, by their name."""
    return {record["hostnames"][0]: record for record in records if "addresses" in record}


def test_the_connector_registers_itself_as_dns() -> None:
    assert isinstance(connector_named("dns"), DnsConnector)


def test_a_forward_zone_gives_each_host_its_addresses_and_name(
    named: NamedServer, connector: DnsConnector
) -> None:
    records = list(connector.fetch(config(named.server, [FORWARD_ZONE])))
    found = by_name(records)
    for host in named.hosts:
        record = found[host.fqdn]
        expected = [host.ipv4] + ([host.ipv6] if host.ipv6 else [])
        assert sorted(record["addresses"]) == sorted(expected)
        assert record["source"] == "dns"
        assert record["type"] == "host"
        assert record["attributes"] == {"dns_zone": FORWARD_ZONE}


def test_an_alias_becomes_an_extra_name_of_its_targets_asset(
    named: NamedServer, connector: DnsConnector
) -> None:
    records = list(connector.fetch(config(named.server, [FORWARD_ZONE])))
    for alias, target in named.aliases.items():
        carrying = [r for r in records if alias in r["hostnames"]]
        assert len(carrying) == 1
        assert carrying[0]["hostnames"] == [target, alias]
        assert "addresses" not in carrying[0]


def test_a_reverse_zone_names_each_address(named: NamedServer, connector: DnsConnector) -> None:
    records = list(connector.fetch(config(named.server, [REVERSE_ZONE])))
    by_address = {record["addresses"][0]: record["hostnames"] for record in records}
    assert by_address == {host.ipv4: [host.fqdn] for host in named.hosts}


def test_several_zones_are_read_in_one_run_with_progress(
    named: NamedServer, connector: DnsConnector
) -> None:
    seen: list[tuple[int, int | None]] = []
    records = list(
        connector.fetch(
            config(named.server, [FORWARD_ZONE, REVERSE_ZONE]),
            lambda done, total: seen.append((done, total)),
        )
    )
    zones = {record["attributes"]["dns_zone"] for record in records}
    assert zones == {FORWARD_ZONE, REVERSE_ZONE}
    assert seen[-1] == (len(records), None)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_records_come_out_while_the_transfer_is_still_arriving(
    named: NamedServer, connector: DnsConnector
) -> None:
    events: list[str] = []
    run = config(named.server, [FORWARD_ZONE])
    for _ in connector.fetch(run, lambda done, total: events.append("message")):
        events.append("record")
    first_record = events.index("record")
    assert events.count("message") > 2
    assert "message" in events[first_record:-1]  # more of the zone came after records left


def test_an_unknown_tsig_algorithm_is_named(named: NamedServer, connector: DnsConnector) -> None:
    said = failure(
        connector,
        config(named.server, [KEYED_ZONE], tsig_of(named, tsig_algorithm="hmac-rot13")),
    )
    assert said == f"TSIG key {named.tsig_name} has an unknown algorithm 'hmac-rot13'"


def test_a_stopped_run_returns_before_the_zone_ends(
    named: NamedServer, connector: DnsConnector
) -> None:
    run = config(named.server, [FORWARD_ZONE, REVERSE_ZONE])
    records = connector.fetch(run)
    first = next(records)
    run.stopped.set()
    rest = list(records)
    assert first["source"] == "dns"
    assert len(rest) < 2 * HOSTS


def test_a_keyed_zone_transfers_with_the_tsig_key(
    named: NamedServer, connector: DnsConnector
) -> None:
    records = list(connector.fetch(config(named.server, [KEYED_ZONE], tsig_of(named))))
    names = {name for record in records for name in record["hostnames"]}
    assert {f"{host.name}.{KEYED_ZONE}" for host in named.hosts} <= names
    assert named.tsig_secret not in json.dumps(records)


def test_verify_answers_in_words(named: NamedServer, connector: DnsConnector) -> None:
    said = connector.verify(config(named.server, [FORWARD_ZONE, KEYED_ZONE], tsig_of(named)))
    assert said == (
        f"{named.server} serves and allows the transfer with TSIG key {named.tsig_name} "
        f"of {FORWARD_ZONE} (serial 2026120501), {KEYED_ZONE} (serial 2026120501)"
    )


def test_a_keyed_zone_without_the_key_is_refused(
    named: NamedServer, connector: DnsConnector
) -> None:
    said = failure(connector, config(named.server, [KEYED_ZONE]))
    assert said.startswith(f"{named.server} refused the transfer (AXFR) of zone {KEYED_ZONE}")


def test_a_zone_closed_to_transfers_is_refused_in_fetch_and_verify(
    named: NamedServer, connector: DnsConnector
) -> None:
    run = config(named.server, [CLOSED_ZONE])
    expected = f"{named.server} refused the transfer (AXFR) of zone {CLOSED_ZONE}"
    assert failure(connector, run).startswith(expected)
    with pytest.raises(ConnectorError, match=r"refused the transfer \(AXFR\)"):
        connector.verify(run)


def test_a_zone_the_server_does_not_serve_is_named(
    named: NamedServer, connector: DnsConnector
) -> None:
    said = failure(connector, config(named.server, [FORWARD_ZONE, "nowhere.test"]))
    assert said == (
        f"{named.server} does not serve zone nowhere.test: it answered the SOA query REFUSED"
    )


def test_a_wrong_tsig_secret_is_a_bad_signature_and_never_shown(
    named: NamedServer, connector: DnsConnector
) -> None:
    wrong = "d3Jvbmctc2VjcmV0LW5ldmVyLXNob3duLTAxMjM0NTY3"
    said = failure(connector, config(named.server, [KEYED_ZONE], tsig_of(named, tsig_secret=wrong)))
    assert said == (
        f"{named.server} rejected TSIG key {named.tsig_name} for zone {KEYED_ZONE}: "
        "bad signature: the secret or the algorithm differs"
    )
    assert wrong not in said
    assert named.tsig_secret not in said


def test_an_unknown_tsig_key_name_is_named(named: NamedServer, connector: DnsConnector) -> None:
    said = failure(
        connector, config(named.server, [KEYED_ZONE], tsig_of(named, tsig_name="someone-else"))
    )
    assert said.endswith(
        "rejected TSIG key someone-else for zone keyed.test: the server does not know this key name"
    )
    assert named.tsig_secret not in said


def test_a_secret_that_is_not_base64_is_refused_without_showing_it(
    named: NamedServer, connector: DnsConnector
) -> None:
    said = failure(
        connector, config(named.server, [KEYED_ZONE], tsig_of(named, tsig_secret="not*base64!"))
    )
    assert said == f"the secret of TSIG key {named.tsig_name} is not valid base64"


def test_a_closed_port_is_a_refused_connection(connector: DnsConnector) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said = failure(connector, config(f"127.0.0.1:{port}", [FORWARD_ZONE]))
    assert said == f"connection to 127.0.0.1:{port} refused: no DNS server is listening there"


def test_a_server_that_accepts_and_stalls_times_out(connector: DnsConnector) -> None:
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen()  # the kernel completes the handshake; nothing ever answers
        port = stalled.getsockname()[1]
        said = failure(connector, config(f"127.0.0.1:{port}", [FORWARD_ZONE], timeout=0.5))
    assert said == (
        f"no answer from 127.0.0.1:{port} within 0.5 s during the SOA query of zone {FORWARD_ZONE}"
    )


@pytest.mark.parametrize(
    ("zones", "problem"),
    [
        (None, "'zones' must be a non-empty list of zone names"),
        ([], "'zones' must be a non-empty list of zone names"),
        ("lab.test", "'zones' must be a non-empty list of zone names"),
        (["lab.test", ""], "'zones' item 1 must be a zone name"),
        (["a..b"], "'zones' item 0 ('a..b') is not a DNS name"),
    ],
)
def test_bad_zone_options_are_named(zones: object, problem: str, connector: DnsConnector) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        connector.check_options({"zones": zones})


def test_zone_options_are_normalised(connector: DnsConnector) -> None:
    checked = connector.check_options({"zones": ["Lab.Test.", "lab.test"], "server": "ns:53"})
    assert checked == {"zones": ["lab.test"], "server": "ns:53"}


def test_a_stop_while_the_server_stalls_ends_the_run_without_an_error(
    connector: DnsConnector,
) -> None:
    """The stalled server stops the task once the query arrives; the run then ends quietly
    when its wait runs out, instead of failing with a timeout."""
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen()
        port = stalled.getsockname()[1]
        run = config(f"127.0.0.1:{port}", [FORWARD_ZONE], timeout=1.0)

        def stop_on_first_query() -> None:
            client, _ = stalled.accept()
            with client:
                client.recv(512)
                run.stopped.set()
                client.recv(512)  # holds the connection until the connector gives up

        watcher = threading.Thread(target=stop_on_first_query, daemon=True)
        watcher.start()
        records = list(connector.fetch(run))
        watcher.join()
    assert records == []


def test_the_server_stops_and_leaves_no_folder_behind(connector: DnsConnector) -> None:
    with running_named(3) as server:
        directory, where = server.directory, server.server
        assert connector.verify(config(where, [FORWARD_ZONE])).startswith(where)
    assert not directory.exists()
    said = failure(connector, config(where, [FORWARD_ZONE]))
    assert said == f"connection to {where} refused: no DNS server is listening there"
