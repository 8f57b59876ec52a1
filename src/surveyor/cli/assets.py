"""`surveyor asset …`: search the inventory and inspect one asset, through the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from surveyor.cli.command import Api, api_command, command_group
from surveyor.cli.exports import Format, OutputFile, download
from surveyor.cli.listing import AllPages, print_item
from surveyor.cli.render import (
    MISSING,
    dim,
    err,
    format_time,
    out,
    pointing_at_search,
    print_json,
    print_page_hint,
    shown,
)
from surveyor.core.clock import SYSTEM_CLOCK

if TYPE_CHECKING:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

asset_app = command_group("Search the asset inventory and inspect assets.")

AssetId = Annotated[int, typer.Argument(min=1, help="The asset's id.")]


def _alive_text(alive: bool) -> Text:
    from rich.text import Text

    return Text("online", style="green") if alive else Text("offline", style="red")


def asset_table(items: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Table:
    """One row per asset: where it is, what it is, what it answers on."""
    from rich.table import Table
    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Address", no_wrap=True)
    table.add_column("Hostname", overflow="fold")
    table.add_column("MAC", no_wrap=True)
    table.add_column("OS", overflow="fold")
    table.add_column("Site", overflow="fold")
    table.add_column("State", no_wrap=True)
    table.add_column("Ports", overflow="fold")
    table.add_column("Last seen")
    for asset in items:
        table.add_row(
            Text(str(asset["id"])),
            Text(asset["address"]),
            shown(asset.get("hostname") or MISSING),
            shown(asset.get("mac") or MISSING),
            shown(asset.get("os") or MISSING),
            shown(asset.get("site") or MISSING),
            _alive_text(bool(asset["alive"])),
            Text(", ".join(port.split(" ")[0] for port in asset.get("ports") or []) or MISSING),
            Text(format_time(asset.get("last_seen"), now)),
        )
    return table


def _services_table(services: Iterable[Mapping[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold", title="Services", title_justify="left")
    table.add_column("Port", justify="right", no_wrap=True)
    table.add_column("Service", no_wrap=True)
    table.add_column("Product", overflow="fold")
    table.add_column("Details", overflow="fold")
    for service in services:
        details = []
        if service.get("http_status") is not None:
            title = service.get("http_title") or ""
            details.append(f"HTTP {service['http_status']} {title}".strip())
        if service.get("tls_subject"):
            details.append(f"TLS {service['tls_subject']}")
        if service.get("banner") and not details:
            details.append(service["banner"].splitlines()[0][:120])
        table.add_row(
            Text(f"{service['port']}/{service['proto']}"),
            shown(service.get("name") or MISSING),
            shown(
                " ".join(filter(None, (service.get("product"), service.get("version")))) or MISSING
            ),
            shown("; ".join(details) or MISSING),
        )
    return table


def _history_table(history: Iterable[Mapping[str, Any]], now: datetime) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold", title="History", title_justify="left")
    table.add_column("Seen")
    table.add_column("Task", justify="right")
    table.add_column("Change")
    table.add_column("Details", overflow="fold")
    for change in history:
        table.add_row(
            Text(format_time(change.get("observed_at"), now)),
            Text(str(change["task_id"])),
            Text(change["kind"]),
            shown(describe_details(change.get("details") or {})),
        )
    return table


def describe_details(details: Mapping[str, Any]) -> str:
    """A change's details in one line: `services +tcp/80 http -tcp/22 ssh; os Linux → BSD`."""
    parts = []
    for key, value in details.items():
        if isinstance(value, Mapping) and ("added" in value or "removed" in value):
            changed = [f"+{item}" for item in value.get("added", [])]
            changed += [f"-{item}" for item in value.get("removed", [])]
            changed += [f"~{item['service']}" for item in value.get("changed", [])]
            parts.append(f"{key} {' '.join(changed)}")
        elif isinstance(value, Mapping) and "before" in value:
            parts.append(f"{key} {value['before'] or MISSING} → {value['after'] or MISSING}")
        elif isinstance(value, list):
            parts.append(f"{key} {', '.join(map(str, value))}")
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def _sources_text(sources: Iterable[Mapping[str, Any]], now: datetime) -> str | None:
    """`ldap (first 2 d ago, last 1 h ago); scan (...)`: each source that saw an asset."""
    said = [
        f"{source['source']} (first {format_time(source.get('first_seen'), now)}, "
        f"last {format_time(source.get('last_seen'), now)})"
        for source in sources
    ]
    return "; ".join(said) or None


def asset_panel(asset: Mapping[str, Any], now: datetime | None = None) -> Panel:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, Text | str | None]] = [
        ("State", _alive_text(bool(asset["alive"]))),
        ("Addresses", ", ".join(asset.get("addresses") or []) or None),
        ("Names", ", ".join(asset.get("hostnames") or []) or None),
        ("MAC", asset.get("mac")),
        ("OS", asset.get("os") or None),
        ("Site", f"{asset.get('site')} (id {asset['site_id']})"),
        ("First seen", format_time(asset.get("first_seen"), now)),
        ("Last seen", format_time(asset.get("last_seen"), now)),
        ("Changed", format_time(asset.get("changed_at"), now)),
        ("Last task", str(asset["last_task_id"]) if asset.get("last_task_id") else None),
        ("Outlier score", str(asset["outlier"]) if asset.get("outlier") is not None else None),
        ("Sources", _sources_text(asset.get("sources") or [], now)),
    ]
    for label, value in rows:
        if value is not None:
            grid.add_row(label, value if isinstance(value, Text) else shown(value))
    parts: list[Any] = [grid]
    if asset.get("services"):
        parts += [Text(""), _services_table(asset["services"])]
    if asset.get("history"):
        parts += [Text(""), _history_table(asset["history"], now)]
    title = Text(f"Asset {asset['id']}: ")
    title.append_text(shown(asset.get("hostname") or asset["address"], style="bold"))
    return Panel(Group(*parts), title=title, title_align="left", border_style="blue", expand=False)


@api_command(asset_app, "list")
def list_assets(
    search: Annotated[
        str | None,
        typer.Argument(help="A search query, e.g. 'port:22 alive:true' or 'site:HQ os:windows'."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Assets per page.")] = 50,
    all_pages: AllPages = False,
    *,
    api: Api,
) -> None:
    """List assets in address order, narrowed by a search."""
    with api.connect() as client, pointing_at_search(search):
        items, more = client.page("/assets", limit=limit, every_page=all_pages, search=search)
    if api.as_json:
        print_json(items)
        return
    if not items:
        out.print(dim("No asset matches the search." if search else "No assets yet."))
        return
    out.print(asset_table(items))
    if more:
        print_page_hint(len(items))


@api_command(asset_app, "show")
def show_asset(asset_id: AssetId, *, api: Api) -> None:
    """Show one asset: its addresses, names, services and latest changes."""
    print_item(api, f"/assets/{asset_id}", lambda _, asset: asset_panel(asset))


@api_command(asset_app, "export", json=False)
def export_assets(
    output: OutputFile,
    search: Annotated[
        str | None, typer.Option("--search", help="Export only what this search finds.")
    ] = None,
    export_format: Annotated[
        Format, typer.Option("--format", help="csv (for spreadsheets) or jsonl.")
    ] = "csv",
    *,
    api: Api,
) -> None:
    """Export the inventory (or what a search finds) as CSV or JSONL."""
    size = download(
        "/assets/export",
        output,
        what="Exporting assets",
        params={"search": search, "format": export_format},
        api=api,
    )
    err.print(f"Wrote {size:,} bytes of {export_format.upper()} to {output}")
