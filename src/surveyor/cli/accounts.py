"""`surveyor user …` (the organization's members and their roles, and your own password),
`surveyor invitation …` (joining other organizations), `surveyor account …` (every account,
for superusers) and `surveyor site …` (network segments with their scan scope)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer
from rich.panel import Panel
from rich.table import Table

from surveyor.cli.client import (
    EXIT_USAGE,
    CliError,
    given,
)
from surveyor.cli.command import Api, api_command, command_group, option_group
from surveyor.cli.listing import (
    Description,
    NewName,
    add_delete,
    add_list,
    add_show,
    edit_item,
)
from surveyor.cli.render import (
    MISSING,
    folded_table,
    format_time,
    out,
    print_answer,
    print_json,
    shown,
)
from surveyor.cli.session import read_password

user_app = command_group("The organization's members and their roles, and your own password.")
invitation_app = command_group(
    "Invitations: an existing account joins an organization only when it accepts."
)
account_app = command_group("Every account, whatever its organizations (superusers only).")
site_app = command_group("Sites: network segments, each with its own scan scope and inventory.")

USER_ID_HELP = "The user's id (see `user list`)."
UserId = Annotated[int, typer.Argument(min=1, help=USER_ID_HELP)]
INVITATION_ID_HELP = "The invitation's id (see `invitation list`)."
InvitationId = Annotated[int, typer.Argument(min=1, help=INVITATION_ID_HELP)]
AccountId = Annotated[int, typer.Argument(min=1, help="The account's id (see `account list`).")]
SITE_ID_HELP = "The site's id (see `site list`)."
SiteId = Annotated[int, typer.Argument(min=1, help=SITE_ID_HELP)]
RoleName = Literal["viewer", "operator", "admin"]
ROLE_HELP = "viewer: read; operator: create and stop tasks; admin: all."
RoleOption = Annotated[RoleName | None, typer.Option("--role", help=ROLE_HELP)]
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


def users_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = folded_table("ID", "Email", "Name", "Role", "State", "Last login")
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


def _show_generated_password(password: str) -> None:
    out.print(
        Panel(
            f"[bold]{password}[/bold]\n\nGive it to them safely; it is not shown again.",
            title="Their password",
            expand=False,
        )
    )


def _with_password(body: dict[str, Any], from_stdin: bool) -> dict[str, Any]:
    """`body`, with the new password read from standard input when --password-stdin asks."""
    if from_stdin:
        body["password"] = read_password(True)
    return body


def describe_added(added: Mapping[str, Any]) -> str:
    """What adding someone did, in words."""
    if added["outcome"] == "invited":
        invitation = added["invitation"]
        return (
            f"Invited {invitation['email']} as {invitation['role']} (invitation "
            f"{invitation['id']}): the account exists, so it joins only when it accepts "
            f"(`surveyor invitation accept {invitation['id']}`), before "
            f"{format_time(invitation['expires_at'])}."
        )
    member = added["member"]
    if added["outcome"] == "joined":
        return f"You joined as {member['role']}."
    return f"Added {member['email']} (user {member['id']}) as {member['role']}."


@api_command(user_app, "invite")
def invite_user(
    email: Annotated[str, typer.Argument(help="Their email address.")],
    role: RoleOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A new account's full name.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read a new account's password from standard input."),
    ] = False,
    *,
    api: Api,
) -> None:
    """Add someone to the organization (viewer unless --role says otherwise). An email
    without an account gets a new account at once, with a password generated and shown once
    unless --password-stdin gives one; an existing account is invited and joins only when it
    accepts."""
    body = _with_password(given(email=email, role=role, name=name), password_stdin)
    added = api.ask("POST", "/users", body)
    if api.as_json:
        print_json(added)
        return
    out.print(shown(describe_added(added)))
    if added.get("generated_password"):
        _show_generated_password(added["generated_password"])


@api_command(user_app, "role")
def change_role(
    user_id: UserId, role: Annotated[RoleName, typer.Argument(help=ROLE_HELP)], *, api: Api
) -> None:
    """Change a member's role in the organization."""
    item = api.ask("PATCH", f"/users/{user_id}", {"role": role})
    print_answer(item, api.as_json, f"{item['email']} (user {item['id']}) is now {item['role']}.")


add_delete(
    user_app,
    "remove",
    "/users",
    argument="user_id",
    argument_help=USER_ID_HELP,
    help="Take a member out of the organization; their sessions and tokens here are revoked "
    "(their account, other organizations and history stay).",
    said="Removed user {id} from the organization.",
)


def _passwords(from_stdin: bool) -> tuple[str, str]:
    """The current and the new password: two lines of standard input, or prompts."""
    if from_stdin:
        current = sys.stdin.readline().rstrip("\r\n")
        new = sys.stdin.readline().rstrip("\r\n")
    else:
        current = typer.prompt("Current password", hide_input=True)
        new = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    if not current or not new:
        raise CliError(
            "give your current password and the new one"
            + (" (two lines on standard input)" if from_stdin else ""),
            EXIT_USAGE,
        )
    return current, new


@api_command(user_app, "passwd", json=False)
def change_password(
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the current password, then the new one, from two lines of standard input.",
        ),
    ] = False,
    *,
    api: Api,
) -> None:
    """Change your own password. Your other sessions and API tokens are revoked; this
    session stays signed in."""
    current, new = _passwords(password_stdin)
    passwords = {"current_password": current, "new_password": new}
    answer = api.ask("POST", "/users/me/password", passwords)
    revoked = answer["revoked_tokens"]
    noun = "session or token was" if revoked == 1 else "sessions and tokens were"
    out.print(f"Changed your password; {revoked} other {noun} revoked.")


