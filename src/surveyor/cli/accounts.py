"""`surveyor user …` (the organization's members and their roles) and `surveyor site …`
(network segments with their scan scope). Both need the admin role to change anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import typer
from rich.panel import Panel
from rich.table import Table

from surveyor.cli.client import EXIT_USAGE, CliError, ConsoleOption, TokenOption, connect
from surveyor.cli.listing import add_list, add_show
from surveyor.cli.render import (
    MISSING,
    JsonOption,
    format_time,
    out,
    print_json,
    reports_errors,
    shown,
)
from surveyor.cli.session import read_password

user_app = typer.Typer(
    help="The organization's users and their roles (admins only).", no_args_is_help=True
)
site_app = typer.Typer(
    help="Sites: network segments, each with its own scan scope and inventory.",
    no_args_is_help=True,
)

UserId = Annotated[int, typer.Argument(min=1, help="The user's id (see `user list`).")]
SiteId = Annotated[int, typer.Argument(min=1, help="The site's id (see `site list`).")]
RoleName = Literal["viewer", "operator", "admin"]
RoleOption = Annotated[
    RoleName | None,
    typer.Option("--role", help="viewer: read; operator: create and stop tasks; admin: all."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]
Scope = Annotated[
    str | None,
    typer.Option("--scope", help="Addresses, ranges and networks the site's scans cover."),
]
Excludes = Annotated[
    str | None, typer.Option("--excludes", help="Addresses no scan of the site may touch.")
]
AllowedScope = Annotated[
    str | None,
    typer.Option(
        "--allowed-scope",
        help="Where operators may scan (default: the scope); '' resets it to the scope.",
    ),
]


def _given(**options: Any) -> dict[str, Any]:
    """The options the user passed (None means not given)."""
    return {key: value for key, value in options.items() if value is not None}


def _answer(item: Mapping[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        print_json(item)
    else:
        out.print(shown(text))


def users_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for title in ("ID", "Email", "Name", "Role", "State", "Last login"):
        table.add_column(title, justify="right" if title == "ID" else "left", overflow="fold")
    for item in items:
        table.add_row(
            str(item["id"]),
            shown(item["email"]),
            shown(item["name"] or MISSING),
            item["role"] + (" (superuser)" if item["is_superuser"] else ""),
            "active" if item["is_active"] else "deactivated",
            format_time(item["last_login_at"]) if item["last_login_at"] else "never",
        )
    return table


add_list(user_app, "/users", users_table, help="The organization's members with their roles.")
add_show(user_app, "/users", users_table, help="One member.")


@user_app.command("create")
@reports_errors
def create_user(
    email: Annotated[str, typer.Argument(help="The new user's email address.")],
    role: RoleOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Their full name.")] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    console: ConsoleOption = None,
    token: TokenOption = None,
) -> None:
    """Add a user (viewer unless --role says otherwise). Without --password-stdin a password
    is generated and shown once; an existing account just joins the organization."""
    body = _given(email=email, role=role, name=name)
    if password_stdin:
        body["password"] = read_password(True)
    with connect(console, token) as client:
        created = client.post("/users", body)
    if as_json:
        print_json(created)
        return
    text = f"Added {created['email']} (user {created['id']}) as {created['role']}."
    out.print(shown(text))
    if created.get("generated_password"):
        out.print(
            Panel(
                f"[bold]{created['generated_password']}[/bold]\n\n"
                "Give it to them safely; it is not shown again.",
                title="Their password",
                expand=False,
            )
        )


@user_app.command("edit")
@reports_errors
def edit_user(
    user_id: UserId,
    role: RoleOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A new full name.")] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--deactivated", help="Let them sign in, or not."),
    ] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    console: ConsoleOption = None,
    token: TokenOption = None,
) -> None:
    """Change a member's role, name, password, or whether they may sign in."""
    body = _given(role=role, name=name, is_active=active)
    if password_stdin:
        body["password"] = read_password(True)
    if not body:
        raise CliError(
            "nothing to change; pass --role, --name, --active/--deactivated or --password-stdin",
            EXIT_USAGE,
        )
    with connect(console, token) as client:
        item = client.request("PATCH", f"/users/{user_id}", json=body)
    _answer(item, as_json, f"Updated {item['email']} (user {item['id']}): {item['role']}.")


@user_app.command("remove")
@reports_errors
def remove_user(user_id: UserId, console: ConsoleOption = None, token: TokenOption = None) -> None:
    """Take a user out of the organization (their account and history stay)."""
    with connect(console, token) as client:
        client.delete(f"/users/{user_id}")
    out.print(f"Removed user {user_id} from the organization.")


def sites_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for title in ("ID", "Name", "Scope", "Excludes", "Allowed", "Addresses", "Description"):
        justify: Literal["left", "right"] = "right" if title in ("ID", "Addresses") else "left"
        table.add_column(title, justify=justify, overflow="fold")
    for item in items:
        table.add_row(
            str(item["id"]),
            shown(item["name"]),
            shown(item["scope"] or MISSING),
            shown(item["excludes"] or MISSING),
            shown(item.get("allowed_scope") or "the scope"),
            f"{item['scope_size']:,}",
            shown(item["description"] or ""),
        )
    return table


add_list(site_app, "/sites", sites_table, help="The organization's sites with their scope.")
add_show(site_app, "/sites", sites_table, help="One site.")


@site_app.command("create")
@reports_errors
def create_site(
    name: Annotated[str, typer.Argument(help="The site's name.")],
    scope: Scope = None,
    excludes: Excludes = None,
    allowed_scope: AllowedScope = None,
    description: Description = None,
    as_json: JsonOption = False,
    console: ConsoleOption = None,
    token: TokenOption = None,
) -> None:
    """Create a site; its scope prefills the targets of new scans, and operators scan only
    inside its allowed scope (the scope unless --allowed-scope says otherwise)."""
    body = _given(
        name=name,
        scope=scope,
        excludes=excludes,
        allowed_scope=allowed_scope,
        description=description,
    )
    with connect(console, token) as client:
        item = client.post("/sites", body)
    _answer(
        item,
        as_json,
        f"Created site {item['id']} {item['name']} ({item['scope_size']:,} addresses in scope).",
    )


@site_app.command("edit")
@reports_errors
def edit_site(
    site_id: SiteId,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    scope: Scope = None,
    excludes: Excludes = None,
    allowed_scope: AllowedScope = None,
    description: Description = None,
    as_json: JsonOption = False,
    console: ConsoleOption = None,
    token: TokenOption = None,
) -> None:
    """Rename a site or change its scope or allowed scope (future scans use the new ones)."""
    body = _given(
        name=name,
        scope=scope,
        excludes=excludes,
        allowed_scope=allowed_scope,
        description=description,
    )
    if not body:
        raise CliError(
            "nothing to change; pass --name, --scope, --excludes, --allowed-scope or --description",
            EXIT_USAGE,
        )
    with connect(console, token) as client:
        item = client.request("PATCH", f"/sites/{site_id}", json=body)
    _answer(
        item,
        as_json,
        f"Updated site {item['id']} {item['name']} ({item['scope_size']:,} addresses in scope).",
    )


@site_app.command("delete")
@reports_errors
def delete_site(site_id: SiteId, console: ConsoleOption = None, token: TokenOption = None) -> None:
    """Delete a site (refused for the organization's last site, or while its tasks run)."""
    with connect(console, token) as client:
        client.delete(f"/sites/{site_id}")
    out.print(f"Deleted site {site_id}.")
