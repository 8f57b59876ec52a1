"""The limits on reading task data: lines refused while they grow, nesting measured before
parsing, and the settings that name each limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import repeat
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.jsonl_limits import (
    DATA_SETTING,
    DEPTH_SETTING,
    RATIO_FREE_BYTES,
    RATIO_SETTING,
    RECORD_SETTING,
    JsonlLimits,
    LimitExceeded,
    nesting_depth,
    parse_line,
    split_lines,
)

SMALL = JsonlLimits(max_record_bytes=10, max_json_depth=3)


def blocks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_lines_are_numbered_across_blocks_and_empty_ones_are_skipped(size: int) -> None:
    data = b'{"a":1}\n\n\n[2]\n  \nlast'
    assert list(split_lines(blocks(data, size), SMALL)) == [
        (1, b'{"a":1}'),
        (4, b"[2]"),
        (5, b"  "),
        (6, b"last"),
    ]


def test_a_line_at_the_limit_passes_and_one_byte_more_is_refused_naming_its_line() -> None:
    assert list(split_lines([b"\n" + b"x" * 10 + b"\n"], SMALL)) == [(2, b"x" * 10)]
    with pytest.raises(LimitExceeded) as refused:
        list(split_lines([b"ok\n\n", b"x" * 6, b"x" * 5, b"\n"], SMALL))
    assert refused.value.line == 3
    assert refused.value.setting == RECORD_SETTING
    assert refused.value.too_large
    assert str(refused.value) == "line 3: the record is larger than 10 bytes"


def test_an_endless_line_is_refused_once_the_limit_has_arrived() -> None:
    taken = 0

    def endless() -> Iterator[bytes]:
        nonlocal taken
        for block in repeat(b"y" * 4):
            taken += 1
            yield block

    with pytest.raises(LimitExceeded):
        list(split_lines(endless(), SMALL))
    assert taken == 3


def test_runs_of_empty_lines_are_counted_and_skipped() -> None:
    many = b"\n" * 5_000_000
    assert list(split_lines([many, b"{}\n", many], SMALL)) == [(5_000_001, b"{}")]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


@given(json_values, st.booleans())
def test_the_nesting_measure_agrees_with_the_parsed_value(value: Any, ascii_only: bool) -> None:
    line = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(line) == depth_of(value)


def test_brackets_and_escaped_quotes_inside_strings_do_not_count() -> None:
    assert nesting_depth(b'["[[[[", "\\"{{{{", "\\\\", {"k]]": "]"}]') == 2


def test_json_nested_100000_levels_deep_is_refused_before_it_is_parsed() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(LimitExceeded) as refused:
        parse_line(deep, 7, JsonlLimits())
    assert refused.value.setting == DEPTH_SETTING
    assert refused.value.line == 7
    assert not refused.value.too_large
    assert "deeper than 64 levels" in str(refused.value)


def test_unclosed_nesting_is_refused_too() -> None:
    with pytest.raises(LimitExceeded):
        parse_line(b'{"a":' * 100_000, 1, JsonlLimits())


def test_nesting_at_the_limit_parses() -> None:
    assert parse_line(b'[[{"a": []}]]', 1, JsonlLimits(max_json_depth=4)) == [[{"a": []}]]
    with pytest.raises(LimitExceeded):
        parse_line(b'[[{"a": [[]]}]]', 1, JsonlLimits(max_json_depth=4))


def test_text_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        parse_line(b'{"a": }', 1, SMALL)
    with pytest.raises(UnicodeDecodeError):
        parse_line(b'"\xff"', 1, SMALL)


def test_a_small_file_may_expand_freely_and_a_larger_one_by_the_ratio() -> None:
    limits = JsonlLimits(max_gzip_ratio=100, max_data_bytes=1 << 40)
    assert limits.expansion_budget(1000) == RATIO_FREE_BYTES
    assert limits.expansion_budget(1 << 20) == 100 << 20
    bomb = limits.expanded_too_far(1 << 20)
    assert bomb.setting == RATIO_SETTING
    assert "100 times its size" in bomb.problem
    capped = JsonlLimits(max_data_bytes=1 << 30)
    assert capped.expansion_budget(1 << 30) == 1 << 30
    assert capped.expanded_too_far(1 << 30).setting == DATA_SETTING


def test_limits_come_from_their_settings() -> None:
    environ = {RECORD_SETTING: "2048", DEPTH_SETTING: "8", RATIO_SETTING: "", DATA_SETTING: "9"}
    assert JsonlLimits.from_environment(environ) == JsonlLimits(
        max_record_bytes=2048, max_json_depth=8, max_data_bytes=9
    )
    with pytest.raises(SystemExit, match=DEPTH_SETTING):
        JsonlLimits.from_environment({DEPTH_SETTING: "-1"})
