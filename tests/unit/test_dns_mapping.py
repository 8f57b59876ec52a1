"""How the DNS connector turns the records of a zone transfer into host records."""

from __future__ import annotations

from typing import Any

import dns.rrset

from surveyor.connectors.dns import ZoneMapper


def mapped(zone: str, *lines: tuple[str, str, str]) -> list[dict[str, Any]]:
    mapper = ZoneMapper(zone)
    records: list[dict[str, Any]] = []
    for name, rdtype, *data in lines:
        records.extend(mapper.add(dns.rrset.from_text(name, 300, "IN", rdtype, *data)))
    records.extend(mapper.finish())
    return records


def test_address_records_of_one_name_make_one_host() -> None:
    records = mapped(
        "lab.example",
        ("a.lab.example.", "A", "10.0.0.1"),
        ("a.lab.example.", "AAAA", "FD00:0::1"),
        ("a.lab.example.", "MX", "10 mail.lab.example."),
        ("b.lab.example.", "A", "10.0.0.2"),
    )
    assert [(r["hostnames"], r["addresses"]) for r in records] == [
        (["a.lab.example"], ["10.0.0.1", "fd00::1"]),
        (["b.lab.example"], ["10.0.0.2"]),
    ]


def test_a_round_robin_name_keeps_all_its_addresses() -> None:
    records = mapped("lab.example", ("web.lab.example.", "A", "10.0.0.1", "10.0.0.2"))
    assert sorted(records[0]["addresses"]) == ["10.0.0.1", "10.0.0.2"]


def test_wildcards_and_other_types_name_no_host() -> None:
    records = mapped(
        "lab.example",
        ("*.lab.example.", "A", "10.0.0.9"),
        ("lab.example.", "NS", "ns.lab.example."),
        ("lab.example.", "TXT", '"hello"'),
    )
    assert records == []


def test_aliases_of_one_target_come_together_after_the_zone() -> None:
    records = mapped(
        "lab.example",
        ("www.lab.example.", "CNAME", "a.lab.example."),
        ("a.lab.example.", "A", "10.0.0.1"),
        ("Files.lab.example.", "CNAME", "a.lab.example."),
        ("cdn.lab.example.", "CNAME", "edge.provider.example."),
    )
    assert [r["hostnames"] for r in records] == [
        ["a.lab.example"],
        ["a.lab.example", "files.lab.example", "www.lab.example"],
        ["edge.provider.example", "cdn.lab.example"],
    ]
    assert all(r["source"] == "dns" for r in records)


def test_pointer_records_name_ipv4_and_ipv6_addresses() -> None:
    records = mapped(
        "in-addr.arpa",
        ("5.0.20.10.in-addr.arpa.", "PTR", "a.lab.example.", "A.lab.example."),
        ("20.10.in-addr.arpa.", "PTR", "net.lab.example."),  # no single address
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            "PTR",
            "v6.lab.example.",
        ),
    )
    assert [(r["addresses"], r["hostnames"]) for r in records] == [
        (["10.20.0.5"], ["a.lab.example"]),
        (["fd00::1"], ["v6.lab.example"]),
    ]
