"""`surveyor explorer` (run one, or list and manage them), `surveyor zone …` (hosted zones)
and `surveyor enrollment …` (the tokens explorers enroll with)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from surveyor.cli.client import (
    EXIT_AUTH,
    EXIT_REFUSED,
    EXIT_USAGE,
    ApiClient,
    CliError,
    ConsoleOption,
    TokenOption,
    connect,
    given,
)
from surveyor.cli.command import Api, api_command, command_group
from surveyor.cli.listing import (
    Description,
    NewName,
    add_delete,
    add_list,
    edit_item,
    print_item,
)
from surveyor.cli.logs import LogFormat, LogFormatOption, configure_logging
from surveyor.cli.render import (
    MISSING,
    JsonOption,
    err,
    folded_table,
    format_time,
    out,
    print_answer,
    print_json,
    reports_errors,
    shown,
)

if TYPE_CHECKING:
    from surveyor.explorer.client import ExplorerClient
    from surveyor.explorer.identity import Identity

explorer_app = typer.Typer(
    help="Run an explorer (with --console and --token), or list and manage the console's "
    "explorers.",
)
zone_app = command_group("Hosted zones: pools of explorers with a concurrency limit.")
enrollment_app = command_group("Enrollment tokens: how new explorers join an organization.")

ExplorerId = Annotated[int, typer.Argument(min=1, help="The explorer's id.")]
ZONE_ID_HELP = "The hosted zone's id."
ZoneId = Annotated[int, typer.Argument(min=1, help=ZONE_ID_HELP)]
STOP_SECONDS = 10.0


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/surveyor/explorer`, or `~/.local/state/surveyor/explorer`."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "surveyor" / "explorer"


def _enroll(
    client: ExplorerClient, token: str, name: str | None, shutdown: threading.Event
) -> Identity:
    from surveyor.explorer.agent import Backoff
    from surveyor.explorer.client import ConsoleUnreachable, ExplorerRejected, Refused
    from surveyor.explorer.host import describe_host
    from surveyor.explorer.identity import Identity

    backoff = Backoff(0.5, 30.0)
    while True:
        try:
            enrolled = client.enroll(token, describe_host(client.console), name=name)
        except ExplorerRejected as exc:
            raise CliError(f"enrollment refused: {exc}", EXIT_AUTH) from exc
        except Refused as exc:
            raise CliError(f"enrollment refused: {exc}") from exc
        except ConsoleUnreachable as exc:
            delay = backoff.next_delay()
            err.print(f"{exc}; trying again in {delay:.0f} s")
            if shutdown.wait(delay):
                raise typer.Exit(1) from exc
            continue
        return Identity(
            console=",".join(client.consoles),
            explorer_id=enrolled.explorer_id,
            organization_id=enrolled.organization_id,
            name=enrolled.name,
            secret=enrolled.secret,
        )


def run_explorer(
    console: str | list[str] | None,
    token: str | None,
    name: str | None,
    state_dir: Path,
    verbose: bool,
    log_format: LogFormat | None = None,
) -> None:
    """Enroll if this state directory has no identity yet, then run scans until stopped."""
    from surveyor.explorer.agent import Agent
    from surveyor.explorer.client import ExplorerClient, ExplorerRejected, console_urls
    from surveyor.explorer.host import describe_host
    from surveyor.explorer.identity import load_identity, save_identity

    configure_logging(log_format, level=logging.DEBUG if verbose else logging.INFO)
    try:
        identity = load_identity(state_dir)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    urls = console_urls(console or []) or console_urls(identity.console if identity else [])
    if not urls:
        raise CliError(
            "which console? pass --console URL (or set SURVEYOR_URL)",
            EXIT_USAGE,
        )
    if identity is None and not token:
        raise CliError(
            f"this explorer is not enrolled yet ({state_dir} holds no identity)",
            EXIT_USAGE,
            hint="pass --token with an enrollment token from `surveyor enrollment create`",
        )
    shutdown = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        shutdown.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = urls[0]
    with ExplorerClient(urls) as client:
        if identity is None:
            assert token is not None
            identity = _enroll(client, token, name, shutdown)
            save_identity(state_dir, identity)
            err.print(
                f"Enrolled as explorer [bold]{identity.name}[/bold] (id {identity.explorer_id}); "
                f"its identity is in {state_dir}"
            )
        elif token:
            err.print(f"Already enrolled as '{identity.name}'; the token was not needed.")
        client.secret = identity.secret
        agent = Agent(client, state_dir, host=lambda: describe_host(url), shutdown=shutdown)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                agent.run()
            except BaseException as exc:
                failure.append(exc)
                shutdown.set()

        worker = threading.Thread(target=work, name="surveyor-explorer", daemon=True)
        worker.start()
        while worker.is_alive() and not shutdown.wait(0.5):
            pass
        # A scan in hand gets time for its last report; an idle poll is simply abandoned.
        worker.join(STOP_SECONDS if agent.busy else 0.2)
    if failure and isinstance(failure[0], ExplorerRejected):
        raise CliError(
            f"the console no longer accepts this explorer: {failure[0]}",
            EXIT_AUTH,
            hint=f"remove {state_dir} and enroll again with a new token",
        )
    if failure:
        raise failure[0]


@explorer_app.callback(invoke_without_command=True)
@reports_errors
def explorer(
    ctx: typer.Context,
    console: Annotated[
        list[str] | None,
        typer.Option(
            "--console",
            metavar="URL",
            envvar="SURVEYOR_URL",
            help="The console to work for. Repeat it (or give a comma list) for the consoles "
            "of one deployment: the explorer moves to the next when one stops answering.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="SURVEYOR_ENROLLMENT_TOKEN",
            help="An enrollment token (needed only the first time).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name to enroll under (default: this host's name)."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where the explorer keeps its identity "
            "(default: ~/.local/state/surveyor/explorer).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log more.")] = False,
    log_format: LogFormatOption = None,
) -> None:
    """Run an explorer: `surveyor explorer --console URL [--console URL2] --token T`."""
    if ctx.invoked_subcommand is not None:
        return
    run_explorer(
        console, token, name, (state_dir or default_state_dir()).resolve(), verbose, log_format
    )


def _names(client: ApiClient, path: str) -> dict[int, str]:
    return {item["id"]: item["name"] for item in client.get(path, limit=1000)}


def explorers_table(
    items: Iterable[Mapping[str, Any]], sites: Mapping[int, str], zones: Mapping[int, str]
) -> Table:
    table = folded_table(
        "ID", "Name", "State", "Last check-in", "Version", "Host", "Site", "Zone", right=()
    )
    table.add_column("Task", justify="right")
    for item in items:
        table.add_row(
            str(item["id"]),
            shown(item["name"]),
            Text("online", style="green") if item["online"] else Text("offline", style="red"),
            format_time(item.get("last_checkin_at")),
            shown(item.get("version") or MISSING),
            shown(item.get("hostname") or MISSING),
            shown(sites.get(item["site_id"], MISSING) if item.get("site_id") else "any"),
            shown(
                zones.get(item["hosted_zone_id"], MISSING)
                if item.get("hosted_zone_id")
                else MISSING
            ),
            str(item["current_task_id"]) if item.get("current_task_id") else MISSING,
        )
    return table


def explorer_panel(
    item: Mapping[str, Any], sites: Mapping[int, str], zones: Mapping[int, str]
) -> Panel:
    state = "online" if item["online"] else "offline"
    site = sites.get(item["site_id"], str(item["site_id"])) if item.get("site_id") else None
    zone = item.get("hosted_zone_id")
    rows = [
        ("State", f"{state}, last check-in {format_time(item.get('last_checkin_at'))}"),
        ("Version", item.get("version") or MISSING),
        ("Host", item.get("hostname") or MISSING),
        ("OS", item.get("os") or MISSING),
        ("Addresses", ", ".join(item.get("addresses") or []) or MISSING),
        ("Site", site or "any site (it has none)"),
        ("Hosted zone", zones.get(zone, str(zone)) if zone else MISSING),
        ("Current task", str(item["current_task_id"]) if item.get("current_task_id") else MISSING),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, shown(value))
    title = Text(f"Explorer {item['id']}: ")
    title.append_text(shown(item["name"]))
    return Panel(grid, title=title, title_align="left")


@explorer_app.command("list")
@reports_errors
def list_explorers(
    as_json: JsonOption = False, console: ConsoleOption = None, token: TokenOption = None
) -> None:
    """The organization's explorers: online or not, version, host, site, zone, task."""
    with connect(console, token) as client:
        items = client.get("/explorers", limit=1000)
        if as_json:
            print_json(items)
            return
        if not items:
            out.print("No explorers yet; enroll one with `surveyor enrollment create NAME`.")
            return
        out.print(explorers_table(items, _names(client, "/sites"), _names(client, "/hosted-zones")))


