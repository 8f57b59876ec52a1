"""The host record extended (SPEC §7): its optional fields checked, bounded and merged."""

from __future__ import annotations

import hashlib
import marshal
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.changes import AssetState, compare, merge_state, state_digest
from surveyor.core.fingerprint import NO_DETAILS, HostDetails, KnownAsset, Observation, Service
from surveyor.core.kinds import kind_of
from surveyor.processing.records import (
    MAX_ATTRIBUTES,
    MAX_TAGS,
    Spool,
    TaskDataError,
    parse_host,
)

FULL: dict[str, Any] = {
    "type": "host",
    "addresses": ["127.0.0.8"],
    "hostnames": ["Files.Corp.Example."],
    "source": "Import:NMAP",
    "mac_vendor": "VMware",
    "os": "Linux 5.0 - 5.14",
    "os_accuracy": 96,
    "os_version": "5.X",
    "device_type": "Router",
    "uptime_seconds": 3600,
    "distance": 2,
    "description": "edge",
    "tags": ["b", "a", "b", ""],
    "attributes": {"ou": "Servers", "count": 3},
    "seen_by": "core-sw1",
    "services": [
        {
            "port": 22,
            "product": "OpenSSH",
            "version": "9.6p1",
            "extrainfo": "protocol 2.0",
            "tunnel": "SSL",
            "cpe": ["cpe:/a:openbsd:openssh:9.6p1", "cpe:/a:openbsd:openssh:9.6p1"],
        }
    ],
}


def test_every_optional_field_is_read_and_normalized() -> None:
    seen = parse_host(FULL, 3)
    assert seen.source == "import:nmap"
    assert seen.hostnames == ("files.corp.example",)
    assert seen.details == HostDetails(
        mac_vendor="VMware",
        os_accuracy=96,
        os_version="5.X",
        device_type="router",
        description="edge",
        tags=("a", "b"),
        attributes=(("count", "3"), ("ou", "Servers")),
        seen_by="core-sw1",
    )
    assert (seen.uptime_seconds, seen.distance) == (3600, 2)
    [ssh] = seen.services
    assert (ssh.version, ssh.extrainfo, ssh.tunnel, ssh.cpe) == (
        "9.6p1",
        "protocol 2.0",
        "ssl",
        ("cpe:/a:openbsd:openssh:9.6p1",),
    )


def test_a_record_without_the_new_fields_is_as_before() -> None:
    seen = parse_host({"type": "host", "addresses": ["127.0.0.8"], "services": [{"port": 22}]}, 1)
    assert (seen.source, seen.details, seen.uptime_seconds, seen.distance) == ("", None, None, None)
    assert seen.services[0][15:] == ("", "", "", ())
    assert seen.lists_services
    assert not parse_host({"type": "host", "addresses": ["127.0.0.8"]}, 1).lists_services


def test_a_record_known_by_name_only_needs_a_name() -> None:
    seen = parse_host({"type": "host", "hostnames": ["pc7.corp.example"]}, 4)
    assert (seen.addresses, seen.hostnames) == ((), ("pc7.corp.example",))
    with pytest.raises(TaskDataError, match=r"line 4: .*address.*host name"):
        parse_host({"type": "host", "hostnames": ["not a name!"]}, 4)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"source": ""}, "'source' must be"),
        ({"source": "x" * 41}, "'source' must be 1-40"),
        ({"source": 7}, "'source' must be text"),
        ({"os_accuracy": 101}, "'os_accuracy' must be a whole number from 0 to 100"),
        ({"os_accuracy": "96"}, "'os_accuracy'"),
        ({"uptime_seconds": -5}, "'uptime_seconds' must be a whole number 0 or more"),
        ({"distance": 1.5}, "'distance'"),
        ({"tags": "prod"}, "'tags' must be a list"),
        ({"tags": [1]}, "'tags[0]' must be text"),
        ({"tags": ["t"] * (MAX_TAGS + 1)}, f"at most {MAX_TAGS}"),
        ({"attributes": ["ou"]}, "'attributes' must be an object"),
        ({"attributes": {"ou": {"a": 1}}}, "'attributes.ou' must be text"),
        ({"attributes": {" ": "x"}}, "empty name"),
        ({"attributes": {str(n): "v" for n in range(MAX_ATTRIBUTES + 1)}}, "at most 50"),
        ({"mac_vendor": 3}, "'mac_vendor' must be text"),
        ({"services": [{"port": 22, "version": 9}]}, "'services[0].version' must be text"),
        ({"services": [{"port": 22, "cpe": "cpe:/a:x"}]}, "'services[0].cpe' must be a list"),
        ({"services": [{"port": 22, "cpe": ["c"] * 21}]}, "services[0].cpe lists 21"),
        ({"tcp_stack": [64, 65160]}, "'tcp_stack' must be an object"),
        ({"tcp_stack": {"ttl": 0, "window": 1}}, "'tcp_stack.ttl' must be a whole number"),
        ({"tcp_stack": {"ttl": 64, "window": 70000}}, "'tcp_stack.window' must be"),
        ({"tcp_stack": {"ttl": 64, "window": 1, "options": "<b>"}}, "'tcp_stack.options'"),
    ],
)
def test_a_bad_optional_field_names_the_line_and_the_field(
    extra: dict[str, Any], problem: str
) -> None:
    with pytest.raises(TaskDataError) as raised:
        parse_host({"type": "host", "addresses": ["127.0.0.8"], **extra}, 9)
    assert raised.value.line == 9
    assert problem in str(raised.value)


