"""The fingerprint: which asset a host answer is (docs/inventory.md), as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.fingerprint import (
    FingerprintError,
    KnownAsset,
    MacUse,
    MacVerdict,
    MatchReason,
    Observation,
    Service,
    address_key,
    answers_every_port,
    guess_os,
    identity_names,
    judge_mac,
    match,
    merge_observations,
    normalize_address,
    normalize_hostname,
    normalize_mac,
    primary_address,
    product_from,
    service_name,
    service_signature,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SSH = Service(22, name="ssh", banner="SSH-2.0-OpenSSH_9.6")
HTTP = Service(80, name="http")
HTTPS = Service(443, name="https", tls_sha256="ab" * 32)
SMB = Service(445, name="smb")
RDP = Service(3389, name="rdp")


def known(asset_id: int, *addresses: str, **values: object) -> KnownAsset:
    values.setdefault("last_seen", T0)
    return KnownAsset(id=asset_id, addresses=addresses, **values)  # type: ignore[arg-type]


def seen(*addresses: str, **values: object) -> Observation:
    return Observation(addresses=addresses, **values)  # type: ignore[arg-type]


def test_a_host_that_changed_its_address_but_kept_its_mac_is_the_same_asset() -> None:
    laptop = known(1, "127.0.0.5", mac="00:11:22:33:44:55")
    found = match(seen("127.0.0.77", mac="00:11:22:33:44:55"), [laptop])
    assert found is not None
    assert found.asset.id == 1
    assert found.reason is MatchReason.MAC


def test_the_mac_wins_over_an_other_asset_at_the_same_address() -> None:
    old_holder = known(1, "127.0.0.5", services=(SSH,))
    moved = known(2, "127.0.0.9", mac="00:11:22:33:44:55")
    found = match(seen("127.0.0.5", mac="00:11:22:33:44:55", services=(SSH,)), [old_holder, moved])
    assert found is not None
    assert found.asset.id == 2


def test_two_different_macs_at_one_address_are_two_assets() -> None:
    """DHCP handed the address to another device: the MACs say so."""
    previous = known(1, "127.0.0.5", mac="00:11:22:33:44:55", services=(SSH,))
    assert match(seen("127.0.0.5", mac="66:77:88:99:aa:bb", services=(SSH,)), [previous]) is None


def test_without_a_mac_a_shared_address_is_the_same_asset() -> None:
    server = known(1, "127.0.0.5", services=(SSH, HTTP))
    found = match(seen("127.0.0.5", services=(SSH,)), [server])
    assert found is not None
    assert found.asset.id == 1
    assert "address" in found.evidence


def test_a_changed_service_list_alone_does_not_split_an_asset() -> None:
    server = known(1, "127.0.0.5", services=(SSH,))
    found = match(seen("127.0.0.5", services=(HTTP,)), [server])
    assert found is not None


def test_a_different_name_at_a_shared_address_is_a_new_asset() -> None:
    """DHCP churn without MACs: another machine now answers at the address."""
    alice = known(1, "127.0.0.5", hostnames=("alice-pc.corp.example",), services=(SMB,))
    assert match(seen("127.0.0.5", hostnames=("bob-mac.corp.example",)), [alice]) is None


def test_a_host_that_moved_keeps_its_asset_through_its_name() -> None:
    alice = known(1, "127.0.0.5", hostnames=("alice-pc.corp.example",), services=(SMB, RDP))
    found = match(
        seen("127.0.0.42", hostnames=("alice-pc.corp.example",), services=(SMB, RDP)), [alice]
    )
    assert found is not None
    assert found.asset.id == 1
    assert set(found.evidence) >= {"name", "services"}


def test_names_spelled_from_the_address_are_no_evidence() -> None:
    previous = known(1, "127.0.0.5", hostnames=("host-127-0-0-5.dhcp.example",))
    assert identity_names(previous.hostnames, previous.addresses) == frozenset()
    newcomer = seen("127.0.0.6", hostnames=("host-127-0-0-5.dhcp.example",))
    assert match(newcomer, [previous]) is None
    reverse = identity_names(["5.0.0.127.in-addr.example"], ["127.0.0.5"])
    assert reverse == frozenset()


def test_localhost_identifies_nothing() -> None:
    one = known(1, "127.0.0.5", hostnames=("localhost",))
    assert match(seen("127.0.0.9", hostnames=("localhost",)), [one]) is None


def test_a_shared_tls_certificate_follows_a_host_to_a_new_address() -> None:
    web = known(1, "127.0.0.5", services=(HTTPS,))
    found = match(seen("127.0.0.50", services=(HTTPS,)), [web])
    assert found is not None
    assert "certificate" in found.evidence


def test_an_asset_claimed_by_an_earlier_answer_is_not_a_candidate() -> None:
    claimed = known(1, "127.0.0.5", mac="00:11:22:33:44:55", claimed=True)
    assert match(seen("127.0.0.5", mac="00:11:22:33:44:55"), [claimed]) is None


def test_ties_go_to_the_asset_seen_last_then_to_the_oldest() -> None:
    older = known(1, "127.0.0.5", last_seen=T0 - timedelta(days=1))
    newer = known(2, "127.0.0.5", last_seen=T0)
    twin = known(3, "127.0.0.5", last_seen=T0)
    found = match(seen("127.0.0.5"), [older, twin, newer])
    assert found is not None
    assert found.asset.id == 2


@given(st.permutations([1, 2, 3, 4]))
def test_the_choice_does_not_depend_on_the_order_of_candidates(order: list[int]) -> None:
    pool = {
        1: known(1, "127.0.0.5", last_seen=T0 - timedelta(hours=1)),
        2: known(2, "127.0.0.5", services=(SSH,), last_seen=T0 - timedelta(hours=2)),
        3: known(3, "127.0.0.6", hostnames=("db.example",), services=(SSH,)),
        4: known(4, "127.0.0.5", mac="00:00:00:00:00:01"),
    }
    found = match(seen("127.0.0.5", services=(SSH,)), [pool[i] for i in order])
    assert found is not None
    assert found.asset.id == 2


def test_mac_addresses_are_read_in_every_common_spelling() -> None:
    for spelling in ("00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e", "001a2b3c4d5e"):
        assert normalize_mac(spelling) == "00:1a:2b:3c:4d:5e"
    with pytest.raises(FingerprintError):
        normalize_mac("00:1a:2b:3c:4d")


def test_addresses_and_names_are_normalized() -> None:
    assert normalize_address(" 2001:DB8:0:0::1 ") == "2001:db8::1"
    assert normalize_hostname("Web-01.Example.COM.") == "web-01.example.com"
    with pytest.raises(FingerprintError):
        normalize_address("127.0.0.256")
    with pytest.raises(FingerprintError):
        normalize_hostname("not a name")


@given(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 2**128 - 1).map(lambda n: -n - 1)))
def test_address_keys_sort_like_the_addresses(numbers: list[int]) -> None:
    addresses = [str(IPv4Address(n)) if n >= 0 else str(IPv6Address(-n - 1)) for n in numbers]
    by_key = sorted(addresses, key=address_key)

    def numeric(a: str) -> tuple[int, int]:
        return (4, int(IPv4Address(a))) if "." in a else (6, int(IPv6Address(a)))

    assert by_key == sorted(addresses, key=numeric)


def test_an_asset_is_listed_by_its_lowest_ipv4_address() -> None:
    assert primary_address(["fe80::1", "127.0.0.9", "127.0.0.10"]) == "127.0.0.9"
    assert primary_address(["fe80::2", "fe80::1"]) == "fe80::1"


def test_a_device_open_on_nearly_every_probed_port_is_bogus() -> None:
    tarpit = seen("127.0.0.5", services=tuple(Service(p) for p in range(1, 96)))
    assert answers_every_port(tarpit, probed_ports=100)
    assert not answers_every_port(tarpit, probed_ports=None)
    busy_server = seen("127.0.0.5", services=tuple(Service(p) for p in range(1, 40)))
    assert not answers_every_port(busy_server, probed_ports=100)
    assert not answers_every_port(seen("127.0.0.5", services=(SSH,)), probed_ports=3)


def test_a_mac_on_many_records_with_one_face_is_one_device_answering_for_all() -> None:
    assert judge_mac(MacUse(3, one_face=True)) is MacVerdict.IDENTITY
    assert judge_mac(MacUse(40, one_face=True)) is MacVerdict.BOGUS
    assert judge_mac(MacUse(40, one_face=False)) is MacVerdict.NOT_IDENTITY
    assert service_signature([HTTP]) == service_signature([Service(80, name="http")])
    assert service_signature([HTTP]) != service_signature([SSH])


def test_records_of_one_mac_merge_into_one_host() -> None:
    merged = merge_observations(
        [
            seen("127.0.0.5", mac="00:11:22:33:44:55", services=(SSH,), line=3),
            seen("fe80::5", mac="00:11:22:33:44:55", hostnames=("db",), services=(HTTP,), line=9),
        ]
    )
    assert merged.addresses == ("127.0.0.5", "fe80::5")
    assert merged.hostnames == ("db",)
    assert [s.port for s in merged.services] == [22, 80]
    assert merged.line == 3


def test_services_are_named_by_what_they_said_first() -> None:
    assert service_name(2222, banner="SSH-2.0-dropbear", has_http=False, has_tls=False) == "ssh"
    assert service_name(8000, banner="", has_http=True, has_tls=True) == "https"
    assert service_name(25, banner="220 mx ESMTP Postfix", has_http=False, has_tls=False) == "smtp"
    assert service_name(9999, banner="", has_http=False, has_tls=True) == "tls"
    assert service_name(3389, banner="", has_http=False, has_tls=False) == "rdp"
    assert service_name(3389, banner="", has_http=False, has_tls=False, proto="udp") == ""


def test_products_and_operating_systems_are_read_from_banners() -> None:
    assert product_from("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", "") == "OpenSSH 8.9p1"
    assert product_from("", "nginx/1.24.0") == "nginx/1.24.0"
    assert guess_os([Service(22, banner="SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6")]) == (
        "Ubuntu Linux"
    )
    assert guess_os([Service(80, http_server="Microsoft-IIS/10.0")]) == "Windows"
    assert guess_os([HTTP]) == ""
