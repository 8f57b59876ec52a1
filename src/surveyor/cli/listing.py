"""What the commands of resources share: `list` and `show ID` (ask the API, print a table, an
empty-state hint, or the API's JSON with `--json`), the `--all-pages` option, and deleting
one item."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import typer
from rich.table import Table

from surveyor.cli.client import ConsoleOption, TokenOption, connect
from surveyor.cli.render import JsonOption, out, print_json, reports_errors

Tabulate = Callable[[Iterable[Mapping[str, Any]]], Table]
AllPages = Annotated[
    bool, typer.Option("--all-pages", help="Follow every page, not just the first.")
]


def add_list(
    app: typer.Typer, path: str, table: Tabulate, *, help: str, empty: str | None = None
) -> None:
    """`list`: every item at `path` (up to 1,000); `empty` is said when there is none."""

    @app.command("list", help=help)
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
    def show_item(
        item_id: Annotated[int, typer.Argument(min=1, help="Its id (see `list`).")],
        as_json: JsonOption = False,
        console: ConsoleOption = None,
        token: TokenOption = None,
    ) -> None:
        with connect(console, token) as client:
            item = client.get(f"{path}/{item_id}")
        if as_json:
            print_json(item)
        else:
            out.print(table([item]))


def delete_item(console: str | None, token: str | None, path: str, said: str) -> None:
    """DELETE `path`, then say `said` (an API refusal is raised as a CliError)."""
    with connect(console, token) as client:
        client.delete(path)
    out.print(said)
