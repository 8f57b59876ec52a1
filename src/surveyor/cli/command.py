"""A command that asks the console: its `--json`, `--console` and `--token` options reach it
as one `Api` value, and its `CliError`s are reported (`render.reports_errors`).

A command declares a parameter `api: Api` where the user sees those options; `api_options`
turns it into them, so that no command spells them out again. Other options that several
commands take together are a dataclass of their own, offered the same way by `option_group`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from surveyor.cli.client import ConsoleOption, TokenOption, connect
from surveyor.cli.render import JsonOption, reports_errors

if TYPE_CHECKING:
    from surveyor.cli.client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Api:
    """Where to ask (--console), as whom (--token), and whether to print the API's JSON
    (--json) rather than tables and sentences."""

    console: str | None = None
    token: str | None = None
    as_json: bool = False

    def connect(self) -> ApiClient:
        """A client for the console and token chosen by flags, environment or config file."""
        return connect(self.console, self.token)

    def ask(self, method: str, path: str, body: Any = None) -> Any:
        """One request on a connection of its own: the API's answer (a refusal is raised as a
        CliError)."""
        with self.connect() as client:
            return client.request(method, path, json=body)


def command_group(help: str) -> typer.Typer:
    """A group of commands (`surveyor user …`): called without one, it shows its help."""
    return typer.Typer(help=help, no_args_is_help=True)


def _parameters(json: bool) -> list[inspect.Parameter]:
    """The options `api: Api` stands for, in the order --help shows them."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    options = [
        inspect.Parameter("console", keyword, default=None, annotation=ConsoleOption),
        inspect.Parameter("token", keyword, default=None, annotation=TokenOption),
    ]
    if json:
        options.insert(
            0, inspect.Parameter("as_json", keyword, default=False, annotation=JsonOption)
        )
    return options


def api_options(command: F, *, json: bool = True) -> F:
    """`command` with its parameter `api` offered as --json (unless `json` is False),
    --console and --token, and its `CliError`s reported."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name == "api":
            parameters.extend(_parameters(json))
        elif parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        else:
            parameters.append(parameter)

    @functools.wraps(command)
    def run(
        *args: Any,
        console: str | None = None,
        token: str | None = None,
        as_json: bool = False,
        **kwargs: Any,
    ) -> Any:
        return command(*args, api=Api(console, token, as_json), **kwargs)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return reports_errors(run)  # type: ignore[return-value]


def option_group(name: str, group: type[Any]) -> Callable[[F], F]:
    """A decorator: `command`'s keyword-only parameter `name` offered as one option per field
    of the dataclass `group` (the field's annotation is its option, its default the option's),
    in the fields' order; the options reach the command as one `group`."""
    hints = typing.get_type_hints(group, include_extras=True)
    fields = dataclasses.fields(group)
    options = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=hints[field.name],
        )
        for field in fields
    ]

    def expand(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            parameters.extend(options if parameter.name == name else [parameter])

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = group(**{field.name: kwargs.pop(field.name) for field in fields})
            return command(*args, **{name: given}, **kwargs)

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run  # type: ignore[return-value]

    return expand


def api_command(
    app: typer.Typer, name: str, *, json: bool = True, help: str | None = None
) -> Callable[[F], F]:
    """Register the decorated function as the command `name` of `app`, through
    `api_options`; the function itself is returned unchanged."""

    def register(command: F) -> F:
        app.command(name, help=help)(api_options(command, json=json))
        return command

    return register
