"""Option and argument values without pydantic, as Typer itself would give them.

Typer turns every value a command receives (the user's, or the default) into its annotated type
through a pydantic `TypeAdapter`, so any command that runs imports pydantic and builds an
adapter per parameter: most of what `surveyor task list` spent starting. The values the CLI
takes are nearly all strings, whole numbers, flags, choices and lists of them, which need none
of it.

`take_plain_values()` (called by `cli/main.py`) gives each such parameter a `PlainValue` when
the parameter first takes a value. It returns what Typer's adapter returns for an ordinary
value: the string itself, the number (within its `min`/`max`), the flag, the choice, the
parser's answer, a list of those. Anything else (bytes, `1e3`, a number out of range, an
unknown choice, a parser that refuses) it hands to Typer's own coercion, which gives the same
answer or the same error as ever. Other kinds of parameter (paths, files, floats, dates without
a parser) keep Typer's. With a Typer that coerces otherwise, nothing changes.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, cast, get_args, get_origin

if TYPE_CHECKING:
    from typer import _click

#: Whole numbers written as `int()` and pydantic both read them (no sign on 0, no leading zeros,
#: no `_`, no spaces, short enough that no limit on digits applies).
_WHOLE = re.compile(r"-?[1-9][0-9]{0,17}|0")
_MISS = object()
Kind = Literal["str", "int", "bool", "parser", "choice"]


def _kind(annotation: Any, info: Any) -> Kind | None:
    """How a single value of this annotation is taken, in the order Typer's adapters decide."""
    if info.parser is not None:
        return "parser"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice"
    if get_origin(annotation) is Literal:
        return "choice"
    if annotation is int and not info.clamp:
        return "int"
    if annotation is str:
        return "str"
    if annotation is bool:
        return "bool"
    return None


class PlainValue:
    """Takes one parameter's values as its Typer adapter would, without building the adapter
    unless a value needs it."""

    def __init__(self, descriptor: Any, kind: Kind, many: bool) -> None:
        self.descriptor = descriptor
        self.kind = kind
        self.many = many
        info = descriptor.parameter_info
        self.info = info
        leaf = get_args(descriptor.annotation)[0] if many else descriptor.annotation
        self.choices: tuple[Any, ...] = ()
        if kind == "choice":
            self.choices = (
                tuple(cast("type[Enum]", leaf)) if isinstance(leaf, type) else get_args(leaf)
            )
        self._typer: Any = None

    def _full(self) -> Any:
        """Typer's own coercion of this parameter, built when first needed."""
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self.descriptor)
        return self._typer

    def _one(self, value: Any, ctx: _click.Context) -> Any:
        if self.kind == "str":
            return value if type(value) is str else _MISS
        if self.kind == "bool":
            return value if type(value) is bool else _MISS
        if self.kind == "int":
            if type(value) is str and _WHOLE.fullmatch(value):
                value = int(value)
            elif type(value) is not int:
                return _MISS
            low, high = self.info.min, self.info.max
            if (low is not None and value < low) or (high is not None and value > high):
                return _MISS
            return value
        if self.kind == "choice":
            from typer._param_types import coerce_cli_choice

            try:
                return coerce_cli_choice(
                    value, choices=self.choices, case_sensitive=self.info.case_sensitive, ctx=ctx
                )
            except ValueError:
                return _MISS
        try:
            return self.info.parser(value)
        except Exception:
            return _MISS

    def coerce(self, value: Any, param: _click.Parameter, ctx: _click.Context) -> Any:
        many = param.multiple or param.nargs == -1
        if value is None:
            return () if many else None
        if many and isinstance(value, list | tuple) and self.many:
            items = [self._one(item, ctx) for item in value]
            if all(item is not _MISS for item in items):
                return items
        elif not many and not self.many:
            taken = self._one(value, ctx)
            if taken is not _MISS:
                return taken
        return self._full().coerce(value, param=param, ctx=ctx)


def plain_value(param: _click.Parameter) -> PlainValue | None:
    """A `PlainValue` for a Typer parameter whose values it knows how to take, else None."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(descriptor, "file_annotation", None) is not None:
        return None
    annotation = descriptor.annotation
    info = descriptor.parameter_info
    many = get_origin(annotation) is list
    if many:
        (annotation,) = get_args(annotation) or (None,)
        if get_origin(annotation) in (list, tuple):
            return None
    kind = _kind(annotation, info)
    return None if kind is None else PlainValue(descriptor, kind, many)


def take_plain_values() -> None:
    """From now on, each Typer parameter of this process whose values a `PlainValue` can take
    gets one (on first use) instead of Typer's adapter. Does nothing with a Typer that has no
    lazily built coercion per parameter, and nothing the second time."""
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return
    typers = getattr(_TyperParameter, "get_runtime_param", None)
    if typers is None or getattr(typers, "plain", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is None:
            self._runtime_param = plain_value(self) or typers(self)
        return self._runtime_param

    get_runtime_param.plain = True  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
