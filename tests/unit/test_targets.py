from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.targets import (
    Scope,
    TargetError,
    TargetKind,
    TargetSet,
    build_scope,
    check_scope_cap,
    first_outside,
    parse_targets,
    split_entries,
)


def scope_of(targets: object, excludes: object = "") -> Scope:
    excluded = parse_targets(excludes, field="excludes", ipv6_min_prefix=None)
    return build_scope(parse_targets(targets), excluded)


def addresses(scope: Scope) -> list[str]:
    return [str(item) for item in scope.iter_addresses()]


# accepted forms


def test_an_ipv4_address_is_one_address() -> None:
    targets = parse_targets("127.0.0.1")
    assert [(t.kind, t.text, t.size) for t in targets] == [(TargetKind.ADDRESS, "127.0.0.1", 1)]


def test_a_cidr_covers_its_whole_network() -> None:
    scope = scope_of("127.0.0.0/30")
    assert addresses(scope) == ["127.0.0.0", "127.0.0.1", "127.0.0.2", "127.0.0.3"]


def test_a_cidr_with_host_bits_set_means_its_network() -> None:
    targets = parse_targets("127.0.0.5/24")
    assert targets.text == "127.0.0.0/24"
    assert build_scope(targets).size == 256


def test_a_cidr_may_be_written_with_a_netmask() -> None:
    assert parse_targets("127.0.0.0/255.255.255.0").text == "127.0.0.0/24"


def test_a_full_ipv4_range_is_inclusive() -> None:
    scope = scope_of("127.0.0.1-127.0.0.20")
    assert scope.size == 20
    assert addresses(scope)[0] == "127.0.0.1"
    assert addresses(scope)[-1] == "127.0.0.20"


def test_a_short_ipv4_range_replaces_the_last_octet() -> None:
    targets = parse_targets("127.0.0.1-20")
    assert targets.text == "127.0.0.1-20"
    assert build_scope(targets).size == 20


def test_a_range_may_cross_octet_boundaries() -> None:
    scope = scope_of("127.0.0.250-127.0.1.5")
    assert scope.size == 12
    assert "127.0.1.0" in addresses(scope)


def test_whitespace_around_a_range_dash_keeps_it_one_range() -> None:
    targets = parse_targets("127.0.0.1 - 127.0.0.20, 127.0.1.1 -5")
    assert targets.text == "127.0.0.1-127.0.0.20,127.0.1.1-5"


def test_a_hostname_counts_as_one_address_and_is_normalised() -> None:
    targets = parse_targets("Printer-3.Office.Example.COM.")
    assert targets.text == "printer-3.office.example.com"
    assert targets.entries[0].kind is TargetKind.HOSTNAME
    assert build_scope(targets).size == 1


def test_a_single_label_hostname_is_accepted() -> None:
    assert parse_targets("router").hostnames == ("router",)


def test_an_ipv6_address_is_written_compressed() -> None:
    assert parse_targets("2001:0db8:0000:0000:0000:0000:0000:0001").text == "2001:db8::1"


def test_an_ipv6_prefix_up_to_the_limit_is_accepted() -> None:
    assert build_scope(parse_targets("2001:db8::/112")).size == 65536


def test_an_ipv6_range_is_accepted_within_the_limit() -> None:
    assert scope_of("2001:db8::1-2001:db8::ff").size == 255


def test_the_ipv6_limit_is_configurable() -> None:
    assert build_scope(parse_targets("2001:db8::/64", ipv6_min_prefix=64)).size == 2**64
    with pytest.raises(TargetError, match="at most 256 addresses"):
        parse_targets("2001:db8::/112", ipv6_min_prefix=120)


def test_a_large_ipv6_exclude_is_accepted_without_a_limit() -> None:
    scope = scope_of("2001:db8::1, 127.0.0.1", "2001:db8::/32")
    assert addresses(scope) == ["127.0.0.1"]


def test_entries_may_be_separated_by_commas_spaces_and_newlines() -> None:
    targets = parse_targets("127.0.0.1,127.0.0.2 127.0.0.3\n127.0.0.4\r\n\t127.0.0.5,, ,127.0.0.6")
    assert build_scope(targets).size == 6


