"""The LDAP connector against a real slapd: what it maps, how it pages, TLS, and every fault a
user must be able to act on, never showing the password."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.connectors.ldap import CONNECTOR
from surveyor.scan.taskdata import encode_record
from surveyor.testing.slapd import SlapdServer, generate_computers
from tests.support.explorer_processes import closed_loopback_port
from tests.support.ldap import LAB_COMPUTER_COUNT, dns_server, ldap_config, silent_server

TRUTH = {computer.dns_host_name: computer for computer in generate_computers(LAB_COMPUTER_COUNT)}


def fetch_all(config: ConnectorConfig) -> list[dict[str, Any]]:
    return list(CONNECTOR.fetch(config))


def failure(config: ConnectorConfig, *, verify: bool = False) -> str:
    run = CONNECTOR.verify if verify else fetch_all
    with pytest.raises(ConnectorError) as caught:
        run(config)
    return str(caught.value)


def test_the_connector_is_registered_by_name() -> None:
    assert connector_named("ldap") is CONNECTOR
    assert CONNECTOR.credential_kind == "ldap"


def test_every_computer_becomes_a_host_record_with_its_directory_fields(
    slapd: SlapdServer,
) -> None:
    records = fetch_all(ldap_config(slapd))

    assert len(records) == LAB_COMPUTER_COUNT
    by_name = {record["hostnames"][0]: record for record in records}
    assert set(by_name) == set(TRUTH)
    for name in ("host000000.lab.test", "host000049.lab.test", "host000009.lab.test"):
        computer, record = TRUTH[name], by_name[name]
        expected: dict[str, Any] = {
            "type": "host",
            "source": "ldap",
            "hostnames": [name],
            "os": computer.operating_system,
            "os_version": computer.operating_system_version,
            "attributes": {"dn": computer.dn, "ou": computer.ou},
        }
        if computer.description is not None:
            expected["description"] = computer.description
        if computer.last_logon is not None:
            expected["attributes"]["last_logon"] = computer.last_logon.isoformat().replace(
                "+00:00", "Z"
            )
        assert record == expected
    assert "description" not in by_name["host000009.lab.test"]
    assert "last_logon" not in by_name["host000049.lab.test"]["attributes"]
    assert by_name["host000002.lab.test"]["attributes"]["ou"] == "ou=Paris,ou=Workstations"


def test_more_computers_than_a_page_arrive_over_several_pages_with_progress(
    slapd: SlapdServer,
) -> None:
    seen: list[tuple[int, int | None]] = []
    records = list(
        CONNECTOR.fetch(ldap_config(slapd), lambda done, total: seen.append((done, total)))
    )

    assert len(records) == LAB_COMPUTER_COUNT
    assert [done for done, _ in seen] == [500, 1000, LAB_COMPUTER_COUNT]


def test_the_base_dn_and_filter_choose_which_computers(slapd: SlapdServer) -> None:
    paris = fetch_all(ldap_config(slapd, base_dn="ou=Paris,ou=Workstations,dc=lab"))
    servers = fetch_all(ldap_config(slapd, filter="(operatingSystem=Windows Server*)"))

    assert {r["attributes"]["ou"] for r in paris} == {"ou=Paris,ou=Workstations"}
    assert len(paris) == len([c for c in TRUTH.values() if c.ou.startswith("ou=Paris")])
    assert {r["os"] for r in servers} == {"Windows Server 2022 Standard"}
    assert len(servers) == len(
        [c for c in TRUTH.values() if c.operating_system == "Windows Server 2022 Standard"]
    )


def test_the_service_account_binds_in_every_tls_mode(slapd: SlapdServer) -> None:
    plain = CONNECTOR.verify(ldap_config(slapd))
    starttls = CONNECTOR.verify(ldap_config(slapd, tls="starttls", ca_file=str(slapd.ca_file)))
    ldaps = CONNECTOR.verify(
        ldap_config(slapd, server=slapd.ldaps_server, tls="ldaps", ca_file=str(slapd.ca_file))
    )

    assert plain == f"bound as cn=svc,dc=lab to {slapd.server}"
    assert starttls == f"bound as cn=svc,dc=lab to {slapd.server} over starttls"
    assert ldaps == f"bound as cn=svc,dc=lab to {slapd.ldaps_server} over ldaps"


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_computers_come_through_tls_verified_against_the_ca(slapd: SlapdServer, tls: str) -> None:
    server = slapd.ldaps_server if tls == "ldaps" else slapd.server
    config = ldap_config(
        slapd, server=server, tls=tls, ca_file=str(slapd.ca_file), filter="(cn=HOST00000*)"
    )

    records = fetch_all(config)

    assert sorted(r["hostnames"][0] for r in records) == [
        f"host00000{n}.lab.test" for n in range(10)
    ]


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_a_certificate_from_another_ca_fails_verification(slapd: SlapdServer, tls: str) -> None:
    server = slapd.ldaps_server if tls == "ldaps" else slapd.server
    config = ldap_config(slapd, server=server, tls=tls, ca_file=str(slapd.other_ca_file))

    message = failure(config)

    assert message.startswith(f"TLS with {server} failed: the server's certificate could not")
    assert "(self-signed certificate in certificate chain); check ca_file" in message


def test_tls_to_a_port_that_speaks_plain_ldap_fails_naming_tls(slapd: SlapdServer) -> None:
    message = failure(ldap_config(slapd, tls="ldaps", ca_file=str(slapd.ca_file)))

    assert message.startswith(f"TLS with {slapd.server} failed: ")
    assert message.endswith("; does that port speak TLS? (ldaps is usually 636, starttls 389)")


def test_a_ca_file_that_cannot_be_read_is_named(slapd: SlapdServer) -> None:
    missing = slapd.directory / "no-such-ca.pem"

    message = failure(ldap_config(slapd, tls="starttls", ca_file=str(missing)))

    assert message.startswith(f"TLS with {slapd.server} not tried: ca_file {missing} cannot")


def test_a_wrong_password_is_reported_as_invalid_credentials(slapd: SlapdServer) -> None:
    wrong = "wrong-pw-5d1e8a0b"

    verified = failure(ldap_config(slapd, password=wrong), verify=True)
    fetched = failure(ldap_config(slapd, password=wrong))

    expected = f"bind as cn=svc,dc=lab to {slapd.server} failed: invalid credentials"
    assert verified == expected
    assert fetched == expected


def test_a_refused_connection_names_the_server() -> None:
    port = closed_loopback_port()
    config = ConnectorConfig(
        server=f"127.0.0.1:{port}",
        options={"base_dn": "dc=lab"},
        credential={"bind_dn": "cn=svc,dc=lab", "password": "refused-pw-0c9d"},
    )

    assert failure(config) == f"cannot connect to LDAP server 127.0.0.1:{port}: connection refused"


def test_a_server_that_accepts_and_stalls_times_out(slapd: SlapdServer) -> None:
    with silent_server() as silent:
        port = silent.port
        message = failure(ldap_config(slapd, server=f"127.0.0.2:{port}", timeout=0.5))

    assert message == f"LDAP server 127.0.0.2:{port} did not answer within 0.5 s (timeout)"


@pytest.mark.parametrize("base", ["dc=elsewhere", "ou=loop,dc=elsewhere"])
def test_a_referral_loop_fails_instead_of_going_round(slapd: SlapdServer, base: str) -> None:
    message = failure(ldap_config(slapd, base_dn=base))

    assert message.startswith(
        f"referral loop at LDAP server {slapd.server}: ou=loop,dc=elsewhere refers back to "
        f"ou=loop,dc=elsewhere (ldap://{slapd.server}/ou=loop,dc=elsewhere"
    )


def test_a_base_dn_that_does_not_exist_is_named_with_the_nearest_entry(
    slapd: SlapdServer,
) -> None:
    message = failure(ldap_config(slapd, base_dn="ou=Nowhere,dc=lab"))

    assert message == (
        f"base DN ou=Nowhere,dc=lab does not exist on LDAP server {slapd.server} "
        "(the nearest entry that exists is dc=lab)"
    )


def test_bad_options_are_refused_before_connecting(slapd: SlapdServer) -> None:
    assert "tls must be one of none, starttls, ldaps" in failure(ldap_config(slapd, tls="ssl"))
    assert "not a valid LDAP filter" in failure(ldap_config(slapd, filter="(cn=x"))
    assert "unknown ldap option 'zones'" in failure(ldap_config(slapd, zones=["lab"]))
    assert CONNECTOR.check_options({"base_dn": "dc=lab"}) == {
        "base_dn": "dc=lab",
        "filter": "(objectClass=computer)",
        "tls": "none",
        "ca_file": None,
        "resolve": False,
        "dns_server": None,
    }


def test_a_stop_ends_the_fetch_promptly_without_an_error(slapd: SlapdServer) -> None:
    stopped = threading.Event()
    config = ldap_config(slapd, stopped=stopped)
    records: list[dict[str, Any]] = []

    def stop_after_first_page(done: int, total: int | None) -> None:
        stopped.set()

    records = list(CONNECTOR.fetch(config, stop_after_first_page))

    assert len(records) == 500


def test_a_stop_while_the_server_stalls_ends_the_fetch(slapd: SlapdServer) -> None:
    stopped = threading.Event()
    with silent_server() as silent:
        port = silent.port
        config = ldap_config(slapd, server=f"127.0.0.2:{port}", timeout=60, stopped=stopped)
        fetching = CONNECTOR.fetch(config)
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(_drain(fetching)), daemon=True)
        thread.start()
        assert silent.connected.wait(timeout=30)
        stopped.set()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert result == [[]]


def _drain(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]] | ConnectorError:
    try:
        return list(records)
    except ConnectorError as exc:
        return exc


def test_names_resolve_through_the_dns_server_given_and_the_rest_stay_names(
    slapd: SlapdServer,
) -> None:
    answers = {"host000001.lab.test": "127.0.10.1", "host000003.lab.test": "127.0.10.3"}
    with dns_server(answers) as server:
        config = ldap_config(slapd, filter="(cn=HOST00000*)", resolve=True, dns_server=server)
        records = fetch_all(config)

    by_name = {record["hostnames"][0]: record for record in records}
    assert by_name["host000001.lab.test"]["addresses"] == ["127.0.10.1"]
    assert by_name["host000003.lab.test"]["addresses"] == ["127.0.10.3"]
    assert "addresses" not in by_name["host000002.lab.test"]
    assert len(records) == 10


def test_a_dns_server_that_never_answers_leaves_names_without_addresses(
    slapd: SlapdServer,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent_dns:
        silent_dns.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{silent_dns.getsockname()[1]}"
        config = ldap_config(
            slapd, filter="(cn=HOST0000*)", resolve=True, dns_server=server, timeout=1.0
        )
        records = fetch_all(config)

    assert len(records) == 100
    assert all("addresses" not in record for record in records)


def test_no_error_or_record_ever_contains_the_password(slapd: SlapdServer) -> None:
    secret = slapd.password
    messages = [
        failure(ldap_config(slapd, password=secret + "x")),
        failure(ldap_config(slapd, password=secret + "x"), verify=True),
        failure(ldap_config(slapd, base_dn="dc=elsewhere")),
        failure(ldap_config(slapd, base_dn="ou=Nowhere,dc=lab")),
        failure(ldap_config(slapd, tls="starttls", ca_file=str(slapd.other_ca_file))),
        failure(ldap_config(slapd, server=f"127.0.0.1:{closed_loopback_port()}", password=secret)),
    ]
    with silent_server() as silent:
        port = silent.port
        messages.append(failure(ldap_config(slapd, server=f"127.0.0.2:{port}", timeout=0.3)))
    records = fetch_all(ldap_config(slapd))

    assert len(records) == LAB_COMPUTER_COUNT
    assert all(secret not in message for message in messages)
    assert secret not in json.dumps(records)
    assert secret not in repr(ldap_config(slapd))


# The fast path (`fetch_lines`, which the console's runner writes: records encoded straight
# from the wire) against the generic one (`fetch`: a dictionary per record, encoded by
# `encode_record`), on the same directory.


def _lines(config: ConnectorConfig) -> tuple[list[bytes], list[int]]:
    """The lines `fetch_lines` hands over, one by one, and the count it gave each batch."""
    batches = list(CONNECTOR.fetch_lines(config))
    lines = b"".join(batch for batch, _ in batches).splitlines(keepends=True)
    return lines, [count for _, count in batches]


def _generic(config: ConnectorConfig) -> list[bytes]:
    return [encode_record(record) for record in CONNECTOR.fetch(config)]


def test_the_fast_path_writes_the_generic_paths_bytes_for_every_computer_of_slapd(
    slapd: SlapdServer,
) -> None:
    fast, counts = _lines(ldap_config(slapd))
    generic = _generic(ldap_config(slapd))

    assert len(generic) == LAB_COMPUTER_COUNT
    assert fast == generic
    assert sum(counts) == LAB_COMPUTER_COUNT
    assert len(counts) > 2  # a batch a page: more computers than two pages
    names = {json.loads(line)["hostnames"][0] for line in fast}
    assert len(names) == LAB_COMPUTER_COUNT


def test_the_fast_path_follows_the_filter_and_resolves_names_as_the_generic_path(
    slapd: SlapdServer,
) -> None:
    answers = {"host000001.lab.test": "127.0.10.1", "host000003.lab.test": "127.0.10.3"}
    with dns_server(answers) as server:
        config = ldap_config(slapd, filter="(cn=HOST00000*)", resolve=True, dns_server=server)
        fast, counts = _lines(config)
        generic = _generic(config)

    assert fast == generic
    assert counts == [10]
    records = [json.loads(line) for line in fast]
    assert [r["addresses"] for r in records if "addresses" in r] == [
        ["127.0.10.1"],
        ["127.0.10.3"],
    ]