def invitations_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = folded_table("ID", "Organization", "Email", "Role", "Invited by", "Expires")
    for item in items:
        table.add_row(
            str(item["id"]),
            item["organization_name"],
            item["email"],
            item["role"],
            item["invited_by"],
            "expired" if item["expired"] else format_time(item["expires_at"]),
        )
    return table


add_list(
    invitation_app,
    "/users/me/invitations",
    invitations_table,
    help="Invitations to you that you may still accept.",
    empty="No invitations for you.",
)


@api_command(invitation_app, "accept")
def accept_invitation(invitation_id: InvitationId, *, api: Api) -> None:
    """Join the organization that invited you."""
    joined = api.ask("POST", f"/users/me/invitations/{invitation_id}/accept")
    print_answer(
        joined,
        api.as_json,
        f"You joined {joined['organization_name']} as {joined['role']}. Work there with "
        f"`surveyor login --organization {joined['organization_id']}`.",
    )


@api_command(invitation_app, "decline", json=False)
def decline_invitation(invitation_id: InvitationId, *, api: Api) -> None:
    """Say no to an invitation."""
    api.ask("POST", f"/users/me/invitations/{invitation_id}/decline")
    out.print(f"Declined invitation {invitation_id}.")


add_list(
    invitation_app,
    "/invitations",
    invitations_table,
    help="The organization's invitations nobody has answered yet (admins).",
    empty="No pending invitations.",
    command="sent",
)


add_delete(
    invitation_app,
    "revoke",
    "/invitations",
    argument="invitation_id",
    argument_help=INVITATION_ID_HELP,
    help="Withdraw an invitation before it is accepted (admins).",
    said="Revoked invitation {id}.",
)


def accounts_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = folded_table("ID", "Email", "Name", "Organizations", "State", "Last login")
    for item in items:
        organizations = ", ".join(
            f"{m['organization_name']} ({m['role']})" for m in item["memberships"]
        )
        table.add_row(
            str(item["id"]),
            item["email"] + (" (superuser)" if item["is_superuser"] else ""),
            item["name"] or MISSING,
            organizations or MISSING,
            "active" if item["is_active"] else "deactivated",
            format_time(item["last_login_at"]) if item["last_login_at"] else "never",
        )
    return table


add_list(account_app, "/accounts", accounts_table, help="Every account and its organizations.")
add_show(account_app, "/accounts", accounts_table, help="One account.")


@api_command(account_app, "edit")
def edit_account(
    account_id: AccountId,
    name: Annotated[str | None, typer.Option("--name", help="A new full name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="A new email address.")] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--deactivated", help="Let them sign in, or not."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read a new password from standard input."),
    ] = False,
    *,
    api: Api,
) -> None:
    """Change an account's name, email, password or whether it may sign in. A new password or
    a deactivation signs it out everywhere."""
    body = _with_password(given(name=name, email=email, is_active=active), password_stdin)
    item = edit_item(
        api,
        f"/accounts/{account_id}",
        body,
        options="--name, --email, --active/--deactivated or --password-stdin",
    )
    state = "active" if item["is_active"] else "deactivated"
    print_answer(item, api.as_json, f"Updated account {item['id']} {item['email']} ({state}).")


def sites_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = folded_table(
        "ID",
        "Name",
        "Scope",
        "Excludes",
        "Allowed",
        "Addresses",
        "Description",
        right=("ID", "Addresses"),
    )
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


def _print_site(item: Mapping[str, Any], as_json: bool, done: str) -> None:
    print_answer(
        item,
        as_json,
        f"{done} site {item['id']} {item['name']} ({item['scope_size']:,} addresses in scope).",
    )


add_list(site_app, "/sites", sites_table, help="The organization's sites with their scope.")
add_show(site_app, "/sites", sites_table, help="One site.")


@dataclass(frozen=True)
class SiteFields:
    """The options `site create` and `site edit` set a site's scope and description with
    (each field's annotation is its option, offered by `option_group`): None where not
    given."""

    scope: Scope = None
    excludes: Excludes = None
    allowed_scope: AllowedScope = None
    description: Description = None

    def body(self) -> dict[str, Any]:
        """The fields given, as the API's request body names them."""
        return given(**dataclasses.asdict(self))


#: A command's parameter `fields: SiteFields`, offered as the site's options.
site_options = option_group("fields", SiteFields)


@api_command(site_app, "create")
@site_options
def create_site(
    name: Annotated[str, typer.Argument(help="The site's name.")],
    *,
    fields: SiteFields,
    api: Api,
) -> None:
    """Create a site; its scope prefills the targets of new scans, and operators scan only
    inside its allowed scope (the scope unless --allowed-scope says otherwise)."""
    item = api.ask("POST", "/sites", {"name": name, **fields.body()})
    _print_site(item, api.as_json, "Created")


@api_command(site_app, "edit")
@site_options
def edit_site(
    site_id: SiteId,
    name: NewName = None,
    *,
    fields: SiteFields,
    api: Api,
) -> None:
    """Rename a site or change its scope or allowed scope (future scans use the new ones)."""
    body = given(name=name) | fields.body()
    item = edit_item(
        api,
        f"/sites/{site_id}",
        body,
        options="--name, --scope, --excludes, --allowed-scope or --description",
    )
    _print_site(item, api.as_json, "Updated")


add_delete(
    site_app,
    "delete",
    "/sites",
    argument="site_id",
    argument_help=SITE_ID_HELP,
    help="Delete a site (refused for the organization's last site, or while its tasks run).",
    said="Deleted site {id}.",
)