def test_a_list_holds_one_entry_per_item() -> None:
    targets = parse_targets(["127.0.0.0/31", " host.example ", "", "127.0.0.9 - 10"])
    assert targets.text == "127.0.0.0/31,host.example,127.0.0.9-10"


def test_identical_entries_are_written_once() -> None:
    assert parse_targets("127.0.0.1, 127.0.0.1, HOST, host.").text == "127.0.0.1,host"


def test_overlapping_entries_count_each_address_once() -> None:
    scope = scope_of("127.0.0.0/24, 127.0.0.100-127.0.1.9, 127.0.0.5, 127.0.1.0/29")
    assert scope.size == 256 + 10
    assert len(addresses(scope)) == len(set(addresses(scope))) == 266


def test_the_normalised_text_keeps_the_entries_as_written_in_order() -> None:
    targets = parse_targets("127.0.1.0/24 127.0.0.0/24")
    assert str(targets) == "127.0.1.0/24,127.0.0.0/24"


def test_split_entries_reports_where_each_entry_starts() -> None:
    entries = split_entries("22, 80 - 90\n443")
    assert [(e.text, e.index, e.offset) for e in entries] == [
        ("22", 0, 0),
        ("80 - 90", 1, 4),
        ("443", 2, 12),
    ]


# rejections name the exact token


@pytest.mark.parametrize(
    ("value", "token", "index", "reason"),
    [
        ("127.0.0.300", "127.0.0.300", 0, "is not a valid address, range, network or hostname"),
        ("127.0.0.1, 1.2.3", "1.2.3", 1, "is not a valid address, range, network or hostname"),
        ("ok.example bad_name", "bad_name", 1, "is not a valid address, range"),
        ("-host", "-host", 0, "is not a valid address, range"),
        ("host-", "host-", 0, "is not a valid address, range"),
        ("a" * 64 + ".example", "a" * 64 + ".example", 0, "is not a valid address"),
        ("127.0.0.0/33", "127.0.0.0/33", 0, "is not a valid network"),
        ("127.0.0.0/8/8", "127.0.0.0/8/8", 0, "is not a valid network"),
        ("127.0.0.1-127.0.0.300", "127.0.0.1-127.0.0.300", 0, "the end is not an address"),
        ("127.0.0.1-256", "127.0.0.1-256", 0, "the last octet must be 0-255"),
        ("127.0.0.1-", "127.0.0.1-", 0, "the end is not an address"),
        ("127.0.0.20-127.0.0.1", "127.0.0.20-127.0.0.1", 0, "is a reversed range"),
        ("x 127.0.0.20-5", "127.0.0.20-5", 1, "is a reversed range"),
        ("127.0.0.1-::2", "127.0.0.1-::2", 0, "mixes IPv4 and IPv6"),
        ("fe80::1%eth0", "fe80::1%eth0", 0, "zone index"),
        ("2001:db8::/111", "2001:db8::/111", 0, "is too large"),
        ("::1-::2:0", "::1-::2:0", 0, "is too large"),
        ("127.0.0.1 - 127.0.0.x", "127.0.0.1 - 127.0.0.x", 0, "is not a valid range"),
    ],
)
def test_a_malformed_entry_is_rejected_naming_its_token_and_index(
    value: str, token: str, index: int, reason: str
) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(value)
    error = caught.value
    assert error.token == token
    assert error.index == index
    assert error.field == "targets"
    assert error.message.startswith(f"'{token}' ")
    assert reason in error.message
    assert error.message.endswith(f"(entry {index + 1})")


def test_the_documented_example_message_reads_naturally() -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets("127.0.0.300")
    assert str(caught.value) == (
        "'127.0.0.300' is not a valid address, range, network or hostname (entry 1)"
    )


def test_an_excludes_error_names_the_excludes_field() -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets("127.0.0.1 nope!", field="excludes")
    assert (caught.value.field, caught.value.token) == ("excludes", "nope!")


def test_the_too_large_message_states_the_limit() -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets("2001:db8::/64")
    assert "at most 65,536 addresses (a /112)" in caught.value.message


