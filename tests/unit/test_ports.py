from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.ports import (
    MAX_PORT,
    PRESETS,
    TOP100,
    PortError,
    format_ports,
    parse_ports,
    ports_count,
)


def test_a_list_of_ports_and_ranges_parses_to_sorted_unique_ports() -> None:
    ports = parse_ports("443,22,80,8000-8100,80")
    assert ports[:3] == (22, 80, 443)
    assert ports[3:] == tuple(range(8000, 8101))


def test_ranges_are_inclusive_and_may_be_a_single_port() -> None:
    assert parse_ports("20-22, 25-25") == (20, 21, 22, 25)


def test_whitespace_is_tolerated_everywhere() -> None:
    assert parse_ports("  22 ,\n80\t443 , 8000 - 8002 ") == (22, 80, 443, 8000, 8001, 8002)


def test_overlapping_ranges_are_merged() -> None:
    assert ports_count("1-100, 50-150, 100") == 150


def test_the_bounds_of_the_port_space_are_accepted() -> None:
    assert parse_ports("1,65535") == (1, 65535)


def test_a_list_of_ints_and_strings_is_accepted() -> None:
    assert parse_ports([443, "22", "8000-8001", " top100 "]) == tuple(sorted({*TOP100, 8000, 8001}))


def test_a_single_int_is_accepted() -> None:
    assert parse_ports(8080) == (8080,)


def test_top100_is_a_real_list_of_100_distinct_ports() -> None:
    assert len(TOP100) == len(set(TOP100)) == 100
    assert tuple(sorted(TOP100)) == TOP100
    assert {22, 80, 443, 445, 3389}.issubset(TOP100)


def test_default_is_the_top100() -> None:
    assert parse_ports("default") == parse_ports("top100") == TOP100


def test_all_covers_the_whole_port_space() -> None:
    assert ports_count("all") == MAX_PORT


def test_preset_names_ignore_case_and_combine_with_ports() -> None:
    assert parse_ports("TOP100, 60000") == (*TOP100, 60000)


def test_ports_count_counts_distinct_ports() -> None:
    assert ports_count("22,80,443,8000-8100") == 104


def test_the_canonical_form_collapses_runs_of_three_or_more() -> None:
    assert format_ports(parse_ports("8000-8100, 443, 22, 80, 81, 25-27")) == (
        "22,25-27,80,81,443,8000-8100"
    )


@pytest.mark.parametrize(
    ("value", "token", "message"),
    [
        ("22,70000", "70000", "'70000' is out of range 1-65535"),
        ("0", "0", "'0' is out of range 1-65535"),
        ("1-65536", "1-65536", "'1-65536' is out of range 1-65535"),
        ("99999999999999999999999999", "99999999999999999999999999", "is out of range"),
        ("80-20", "80-20", "'80-20' is a reversed range"),
        (
            "22 http",
            "http",
            "'http' is not a port, range or preset (presets: default, top100, all)",
        ),
        ("-5", "-5", "'-5' is not a port, range or preset"),
        ("80-", "80-", "'80-' is not a port, range or preset"),
        ("8000 -", "8000 -", "'8000 -' is not a port, range or preset"),
        ("1-2-3", "1-2-3", "'1-2-3' is not a port, range or preset"),
        ("٣", "٣", "'٣' is not a port, range or preset"),
    ],
)
def test_a_bad_token_is_rejected_by_name(value: str, token: str, message: str) -> None:
    with pytest.raises(PortError) as caught:
        parse_ports(value)
    assert caught.value.token == token
    assert caught.value.field == "tcp_ports"
    assert message in caught.value.message


def test_the_error_gives_the_index_of_the_bad_entry() -> None:
    with pytest.raises(PortError) as caught:
        parse_ports("22, 80, 70000")
    assert caught.value.index == 2


def test_an_empty_value_is_rejected() -> None:
    with pytest.raises(PortError, match="no ports given"):
        parse_ports(" , ")


@pytest.mark.parametrize("value", [True, 1.5, None, {"a": 1}, [80, None], [80, False]])
def test_a_value_of_the_wrong_type_is_rejected(value: object) -> None:
    with pytest.raises(PortError, match="'tcp_ports' must"):
        parse_ports(value)


def test_an_out_of_range_int_in_a_list_is_rejected() -> None:
    with pytest.raises(PortError) as caught:
        parse_ports([22, 0])
    assert (caught.value.token, caught.value.index) == ("0", 1)


def test_a_list_item_holding_several_entries_is_rejected() -> None:
    with pytest.raises(PortError, match="holds several entries") as caught:
        parse_ports(["22", "80,443"])
    assert caught.value.token == "80,443"


@given(st.sets(st.integers(1, MAX_PORT), min_size=1, max_size=50))
def test_the_canonical_form_parses_back_to_the_same_ports(ports: set[int]) -> None:
    assert parse_ports(format_ports(ports)) == tuple(sorted(ports))


def parse_or_error(value: object) -> tuple[int, ...] | PortError:
    try:
        return parse_ports(value)
    except PortError as error:
        return error


@given(st.text())
def test_any_text_either_parses_or_raises_a_port_error(text: str) -> None:
    result = parse_or_error(text)
    if isinstance(result, PortError):
        assert result.message
        assert result.token is None or result.token in text
    else:
        assert all(1 <= port <= MAX_PORT for port in result)


@given(st.text(alphabet="0123456789-, top", max_size=30))
def test_port_like_text_either_parses_or_raises_a_port_error(text: str) -> None:
    result = parse_or_error(text)
    assert isinstance(result, PortError) or parse_ports(format_ports(result)) == result


def test_every_preset_is_within_the_port_space() -> None:
    for ports in PRESETS.values():
        assert ports == tuple(sorted(set(ports)))
        assert ports[0] >= 1
        assert ports[-1] <= MAX_PORT
