"""`cli/params.py` takes every parameter's values as Typer's own coercion does: the same value,
or the same error, for every parameter of every command."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest
from typer import _click
from typer._coercion import build_runtime_param
from typer.core import TyperCommand

from surveyor.cli import main
from surveyor.cli.params import PlainValue, plain_value

#: Values a parameter of each kind may be handed: ordinary ones, and ones only Typer's own
#: coercion knows what to do with.
STRINGS = ["", "abc", " padded ", "Zürich", "127.0.0.1", "a\u202eb", b"bytes", 7]
WHOLE = ["0", "1", "50", "-3", "1000", "1001", "65535", "65536", "007", "-0", "+5", " 12 ",
         "1_000", "1e3", "12.0", "", "abc", "9" * 20, 0, 50, -1, 10**6, 2.5, True]  # fmt: skip
FLAGS = [True, False, "true", "no", "", "maybe", 1, 0]
TIMES = ["2024-05-01T14:03:00Z", "2024-05-01 14:03", "now", "+2h", "tomorrow", "garbage", ""]


def _params() -> Iterator[tuple[str, _click.Parameter]]:
    seen: set[int] = set()

    def walk(path: str, command: _click.Command) -> Iterator[tuple[str, _click.Parameter]]:
        for param in command.params:
            if hasattr(param, "type_descriptor") and id(param) not in seen:
                seen.add(id(param))
                yield f"{path} {param.name}", param
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(f"{path} {name}", sub)

    for name, lazy in main.COMMANDS.items():
        yield from walk(name, lazy.load(name))


PARAMS = [(name, param) for name, param in _params() if plain_value(param) is not None]


def _samples(plain: PlainValue) -> list[Any]:
    if plain.kind == "str":
        leaf = STRINGS
    elif plain.kind == "int":
        leaf = WHOLE
    elif plain.kind == "bool":
        leaf = FLAGS
    elif plain.kind == "choice":
        values = [c.value if isinstance(c, enum.Enum) else c for c in plain.choices]
        leaf = [*values, *(str(v).upper() for v in values), "nope", "", *plain.choices[:1]]
    else:
        leaf = TIMES
    if plain.many:
        return [(), tuple(leaf[:2]), tuple(leaf), [leaf[0]], "one", None]
    return [*leaf, None]


def _typers(param: _click.Parameter) -> Any:
    """Typer's own coercion of `param`."""
    return build_runtime_param(param.type_descriptor)  # type: ignore[attr-defined]


def _plain(param: _click.Parameter) -> PlainValue:
    plain = plain_value(param)
    assert plain is not None
    return plain


def _outcome(runtime: Any, param: _click.Parameter, value: Any) -> tuple[str, Any]:
    ctx = _click.Context(TyperCommand("surveyor"))
    try:
        return "value", runtime.coerce(value, param=param, ctx=ctx)
    except _click.exceptions.UsageError as error:
        return type(error).__name__, error.format_message()


def test_most_parameters_take_plain_values() -> None:
    every = list(_params())

    kinds = {plain.kind for _, param in every if (plain := plain_value(param)) is not None}
    assert kinds == {"str", "int", "bool", "choice", "parser"}
    assert len(PARAMS) >= 0.9 * len(every)


@pytest.mark.parametrize(("name", "param"), PARAMS, ids=[name for name, _ in PARAMS])
def test_a_value_comes_out_as_typer_makes_it(name: str, param: _click.Parameter) -> None:
    plain = _plain(param)
    typers = _typers(param)

    for value in _samples(plain):
        got = _outcome(plain, param, value)
        expected = _outcome(typers, param, value)
        assert got == expected, (name, value)
        assert type(got[1]) is type(expected[1]), (name, value)
        if isinstance(expected[1], list):
            assert [type(v) for v in got[1]] == [type(v) for v in expected[1]], (name, value)


def test_a_list_of_numbers_is_taken_item_by_item() -> None:
    lists = [p for _, p in PARAMS if _plain(p).many and _plain(p).kind == "int"]
    assert lists, "no option taking several whole numbers to check"
    param = lists[0]

    assert _outcome(_plain(param), param, ("3", "14")) == ("value", [3, 14])
    refused = _outcome(_plain(param), param, ("3", "x"))
    assert refused[0] == "BadParameter"
    assert refused == _outcome(_typers(param), param, ("3", "x"))
