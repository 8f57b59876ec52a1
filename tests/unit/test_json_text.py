"""SQLite's JSON values are read by the C scanner alone (`store/prepared.py: json_text`): the
same values as `json.loads`, and the same errors, for any text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.store.prepared import json_text

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def loads_or_error(reader: Any, text: str) -> Any:
    try:
        return ("value", reader(text))
    except json.JSONDecodeError as exc:
        return ("error", exc.msg, exc.pos)


@given(JSON_VALUES, st.sampled_from([{}, {"separators": (",", ":")}, {"ensure_ascii": False}]))
def test_stored_json_reads_as_json_loads_reads_it(value: Any, options: dict[str, Any]) -> None:
    text = json.dumps(value, **options)
    assert json_text(text) == json.loads(text)


@given(st.text(alphabet=' \t\n{}[]",:0123456789.eE+-truefalsn\\u'))
def test_any_text_reads_or_fails_as_json_loads(text: str) -> None:
    assert loads_or_error(json_text, text) == loads_or_error(json.loads, text)


@pytest.mark.parametrize("text", [' {"a": 1} ', "[1, 2] x", "", "   ", '"\\ud800"', "NaN", "1e999"])
def test_edges_read_as_json_loads_reads_them(text: str) -> None:
    expected = loads_or_error(json.loads, text)
    got = loads_or_error(json_text, text)
    if expected[0] == "value" and isinstance(expected[1], float) and expected[1] != expected[1]:
        assert got[0] == "value"
        assert got[1] != got[1]
    else:
        assert got == expected


def test_a_number_sqlite_stored_as_a_number_comes_back_as_it_is() -> None:
    assert json_text(7) == 7
    assert json_text(2.5) == 2.5
