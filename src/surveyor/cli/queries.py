"""`surveyor query …`: saved asset, service and task searches, pinned to the Dashboard as
insights (`/api/v1/queries`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from surveyor.cli.client import given
from surveyor.cli.command import Api, api_command, command_group
from surveyor.cli.listing import add_delete, add_list
from surveyor.cli.render import (
    format_time,
    pointing_at_search,
    print_answer,
    shown,
)
from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.queries import QueryKind

query_app = command_group("Save searches and pin them to the Dashboard as insights.")
QUERY_ID_HELP = "The query's id (see `query list`)."
QueryId = Annotated[int, typer.Argument(min=1, help=QUERY_ID_HELP)]


def queries_table(items: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Table:
    now = now or SYSTEM_CLOCK.now()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Kind")
    table.add_column("Search", overflow="fold")
    table.add_column("Pinned")
    table.add_column("Count", justify="right")
    table.add_column("Threshold", justify="right")
    table.add_column("Counted")
    for query in items:
        count = query.get("last_count")
        over = bool(query.get("over_threshold"))
        table.add_row(
            Text(str(query["id"])),
            shown(query["name"]),
            Text(query["kind"]),
            shown(query["search"] or "(everything)"),
            Text("yes" if query["pinned"] else "no"),
            Text(
                "—" if count is None else f"{count:,}" + (" (over)" if over else ""),
                style="bold red" if over else "",
            ),
            Text("—" if query.get("threshold") is None else f"{query['threshold']:,}"),
            Text(
                format_time(query["last_counted_at"], now)
                if query.get("last_counted_at")
                else "never"
            ),
        )
    return table


@api_command(query_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="What the insight is called.")],
    search: Annotated[str, typer.Argument(help='The search, e.g. "port:22 alive:true".')],
    kind: Annotated[
        QueryKind, typer.Option("--kind", help="What it searches: asset, service or task.")
    ] = QueryKind.ASSET,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", min=0, help="Highlight the insight when its count is above."),
    ] = None,
    pin: Annotated[bool, typer.Option("--pin", help="Pin it to the Dashboard at once.")] = False,
    *,
    api: Api,
) -> None:
    """Save a search (checked by the console: a bad one is shown with a caret at its fault)."""
    with pointing_at_search(search):
        created = api.ask(
            "POST",
            "/queries",
            given(name=name, kind=kind.value, search=search, threshold=threshold, pinned=pin),
        )
    where = "pinned to the Dashboard" if created["pinned"] else "not pinned"
    print_answer(created, api.as_json, f"Saved query {created['id']} ({where}).")


add_list(
    query_app,
    "/queries",
    queries_table,
    help="Show the saved queries, their latest counts and whether they are pinned.",
    empty='No saved queries; save one with `surveyor query create NAME "SEARCH" --pin`.',
)


@api_command(query_app, "pin")
def pin(
    query_id: QueryId,
    off: Annotated[bool, typer.Option("--off", help="Unpin it instead.")] = False,
    *,
    api: Api,
) -> None:
    """Pin a saved query to the Dashboard as an insight (or take it off with --off)."""
    with api.connect() as client:
        answer = client.request("POST", f"/queries/{query_id}/{'unpin' if off else 'pin'}")
    said = "taken off the Dashboard" if off else "pinned to the Dashboard"
    print_answer(answer, api.as_json, f"Query {query_id} is {said}.")


add_delete(
    query_app,
    "delete",
    "/queries",
    argument="query_id",
    argument_help=QUERY_ID_HELP,
    help="Delete a saved query and its history of counts.",
    said="Deleted query {id}.",
)
