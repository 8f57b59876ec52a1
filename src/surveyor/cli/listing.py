"""What the commands of resources share: `list` and `show ID` (ask the API, print a table, an
empty-state hint, or the API's JSON with `--json`), the `--all-pages`, `--name` and
`--description` options, asking for one change (create, edit, delete), and `delete ID`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.table import Table

from surveyor.cli.client import EXIT_USAGE, ApiClient, CliError, ConsoleOption, TokenOption, connect
from surveyor.cli.render import JsonOption, out, print_json, reports_errors

Tabulate = Callable[[Iterable[Mapping[str, Any]]], Table]
#: What `show` prints of an item; it may ask the client more (names of what the item refers to).
Render = Callable[[ApiClient, Any], RenderableType]
AllPages = Annotated[
    bool, typer.Option("--all-pages", help="Follow every page, not just the first.")
]
NewName = Annotated[str | None, typer.Option("--name", help="A new name.")]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]


def add_list(
    app: typer.Typer,
    path: str,
    table: Tabulate,
    *,
    help: str,
    empty: str | None = None,
    command: str = "list",
) -> None:
    """`list` (or `command`): every item at `path` (up to 1,000); `empty` is said when there
    is none."""

    @app.command(command, help=help)
    @reports_errors
    def list_items(
        as_json: JsonOption = False, console: ConsoleOption = None, token: TokenOption = None
    ) -> None:
        with connect(console, token) as client:
            items = client.get(path, limit=1000)
        if as_json:
            print_json(items)
        elif not items and empty:
            out.print(empty)
        else:
            out.print(table(items))


def add_show(app: typer.Typer, path: str, table: Tabulate, *, help: str) -> None:
    """`show ID`: the item at `path/ID`, as a one-row table."""

    @app.command("show", help=help)
    @reports_errors
    def show_one(
        item_id: Annotated[int, typer.Argument(min=1, help="Its id (see `list`).")],
        as_json: JsonOption = False,
        console: ConsoleOption = None,
        token: TokenOption = None,
    ) -> None:
        print_item(console, token, f"{path}/{item_id}", as_json, lambda _, item: table([item]))


def print_item(
    console: str | None, token: str | None, path: str, as_json: bool, render: Render
) -> None:
    """GET the item at `path`; print the API's JSON with `--json`, else what `render` makes
    of it."""
    with connect(console, token) as client:
        item = client.get(path)
        if as_json:
            print_json(item)
            return
        shown = render(client, item)
    out.print(shown)


def ask(console: str | None, token: str | None, method: str, path: str, body: Any = None) -> Any:
    """One request on a connection of its own: the API's answer (a refusal is raised as a
    CliError)."""
    with connect(console, token) as client:
        return client.request(method, path, json=body)


def edit_item(
    console: str | None,
    token: str | None,
    path: str,
    body: Mapping[str, Any],
    *,
    options: str,
    exit_code: int = EXIT_USAGE,
) -> Any:
    """PATCH `path` with `body` and return the changed item; an empty body is refused before
    asking, with the `options` that would change something."""
    if not body:
        raise CliError(f"nothing to change; pass {options}", exit_code)
    return ask(console, token, "PATCH", path, body)


def delete_item(console: str | None, token: str | None, path: str, said: str) -> None:
    """DELETE `path`, then say `said` (an API refusal is raised as a CliError)."""
    ask(console, token, "DELETE", path)
    out.print(said)


def add_delete(
    app: typer.Typer,
    command: str,
    path: str,
    *,
    argument: str,
    argument_help: str,
    help: str,
    said: str,
) -> None:
    """`COMMAND ID`: DELETE `path/ID`, then say `said` (`{id}` in it stands for the id). The id
    argument is shown as `argument` with `argument_help`."""

    def delete_one(item_id: int, console: ConsoleOption = None, token: TokenOption = None) -> None:
        delete_item(console, token, f"{path}/{item_id}", said.format(id=item_id))

    delete_one.__annotations__["item_id"] = Annotated[
        int, typer.Argument(min=1, help=argument_help, metavar=argument)
    ]
    app.command(command, help=help)(reports_errors(delete_one))
