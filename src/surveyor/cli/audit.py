"""`surveyor audit …`: who did what to which object in the organization (admins only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from surveyor.cli.command import Api, api_command, command_group
from surveyor.cli.listing import AllPages
from surveyor.cli.render import (
    MISSING,
    format_time,
    out,
    print_json,
    print_page_hint,
)
from surveyor.cli.tasks import WHEN_FORMATS, when_option
from surveyor.core.clock import SYSTEM_CLOCK

audit_app = command_group(
    "The organization's audit trail: who created, edited, stopped or removed what (admins only)."
)


def _when(flag: str, meaning: str) -> Any:
    return when_option(flag, f"{meaning} ({WHEN_FORMATS}).")


def details_text(details: Mapping[str, Any]) -> str:
    """An entry's details as `key: value` pairs (lists joined with commas)."""
    parts = []
    for key, value in details.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def audit_table(items: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Table:
    now = now or SYSTEM_CLOCK.now()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("When")
    table.add_column("Actor", overflow="fold")
    table.add_column("Action", no_wrap=True)
    table.add_column("Object", no_wrap=True)
    table.add_column("Details", overflow="fold")
    for entry in items:
        kind = entry["object_type"].replace("_", " ")
        target = f"{kind} {entry['object_id']}" if entry.get("object_id") else kind
        table.add_row(
            Text(format_time(entry["at"], now)),
            Text(entry["actor"]),
            Text(entry["action"]),
            Text(target),
            Text(details_text(entry.get("details") or {}) or MISSING),
        )
    return table


@api_command(audit_app, "list")
def list_entries(
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who did it: an e-mail address, explorer:NAME or system."),
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="What they did, e.g. create, stop, delete.")
    ] = None,
    object_type: Annotated[
        str | None,
        typer.Option("--object-type", help="The kind of object, e.g. task, site, hosted_zone."),
    ] = None,
    object_id: Annotated[
        int | None, typer.Option("--object-id", min=1, help="The object's id.")
    ] = None,
    since: Annotated[datetime | None, _when("--since", "Entries at or after this time")] = None,
    until: Annotated[datetime | None, _when("--until", "Entries before this time")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Entries per page.")] = 50,
    all_pages: AllPages = False,
    *,
    api: Api,
) -> None:
    """Show the audit trail, newest first; the options narrow it."""
    filters = {
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    with api.connect() as client:
        items, more = client.page("/audit", limit=limit, every_page=all_pages, **filters)
    if api.as_json:
        print_json(items)
        return
    if not items:
        narrowed = any(value is not None for value in filters.values())
        out.print(
            Text("No entry matches." if narrowed else "The audit trail is empty.", style="dim")
        )
        return
    out.print(audit_table(items))
    if more:
        print_page_hint(len(items), "newest")
