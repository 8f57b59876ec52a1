"""What the commands of resources share: `list` and `show ID` (ask the API, print a table, an
empty-state hint, or the API's JSON with `--json`), the `--all-pages`, `--name` and
`--description` options, an edit (refused before asking when it changes nothing), and
`delete ID`. One request on a connection of its own is `Api.ask` (`cli/command.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from surveyor.cli.client import EXIT_USAGE, ApiClient, CliError
from surveyor.cli.command import Api, api_command, api_options
from surveyor.cli.render import out, print_json

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

Tabulate = Callable[[Iterable[Mapping[str, Any]]], "Table"]
#: What `show` prints of an item; it may ask the client more (names of what the item refers to).
Render = Callable[[ApiClient, Any], "RenderableType"]
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

    @api_command(app, command, help=help)
    def list_items(*, api: Api) -> None:
        with api.connect() as client:
            items = client.get(path, limit=1000)
        if api.as_json:
            print_json(items)
        elif not items and empty:
            out.print(empty)
        else:
            out.print(table(items))


def add_show(app: typer.Typer, path: str, table: Tabulate, *, help: str) -> None:
    """`show ID`: the item at `path/ID`, as a one-row table."""

    @api_command(app, "show", help=help)
    def show_one(
        item_id: Annotated[int, typer.Argument(min=1, help="Its id (see `list`).")], *, api: Api
    ) -> None:
        print_item(api, f"{path}/{item_id}", lambda _, item: table([item]))


def print_item(api: Api, path: str, render: Render) -> None:
    """GET the item at `path`; print the API's JSON with `--json`, else what `render` makes
    of it."""
    with api.connect() as client:
        item = client.get(path)
        if api.as_json:
            print_json(item)
            return
        shown = render(client, item)
    out.print(shown)


def edit_item(
    api: Api,
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
    return api.ask("PATCH", path, body)


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

    def delete_one(item_id: int, *, api: Api) -> None:
        api.ask("DELETE", f"{path}/{item_id}")
        out.print(said.format(id=item_id))

    delete_one.__annotations__["item_id"] = Annotated[
        int, typer.Argument(min=1, help=argument_help, metavar=argument)
    ]
    app.command(command, help=help)(api_options(delete_one, json=False))