def test_a_list_item_holding_several_entries_is_rejected_by_index() -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(["127.0.0.1", "127.0.0.2, 127.0.0.3"])
    assert (caught.value.token, caught.value.index) == ("127.0.0.2, 127.0.0.3", 1)


def test_a_non_string_list_item_is_rejected_by_index() -> None:
    with pytest.raises(TargetError, match="entry 2 of 'targets' must be a string") as caught:
        parse_targets(["127.0.0.1", 5])
    assert caught.value.index == 1


def test_a_value_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(TargetError, match="'targets' must be a string or a list of strings"):
        parse_targets(10)


def test_a_pathologically_long_token_is_shortened_in_the_message_only() -> None:
    token = "x" * 300 + "!"
    with pytest.raises(TargetError) as caught:
        parse_targets(token)
    assert caught.value.token == token
    assert len(caught.value.message) < 200


# scope arithmetic


def test_a_large_network_minus_a_subnet_is_sized_without_enumerating() -> None:
    assert scope_of("127.0.0.0/8", "127.1.0.0/16").size == 16_711_680


def test_the_whole_ipv4_space_is_sized_instantly() -> None:
    assert scope_of("0.0.0.0/0", "127.0.0.0/9, 127.128.0.0/16").size == 2**32 - 2**23 - 2**16


def test_excludes_punch_a_hole_in_a_range() -> None:
    scope = scope_of("127.0.0.1-10", "127.0.0.4-6")
    assert addresses(scope) == [f"127.0.0.{n}" for n in (1, 2, 3, 7, 8, 9, 10)]


def test_excludes_overlapping_a_range_edge_trim_it() -> None:
    scope = scope_of("127.0.0.10-20", "127.0.0.0-12, 127.0.0.19-127.0.0.40")
    assert addresses(scope) == [f"127.0.0.{n}" for n in range(13, 19)]


def test_excludes_spanning_several_targets_remove_from_each() -> None:
    scope = scope_of("127.0.0.0/30, 127.0.0.8/30", "127.0.0.2-127.0.0.9")
    assert addresses(scope) == ["127.0.0.0", "127.0.0.1", "127.0.0.10", "127.0.0.11"]


def test_an_excluded_hostname_is_dropped_case_insensitively() -> None:
    scope = scope_of("a.example, b.example, 127.0.0.1", "B.EXAMPLE.")
    assert addresses(scope) == ["127.0.0.1", "a.example"]


def test_addresses_come_ipv4_then_ipv6_then_hostnames_in_order() -> None:
    scope = scope_of("z.example 2001:db8::2 127.0.0.9 2001:db8::1 a.example 127.0.0.1")
    assert addresses(scope) == [
        "127.0.0.1",
        "127.0.0.9",
        "2001:db8::1",
        "2001:db8::2",
        "z.example",
        "a.example",
    ]


def test_iteration_is_lazy_over_the_whole_address_space() -> None:
    scope = scope_of("0.0.0.0/0")
    assert list(islice(scope.iter_addresses(), 3)) == [IPv4Address(n) for n in range(3)]


def test_iteration_is_lazy_over_an_unbounded_ipv6_prefix() -> None:
    scope = build_scope(parse_targets("::/0", ipv6_min_prefix=None))
    assert scope.size == 2**128
    assert next(iter(scope.iter_addresses())) == IPv6Address("::")


def test_contains_answers_for_addresses_hostnames_and_strings() -> None:
    scope = scope_of("127.0.0.0/24, 2001:db8::/120, host.example", "127.0.0.128/25")
    assert scope.contains(IPv4Address("127.0.0.127"))
    assert scope.contains("127.0.0.1")
    assert not scope.contains("127.0.0.128")
    assert not scope.contains("127.0.1.0")
    assert scope.contains(IPv6Address("2001:db8::ff"))
    assert not scope.contains("2001:db8::100")
    assert scope.contains("HOST.example.")
    assert not scope.contains("other.example")
    assert not scope.contains("not an address")


def test_an_ipv4_address_is_not_in_an_ipv6_scope_of_the_same_number() -> None:
    scope = scope_of("::/120")
    assert not scope.contains("0.0.0.1")


