"""Hidden characters (bidirectional overrides, zero-width characters, controls) are shown
as escapes wherever text from users or the network is displayed."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.visible_text import (
    describe,
    has_hidden,
    is_hidden,
    json_escape_hidden,
    reveal,
    segments,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("invoice\u202egpj.exe", "invoice\\u202egpj.exe"),
        ("pay\u200bpal", "pay\\u200bpal"),
        ("a\u200cb\u200dc\u2060d\ufeffe", "a\\u200cb\\u200dc\\u2060d\\ufeffe"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
        ("soft\u00adhyphen", "soft\\u00adhyphen"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("bell\x07 escape\x1b[31m", "bell\\u0007 escape\\u001b[31m"),
        ("c1\x85\x9b", "c1\\u0085\\u009b"),
        ("del\x7f", "del\\u007f"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("over\rwrite", "over\\u000dwrite"),
    ],
)
def test_hidden_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert reveal(text) == shown
    assert has_hidden(text)


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii, with punctuation: <>&\"'",
        "tabs\tand\nnew lines\r\nstay",
        "Zürich, Łódź, 東京, إدارة, emoji 🛰️",
        "a literal backslash-u: \\u202e",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert reveal(text) == text
    assert not has_hidden(text)


def test_a_tooltip_names_the_character() -> None:
    assert describe("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert describe("\x1b") == "U+001B"


@given(st.text())
def test_revealed_text_has_no_hidden_character_left(text: str) -> None:
    assert not any(is_hidden(character) for character in reveal(text) if character != "\r")
    assert "\r" not in reveal(text).replace("\r\n", "")


@given(st.text())
def test_segments_put_together_are_the_text_and_each_hidden_one_is_one_character(
    text: str,
) -> None:
    parts = list(segments(text))
    assert "".join(part for part, _ in parts) == text
    for part, hidden in parts:
        if hidden:
            assert len(part) == 1
            assert part == "\r" or unicodedata.category(part) in {"Cc", "Cf", "Zl", "Zp", "Cs"}


@given(st.recursive(st.text() | st.integers(), lambda inner: st.lists(inner, max_size=4)))
def test_escaping_hidden_characters_in_json_keeps_the_same_value(value: object) -> None:
    dumped = json.dumps(value, ensure_ascii=False)
    escaped = json_escape_hidden(dumped)
    assert json.loads(escaped) == value
    assert not has_hidden(escaped)


def test_every_format_character_is_hidden() -> None:
    format_characters = [
        chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"
    ]
    assert len(format_characters) > 150
    assert all(has_hidden(character) for character in format_characters)
