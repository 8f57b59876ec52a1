"""`surveyor token …`: your API tokens for scripts and automation."""

from __future__ import annotations

from typing import Annotated

import typer

from surveyor.cli.client import given
from surveyor.cli.command import Api, api_command
from surveyor.cli.listing import add_delete, add_list
from surveyor.cli.render import (
    new_token_panel,
    out,
    print_json,
    tokens_table,
)

token_app = typer.Typer(help="Create, list and delete your API tokens.", no_args_is_help=True)


@api_command(token_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    expires_days: Annotated[
        int | None,
        typer.Option("--expires-days", min=1, max=3650, help="Expire after this many days."),
    ] = None,
    *,
    api: Api,
) -> None:
    """Create an API token with your role; it is shown only this once."""
    created = api.ask("POST", "/tokens", given(name=name, expires_in_days=expires_days))
    if api.as_json:
        print_json(created)
        return
    out.print(new_token_panel(created))


add_list(
    token_app,
    "/tokens",
    tokens_table,
    help="Show your API tokens (never their secrets).",
    empty="You have no API tokens; create one with `surveyor token create NAME`.",
)


add_delete(
    token_app,
    "delete",
    "/tokens",
    argument="token_id",
    argument_help="The token's id (see `token list`).",
    help="Revoke an API token at once.",
    said="Deleted token {id}; programs using it can no longer log in.",
)