def test_is_excluded_lets_the_scanner_check_resolved_addresses() -> None:
    scope = scope_of("host.example, 127.0.0.0/24", "127.0.9.0/24, secret.example")
    assert scope.is_excluded("127.0.9.7")
    assert not scope.is_excluded("127.0.0.7")
    assert scope.is_excluded("Secret.Example")
    assert not scope.is_excluded("host.example")


def test_an_empty_scope_after_excludes_is_an_error() -> None:
    with pytest.raises(TargetError, match="nothing left to scan after excludes") as caught:
        scope_of("127.0.0.0/24, h.example", "127.0.0.0/16, H.example")
    assert caught.value.field == "excludes"


def test_no_targets_at_all_is_an_error() -> None:
    with pytest.raises(TargetError, match="no targets given"):
        build_scope(TargetSet())


def test_a_scope_within_the_cap_passes() -> None:
    check_scope_cap(scope_of("127.0.0.0/16"), 65536)


def test_a_scope_over_the_cap_names_its_size_the_cap_and_the_admin() -> None:
    with pytest.raises(TargetError) as caught:
        check_scope_cap(scope_of("127.0.0.0/15"), 65536)
    message = caught.value.message
    assert "131,072 addresses" in message
    assert "cap of 65,536" in message
    assert "ask an admin to raise the cap" in message
    assert caught.value.field == "targets"


def test_excludes_can_bring_a_scope_under_the_cap() -> None:
    check_scope_cap(scope_of("127.0.0.0/15", "127.1.0.0/16"), 65536)


# properties

_BASE = int(IPv4Address("127.0.0.0"))


@st.composite
def ipv4_entries(draw: st.DrawFn) -> str:
    """Addresses, ranges (both forms) and CIDRs inside 127.0.0.0/23, so sets stay small."""
    first = draw(st.integers(0, 511))
    kind = draw(st.sampled_from(["address", "range", "short", "cidr"]))
    if kind == "address":
        return str(IPv4Address(_BASE + first))
    if kind == "range":
        last = draw(st.integers(first, min(511, first + 40)))
        return f"{IPv4Address(_BASE + first)}-{IPv4Address(_BASE + last)}"
    if kind == "short":
        last_octet = draw(st.integers(first % 256, 255))
        return f"{IPv4Address(_BASE + first)}-{last_octet}"
    prefix = draw(st.integers(24, 32))
    return f"{IPv4Address(_BASE + first)}/{prefix}"


ipv6_entries = st.integers(0, 300).map(lambda n: str(IPv6Address(int(IPv6Address("fd00::")) + n)))
host_entries = st.sampled_from(["a.example", "b.example", "C.example", "d"])
entries = st.one_of(ipv4_entries(), ipv6_entries, host_entries)


def _naive(text_entries: list[str]) -> set[str]:
    """The addresses of entries, enumerated one by one with ipaddress as a reference."""
    result: set[str] = set()
    for entry in text_entries:
        if "/" in entry:
            result.update(str(a) for a in ip_network(entry, strict=False))
        elif "-" in entry:
            left, right = entry.split("-")
            start = ip_address(left)
            if "." not in right:
                right = f"{left.rsplit('.', 1)[0]}.{right}"
            end = ip_address(right)
            result.update(str(ip_address(n)) for n in range(int(start), int(end) + 1))
        elif ":" in entry or entry[0].isdigit():
            result.add(str(ip_address(entry)))
        else:
            result.add(entry.lower())
    return result


@given(st.lists(entries, min_size=1, max_size=6), st.lists(entries, max_size=6))
def test_a_scope_is_exactly_its_targets_minus_its_excludes(
    targets: list[str], excludes: list[str]
) -> None:
    expected = _naive(targets) - _naive(excludes)
    if not expected:
        with pytest.raises(TargetError, match="nothing left to scan"):
            scope_of(targets, excludes)
        return
    scope = scope_of(targets, excludes)
    yielded = addresses(scope)
    assert scope.size == len(yielded) == len(expected)
    assert set(yielded) == expected
    for item in scope.iter_addresses():
        assert scope.contains(item)
        assert not scope.is_excluded(item)