@api_command(explorer_app, "show")
def show_explorer(explorer_id: ExplorerId, *, api: Api) -> None:
    """One explorer in detail."""
    print_item(
        api,
        f"/explorers/{explorer_id}",
        lambda client, item: explorer_panel(
            item, _names(client, "/sites"), _names(client, "/hosted-zones")
        ),
    )


@api_command(explorer_app, "edit")
def edit_explorer(
    explorer_id: ExplorerId,
    name: NewName = None,
    site: Annotated[int | None, typer.Option("--site", min=1, help="Site id.")] = None,
    no_site: Annotated[
        bool, typer.Option("--no-site", help="No site: it serves every site.")
    ] = False,
    zone: Annotated[int | None, typer.Option("--zone", min=1, help="Hosted zone id.")] = None,
    no_zone: Annotated[bool, typer.Option("--no-zone", help="Take it out of its zone.")] = False,
    *,
    api: Api,
) -> None:
    """Rename an explorer, or change its site or hosted zone."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if site is not None or no_site:
        body["site_id"] = None if no_site else site
    if zone is not None or no_zone:
        body["hosted_zone_id"] = 0 if no_zone else zone
    item = edit_item(
        api,
        f"/explorers/{explorer_id}",
        body,
        options="--name, --site, --no-site, --zone or --no-zone",
        exit_code=EXIT_REFUSED,
    )
    print_answer(item, api.as_json, f"Updated explorer {item['id']} {item['name']}.")


add_delete(
    explorer_app,
    "delete",
    "/explorers",
    argument="explorer_id",
    argument_help="The explorer's id.",
    help="Delete an explorer; its secret stops working at once.",
    said="Deleted explorer {id}; it can no longer connect.",
)


def zones_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right")
    table.add_column("Name", overflow="fold")
    table.add_column("Max concurrent", justify="right")
    table.add_column("Explorers", justify="right")
    table.add_column("Description", overflow="fold")
    for item in items:
        table.add_row(
            str(item["id"]),
            shown(item["name"]),
            str(item["max_concurrent"]),
            str(item["explorer_count"]),
            shown(item.get("description") or ""),
        )
    return table


MaxConcurrent = Annotated[
    int | None,
    typer.Option("--max-concurrent", min=1, max=10_000, help="Scans the zone runs at once."),
]


add_list(
    zone_app,
    "/hosted-zones",
    zones_table,
    help="The organization's hosted zones.",
    empty="No hosted zones yet; create one with `surveyor zone create NAME`.",
)


@api_command(zone_app, "create")
def create_zone(
    name: Annotated[str, typer.Argument(help="The zone's name.")],
    max_concurrent: MaxConcurrent = None,
    description: Description = None,
    *,
    api: Api,
) -> None:
    """Create a hosted zone; add explorers with `surveyor explorer edit ID --zone ZONE`."""
    body = given(name=name, max_concurrent=max_concurrent, description=description)
    item = api.ask("POST", "/hosted-zones", body)
    print_answer(
        item,
        api.as_json,
        f"Created hosted zone {item['id']} {item['name']} "
        f"(up to {item['max_concurrent']} scans at once).",
    )


@api_command(zone_app, "edit")
def edit_zone(
    zone_id: ZoneId,
    name: NewName = None,
    max_concurrent: MaxConcurrent = None,
    description: Description = None,
    *,
    api: Api,
) -> None:
    """Rename a hosted zone or change its limit."""
    body = given(name=name, max_concurrent=max_concurrent, description=description)
    item = edit_item(
        api,
        f"/hosted-zones/{zone_id}",
        body,
        options="--name, --max-concurrent or --description",
        exit_code=EXIT_REFUSED,
    )
    print_answer(item, api.as_json, f"Updated hosted zone {item['id']} {item['name']}.")


add_delete(
    zone_app,
    "delete",
    "/hosted-zones",
    argument="zone_id",
    argument_help=ZONE_ID_HELP,
    help="Delete a hosted zone (its explorers stay, outside any zone).",
    said="Deleted hosted zone {id}.",
)


_TOKEN_STATE_STYLES = {
    "usable": "green",
    "revoked": "red",
    "expired": "yellow",
    "used_up": "yellow",
}


def enrollment_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = folded_table(
        "ID", "Name", "State", "Uses", "Last used", "Expires", "Created by", right=()
    )
    for item in items:
        state = item.get("state") or ("usable" if item["usable"] else "revoked")
        uses = str(item["uses"])
        if item.get("max_uses") is not None:
            uses += f" of {item['max_uses']}"
        table.add_row(
            str(item["id"]),
            shown(item["name"]),
            Text(state.replace("_", " "), style=_TOKEN_STATE_STYLES.get(state, "")),
            uses,
            format_time(item.get("last_used_at")) if item.get("last_used_at") else "never",
            format_time(item.get("expires_at")) if item.get("expires_at") else "never",
            shown(item["created_by"]),
        )
    return table


@api_command(enrollment_app, "create")
def create_enrollment(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    site: Annotated[
        int | None, typer.Option("--site", min=1, help="Site of the explorers enrolled with it.")
    ] = None,
    zone: Annotated[
        int | None, typer.Option("--zone", min=1, help="Hosted zone they join.")
    ] = None,
    expires_days: Annotated[
        int | None,
        typer.Option(
            "--expires-days", min=1, max=3650, help="Expire after this many days (default 7)."
        ),
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="Never expire (until revoked).")
    ] = False,
    max_uses: Annotated[
        int | None,
        typer.Option(
            "--max-uses", min=1, max=1_000_000, help="How many explorers may enroll with it."
        ),
    ] = None,
    *,
    api: Api,
) -> None:
    """Create an enrollment token (valid 7 days unless told otherwise); it is shown only
    this once."""
    if no_expiry and expires_days is not None:
        raise CliError("choose --expires-days or --no-expiry, not both", EXIT_USAGE)
    body = given(name=name, site_id=site, hosted_zone_id=zone, max_uses=max_uses)
    if expires_days is not None or no_expiry:
        body["expires_in_days"] = expires_days  # None (--no-expiry): it never expires
    with api.connect() as client:
        created = client.post("/enrollment-tokens", body)
        url = client.console
    if api.as_json:
        print_json(created)
        return
    limits = (
        f"It expires {format_time(created['expires_at'])}"
        if created.get("expires_at")
        else "It never expires (revoke it when it is no longer needed)"
    )
    if created.get("max_uses") is not None:
        limits += f" and enrolls at most {created['max_uses']} explorer(s)"
    body_text = Text.assemble(
        (created["token"], "bold"),
        f"\n\n{limits}.\nStore it now: it will not be shown again. Run an explorer with it:\n",
        (f"  surveyor explorer --console {url} --token {created['token']}", "cyan"),
    )
    out.print(
        Panel(
            body_text,
            title=shown(f"Enrollment token {created['id']}: {created['name']}"),
            title_align="left",
            border_style="green",
            expand=False,
        )
    )


add_list(
    enrollment_app,
    "/enrollment-tokens",
    enrollment_table,
    help="The organization's enrollment tokens (never their secrets).",
    empty="No enrollment tokens; create one with `surveyor enrollment create NAME`.",
)


add_delete(
    enrollment_app,
    "revoke",
    "/enrollment-tokens",
    argument="token_id",
    argument_help="The token's id.",
    help="Revoke an enrollment token; explorers already enrolled keep working.",
    said="Revoked enrollment token {id}; no new explorer can enroll with it.",
)