def test_a_stack_hint_becomes_an_attribute_and_names_a_family_only_where_nothing_else_does() -> (
    None
):
    syn_ack = {"ttl": 62, "window": 65160, "options": "M1460,S,T,N,W7"}
    lighttpd = {"port": 80, "http": {"status": 200, "server": "lighttpd/1.4.69"}}
    seen = parse_host(
        {"type": "host", "addresses": ["127.0.0.8"], "services": [lighttpd], "tcp_stack": syn_ack},
        1,
    )
    assert seen.os == "Linux"
    assert seen.details is not None
    assert dict(seen.details.attributes) == {
        "TCP stack": "TTL 64, window 65160, options M1460,S,T,N,W7"
    }
    # a record naming its own OS keeps it; the hint is still kept
    named = parse_host(
        {"type": "host", "addresses": ["127.0.0.8"], "os": "FreeBSD", "tcp_stack": syn_ack}, 1
    )
    assert named.os == "FreeBSD"
    assert named.details is not None
    assert "TCP stack" in dict(named.details.attributes)
    # without one, the record reads as it always did
    bare = parse_host({"type": "host", "addresses": ["127.0.0.8"], "services": [lighttpd]}, 1)
    assert (bare.os, bare.details) == ("", None)


def test_long_texts_are_cut_to_their_bounds() -> None:
    seen = parse_host(
        {
            "type": "host",
            "addresses": ["127.0.0.8"],
            "description": "d" * 5000,
            "attributes": {"k" * 500: "v" * 5000},
        },
        1,
    )
    assert seen.details is not None
    assert len(seen.details.description) == 1000
    [(name, value)] = seen.details.attributes
    assert (len(name), len(value)) == (100, 1000)


def test_the_spool_keeps_every_field(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    try:
        plain = parse_host({"type": "host", "addresses": ["127.0.0.9"]}, 2)
        full = parse_host(FULL, 3)
        spool.add(plain)
        spool.add(full)
        spool.finish()
        assert list(spool.read()) == [plain, full]
    finally:
        spool.discard()


def known(**values: Any) -> KnownAsset:
    return KnownAsset(id=1, addresses=("127.0.0.8",), **values)


def test_an_unreported_detail_keeps_the_known_one_and_a_reported_one_replaces_it() -> None:
    before = known(
        os="Linux 5.0 - 5.14",
        details=HostDetails(
            mac_vendor="VMware",
            os_accuracy=96,
            os_version="5.X",
            description="edge",
            tags=("a",),
            attributes=(("ou", "Servers"), ("site", "hq")),
        ),
    )
    answer = Observation(
        addresses=("127.0.0.8",),
        os="Linux 5.0 - 5.14",
        details=HostDetails(description="core", attributes=(("ou", "Routers"),)),
    )
    after = merge_state(before, answer, None)
    assert after.details == HostDetails(
        mac_vendor="VMware",
        os_accuracy=96,
        os_version="5.X",
        description="core",
        tags=("a",),
        attributes=(("ou", "Routers"), ("site", "hq")),
    )
    assert compare(before, after).details == {
        "description": {"before": "edge", "after": "core"},
        "attributes": {
            "before": {"ou": "Servers", "site": "hq"},
            "after": {"ou": "Routers", "site": "hq"},
        },
    }
    # Merging it again changes nothing: a projection.
    again = merge_state(
        KnownAsset(id=1, addresses=after.addresses, os=after.os, details=after.details),
        answer,
        None,
    )
    assert again == after


def test_another_os_brings_its_own_accuracy_and_version() -> None:
    before = known(os="Linux 5.0 - 5.14", details=HostDetails(os_accuracy=96, os_version="5.X"))
    guessed = merge_state(before, Observation(addresses=("127.0.0.8",), os="Windows"), None)
    assert (guessed.os, guessed.details) == ("Windows", NO_DETAILS)
    same = merge_state(before, Observation(addresses=("127.0.0.8",), os="Linux 5.0 - 5.14"), None)
    assert same.details == before.details


def test_a_name_only_answer_keeps_the_addresses_and_a_record_without_services_the_services() -> (
    None
):
    ssh = Service(22, name="ssh")
    before = known(hostnames=("pc7.corp.example",), services=(ssh,))
    answer = Observation(addresses=(), hostnames=("pc7.corp.example",), lists_services=False)
    after = merge_state(before, answer, frozenset({("tcp", 22)}))
    assert after.addresses == ("127.0.0.8",)
    assert after.services == (ssh,)
    listed_none = Observation(addresses=("127.0.0.8",), hostnames=("pc7.corp.example",))
    assert merge_state(before, listed_none, frozenset({("tcp", 22)})).services == ()


def test_a_state_without_details_digests_as_before_details_existed() -> None:
    plain = AssetState(("127.0.0.8",), None, ("a.example",), (), "Linux")
    values = (plain.addresses, plain.mac, plain.hostnames, plain.os, ())
    earlier = hashlib.blake2b(marshal.dumps(values, 0), digest_size=16).hexdigest()
    assert state_digest(plain) == earlier
    tagged = AssetState(("127.0.0.8",), None, ("a.example",), (), "Linux", HostDetails(tags=("x",)))
    assert state_digest(tagged) != state_digest(plain)


def test_each_kind_names_the_source_of_records_that_name_none() -> None:
    assert kind_of("scan").default_source({}) == "scan"
    assert kind_of("import").default_source({}) == "import"
    assert kind_of("connector").default_source({"connector": "ldap"}) == "ldap"
    assert kind_of("scan").scope_from_targets
    assert not kind_of("connector").scope_from_targets