@given(st.lists(entries, min_size=1, max_size=6), st.lists(entries, max_size=6), st.data())
def test_contains_agrees_with_the_enumerated_scope(
    targets: list[str], excludes: list[str], data: st.DataObject
) -> None:
    expected = _naive(targets) - _naive(excludes)
    if not expected:
        return
    scope = scope_of(" ".join(targets), ",".join(excludes))
    probe = data.draw(entries.filter(lambda e: "/" not in e and "-" not in e))
    assert scope.contains(probe) == (_naive([probe]) <= expected)


def parse_or_error(text: str) -> TargetSet | TargetError:
    try:
        return parse_targets(text)
    except TargetError as error:
        return error


@given(st.text())
def test_any_text_either_parses_or_raises_a_target_error(text: str) -> None:
    result = parse_or_error(text)
    if isinstance(result, TargetError):
        assert result.message
        assert result.token is None or result.token in text
    else:
        assert parse_targets(result.text) == result


@given(st.text(alphabet="0123456789abcdef.:/-, x%", max_size=40))
def test_address_like_text_either_scopes_or_raises_a_target_error(text: str) -> None:
    targets, excludes = parse_or_error(text), parse_or_error(text[::-1])
    if isinstance(targets, TargetSet) and isinstance(excludes, TargetSet) and targets:
        try:
            scope = build_scope(targets, excludes)
        except TargetError as error:
            message = error.message
        else:
            message = ""
            assert scope.size >= 1
        assert message in ("", "nothing left to scan after excludes")


@pytest.mark.parametrize(
    ("targets", "excludes", "allowed", "outside"),
    [
        ("127.0.0.0/24", "", "127.0.0.0/16", None),
        ("127.0.0.1, 127.0.1.0/24", "", "127.0.0.0/24", ("127.0.1.0/24", "127.0.1.0")),
        ("127.0.0.0/23", "127.0.1.0/24", "127.0.0.0/24", None),
        ("127.0.0.0/23", "127.0.1.0/25", "127.0.0.0/24", ("127.0.0.0/23", "127.0.1.128")),
        (
            "127.0.0.5-127.0.0.20",
            "",
            "127.0.0.0-127.0.0.9, 127.0.0.10/31, 127.0.0.12/30, 127.0.0.16-20",
            None,
        ),
        ("fe80::1", "", "127.0.0.0/8", ("fe80::1", "fe80::1")),
        ("host.example", "", "127.0.0.0/8", ("host.example", "host.example")),
        ("HOST.example.", "", "host.example, 127.0.0.1", None),
        ("host.example", "host.example", "127.0.0.1", None),
        ("127.0.0.1", "", "", ("127.0.0.1", "127.0.0.1")),
    ],
)
def test_the_first_target_outside_an_allowed_scope_is_named(
    targets: str, excludes: str, allowed: str, outside: tuple[str, str] | None
) -> None:
    found = first_outside(
        parse_targets(targets),
        parse_targets(excludes, field="excludes"),
        parse_targets(allowed, field="allowed_scope", ipv6_min_prefix=None),
    )
    if outside is None:
        assert found is None
    else:
        assert found is not None
        assert (found.target.text, found.first_outside) == outside


@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=4),
)
def test_a_scope_is_inside_an_allowed_scope_exactly_when_every_address_is(
    wanted: list[tuple[int, int]], permitted: list[tuple[int, int]]
) -> None:
    def text(pairs: list[tuple[int, int]]) -> str:
        return ", ".join(f"127.0.0.{min(a, b)}-127.0.0.{max(a, b)}" for a, b in pairs)

    targets = parse_targets(text(wanted))
    allowed = parse_targets(text(permitted), field="allowed_scope")
    addresses = {n for a, b in wanted for n in range(min(a, b), max(a, b) + 1)}
    allowed_addresses = {n for a, b in permitted for n in range(min(a, b), max(a, b) + 1)}

    found = first_outside(targets, parse_targets("", field="excludes"), allowed)

    assert (found is None) == addresses.issubset(allowed_addresses)
    if found is not None:
        assert int(found.first_outside.rsplit(".", 1)[1]) not in allowed_addresses
