"""Identification: products, OS and device type from what a host answered (docs/fingerprints.md)."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from surveyor.core import identify as identify_module
from surveyor.core.fingerprint import Service
from surveyor.core.identify import (
    FIELDS,
    Kind,
    RuleError,
    banner_kinds,
    identify,
    identify_service,
    initial_ttl,
    match,
    reason,
    rules,
    service_product,
    stack_text,
)

ALL_RULES = rules()


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.id for r in ALL_RULES])
def test_every_rule_matches_its_examples_and_says_exactly_what_they_claim(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule.examples
    for example in rule.examples:
        found = match(rule.kind, str(example["text"]))
        assert found is not None, example["text"]
        # The rule itself wins, not an earlier rule of its kind, and says nothing more or less.
        assert found.rule == rule.id
        assert dict(found.says) == example["says"]


def test_the_data_files_are_well_formed_and_rule_ids_unique() -> None:
    folder = resources.files("surveyor.core") / "fingerprints"
    files = [item for item in folder.iterdir() if item.name.endswith(".json")]
    assert len(files) >= 6
    count = 0
    for item in files:
        for entry in json.loads(item.read_text("utf-8")):
            count += 1
            assert Kind(entry["kind"])
            assert set(entry) <= {*FIELDS, "id", "kind", "pattern", "confidence", "examples"}
            assert 0 < entry.get("confidence", 0.8) <= 1
            assert "(?i" not in entry["pattern"]
            assert "(?s" not in entry["pattern"]
            # A rule's claims are about something: a product, a system or a device.
            assert {"product", "os", "device_type", "vendor"} & set(entry)
    assert count == len(ALL_RULES) == len({r.id for r in ALL_RULES})
    assert count >= 100


def test_rules_are_dispatched_by_kind_through_one_precompiled_pattern_each() -> None:
    dispatch = identify_module._dispatch()
    assert set(dispatch) == {r.kind for r in ALL_RULES}
    for kind, table in dispatch.items():
        assert isinstance(table.any, re.Pattern)
        assert all(rule.kind is kind for rule in table.rules)
    # A kind's rules are never tried against another kind's text.
    assert match(Kind.HTTP_SERVER, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6") is None


def test_matching_many_banners_stays_cheap() -> None:
    # Not a timing: the work per text is bounded by the cache and one search per kind.
    texts = [f"SSH-2.0-OpenSSH_9.{n % 10}p1 Debian-{n}" for n in range(2000)]
    for text in texts:
        assert match(Kind.SSH, text) is not None
    info = identify_module._find.cache_info()
    assert info.currsize <= info.maxsize


def test_a_bad_rule_file_is_refused() -> None:
    good = {"id": "x", "kind": "ssh", "pattern": "SSH-", "product": "X", "examples": [{}]}
    with pytest.raises(RuleError, match="no example"):
        identify_module._load_file("t.json", [{**good, "examples": []}])
    with pytest.raises(RuleError, match="rule 'x'"):
        identify_module._load_file("t.json", [{**good, "pattern": "("}])
    with pytest.raises(RuleError):
        identify_module._load_file("t.json", [{**good, "colour": "red"}])
    with pytest.raises(RuleError):
        identify_module._load_file("t.json", [{**good, "kind": "gopher"}])


def test_banners_are_read_as_the_protocol_they_look_like() -> None:
    assert banner_kinds("SSH-2.0-OpenSSH_9.8") == (Kind.SSH,)
    assert banner_kinds("220 (vsFTPd 3.0.3)")[:2] == (Kind.SMTP, Kind.FTP)
    assert banner_kinds("+OK Dovecot ready.") == (Kind.POP3,)
    assert banner_kinds("* OK Dovecot ready.") == (Kind.IMAP,)
    assert banner_kinds("RFB 003.008") == (Kind.BANNER,)


def test_debian_ssh_and_an_nginx_header_make_a_debian_12_server() -> None:
    found = identify(
        [
            Service(22, banner="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6"),
            Service(80, http_server="nginx/1.22.1"),
        ]
    )
    assert (found.os, found.os_version, found.os_label) == ("Debian Linux", "12", "Debian Linux 12")
    assert found.os_cpe == "cpe:/o:debian:debian_linux:12"
    assert found.device_type == "server"
    assert 0.8 <= found.os_confidence <= 1
    assert 0 < found.device_confidence < found.os_confidence
    assert found.services is not None
    assert found.services[("tcp", 22)].label == "OpenSSH 9.2p1"
    assert found.services[("tcp", 80)].cpe == "cpe:/a:f5:nginx:1.22.1"
    assert [f.rule for f in found.evidence] == ["openssh-debian-security", "nginx"]


def test_agreeing_evidence_is_surer_than_either_alone() -> None:
    ssh = Service(22, banner="SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6")
    apache = Service(80, http_server="Apache/2.4.52 (Ubuntu)")
    alone = identify([apache])
    both = identify([ssh, apache])
    assert alone.os == both.os == "Ubuntu Linux"
    assert both.os_version == "22.04"
    assert both.os_confidence > alone.os_confidence


def test_disagreeing_evidence_lowers_the_confidence_and_the_heavier_side_wins() -> None:
    debian = Service(22, banner="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6")
    windows_ftp = Service(21, banner="220-FileZilla Server 1.8.2")
    alone = identify([debian])
    mixed = identify([debian, windows_ftp])
    assert mixed.os == "Debian Linux"
    assert mixed.os_confidence < alone.os_confidence


#: A SYN-ACK as Linux sends it through a bridge (window and options as read in the lab).
LINUX_SYN_ACK = stack_text(64, 64240, "M1460,S,T,N,W7")


def test_a_syn_acks_ttl_is_read_as_the_ttl_it_started_from() -> None:
    assert [initial_ttl(ttl) for ttl in (1, 32, 33, 63, 64, 65, 120, 128, 200, 255)] == [
        32, 32, 64, 64, 64, 128, 128, 128, 255, 255,
    ]  # fmt: skip
    assert stack_text(61, 65160, "M1460,S,T,N,W7") == (
        "TTL 64, window 65160, options M1460,S,T,N,W7"
    )


def test_a_stack_hint_alone_names_the_family_weakly_and_says_why() -> None:
    lighttpd = Service(80, http_server="lighttpd/1.4.69")
    without = identify([lighttpd])
    found = identify([lighttpd], stack=LINUX_SYN_ACK)
    assert without.os == ""
    assert found.os == "Linux"
    assert 0 < found.os_confidence < 0.5  # weaker than any banner naming a system
    assert found.os_cpe == ""
    assert found.device_type == "server"
    hint = found.evidence[-1]
    assert hint.kind is Kind.TCP_STACK
    assert hint.port is None
    assert reason(hint) == "Linux family (TTL 64, window 64240), from the TCP/IP stack"
    # the products are what the answers say, the hint adds none
    assert found.services == without.services


def test_a_stack_hint_of_the_same_family_adds_to_a_distribution() -> None:
    debian = Service(22, banner="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6")
    alone = identify([debian])
    hinted = identify([debian], stack=LINUX_SYN_ACK)
    assert (hinted.os, hinted.os_version, hinted.os_cpe) == (alone.os, "12", alone.os_cpe)
    assert alone.os_confidence < hinted.os_confidence <= 1


def test_a_stack_hint_never_outweighs_a_banner_naming_another_system() -> None:
    windows = [Service(80, http_server="Microsoft-IIS/10.0")]
    alone = identify(windows)
    assert alone.os == "Windows"
    hinted = identify(windows, stack=LINUX_SYN_ACK)
    assert hinted.os == "Windows"
    assert 0 < hinted.os_confidence < alone.os_confidence
    # and a keyword alone (confidence 0.3) is not outweighed either
    keyword = [Service(21, banner="220 Welcome to the FreeBSD box")]
    assert identify(keyword).os == identify(keyword, stack=LINUX_SYN_ACK).os == "FreeBSD"
    # the other way round: a Windows stack under a Debian banner
    debian = [Service(22, banner="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6")]
    windows_stack = stack_text(127, 65535, "M1460,N,W8,N,N,S")
    assert identify(debian, stack=windows_stack).os == "Debian Linux"


def test_an_unknown_stack_says_nothing_and_no_stack_changes_nothing() -> None:
    services = [Service(5432, banner="EFATAL")]
    assert identify(services, stack="") == identify(services)
    odd = identify(services, stack=stack_text(255, 4128, "M536"))
    assert odd.os == ""
    assert odd.evidence == identify(services).evidence


def test_snmp_names_the_system_and_the_device() -> None:
    found = identify(
        [Service(161, "udp")],
        snmp={
            "sysDescr": "Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), "
            "Version 15.0(2)SE11, RELEASE SOFTWARE (fc3)",
            "sysObjectID": ".1.3.6.1.4.1.9.1.1208",
        },
    )
    assert (found.os, found.os_version, found.device_type) == (
        "Cisco IOS",
        "15.0(2)SE11",
        "network",
    )
    assert found.os_cpe == "cpe:/o:cisco:ios:15.0(2)SE11"
    assert found.device_confidence > 0.9

    printer = identify(
        [Service(9100)],
        snmp={"sysDescr": "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153"},
    )
    assert printer.device_type == "printer"


def test_a_keyword_names_the_system_when_no_rule_does_and_nothing_names_nothing() -> None:
    found = identify([Service(80, http_server="Foo/1.0 (Debian)")])
    assert found.os == "Debian Linux"
    assert found.os_confidence == identify_module.KEYWORD_CONFIDENCE
    nothing = identify([Service(80, http_server="Foo/1.0")])
    assert (nothing.os, nothing.device_type, nothing.os_confidence) == ("", "", 0.0)
    assert identify([]).os == ""


def test_service_products_keep_the_old_text_and_name_more_servers() -> None:
    # As before: the HTTP Server header, the SSH software and version.
    assert service_product("", "Microsoft-IIS/10.0") == "Microsoft-IIS/10.0"
    assert service_product("SSH-2.0-OpenSSH_9.6p1 Debian-3", "") == "OpenSSH 9.6p1"
    # Newly named: mail, FTP and database greetings.
    assert service_product("220 mx.example.com ESMTP Postfix (Debian/GNU)", "") == "Postfix"
    assert service_product("220 (vsFTPd 3.0.3)", "") == "vsftpd 3.0.3"
    assert service_product("+OK Dovecot (Debian) ready.", "") == "Dovecot"
    assert service_product("5.5.5-10.11.6-MariaDB-0+deb12u1", "") == "MariaDB 10.11.6"
    assert service_product("hello", "") == ""
    assert identify_service(Service(25, banner="220 h ESMTP Exim 4.96 #2")).version == "4.96"


def test_processing_fills_what_the_rules_read_where_the_record_names_nothing() -> None:
    from surveyor.processing.records import parse_host

    banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6"
    seen = parse_host(
        {"type": "host", "addresses": ["127.0.0.9"], "services": [{"port": 22, "banner": banner}]},
        1,
    )
    assert seen.os == "Debian Linux"
    assert seen.details is not None
    assert seen.details.os_version == "12"
    (ssh,) = seen.services
    assert ssh.version == "9.2p1"
    assert ssh.cpe == ("cpe:/a:openbsd:openssh:9.2p1",)

    told = parse_host(
        {
            "type": "host",
            "addresses": ["127.0.0.9"],
            "os": "Windows",
            "services": [{"port": 22, "banner": banner, "version": "1.0", "cpe": []}],
        },
        1,
    )
    assert told.os == "Windows"
    assert told.details is None
    assert told.services[0].version == "1.0"
    assert told.services[0].cpe == ()
