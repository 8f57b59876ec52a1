"""`surveyor login` and `surveyor logout`: a session token kept in the CLI's config file."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from surveyor.cli.client import EXIT_AUTH, EXIT_USAGE, ApiClient, CliError, ConsoleOption
from surveyor.cli.config import (
    TOKEN_VARIABLE,
    ConfigError,
    config_path,
    read_config,
    resolve_console,
    write_config,
)
from surveyor.cli.render import err, format_time, reports_errors

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    if not password:
        raise CliError("no password given", EXIT_USAGE)
    return password


@reports_errors
def login(
    console: ConsoleOption = None,
    email: Annotated[str | None, typer.Option("--email", help="Your email address.")] = None,
    password_stdin: PasswordStdin = False,
    organization: Annotated[
        int | None,
        typer.Option(
            "--organization",
            min=1,
            help="The id of the organization to work in (default: your first one).",
        ),
    ] = None,
) -> None:
    """Log in with your email and password and keep the session for later commands."""
    path = config_path()
    try:
        stored = read_config(path)
        target, _ = resolve_console(console, os.environ, stored)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    email = email or typer.prompt("Email", default=stored.get("email") or None)
    password = read_password(password_stdin)
    with ApiClient(target) as client:
        try:
            credentials: dict[str, Any] = {"email": email, "password": password}
            if organization is not None:
                credentials["organization_id"] = organization
            session = client.post("/auth/login", credentials)
        except CliError as exc:
            if exc.exit_code == EXIT_AUTH:
                raise CliError(exc.message, EXIT_AUTH, code=exc.code, status=exc.status) from exc
            raise
    write_config(
        path,
        {
            "console": target,
            "token": session["token"],
            "email": session["email"],
            "expires_at": session["expires_at"],
        },
    )
    err.print(
        f"Logged in to [bold]{escape(target)}[/bold] as "
        f"[bold]{escape(session['email'])}[/bold] ({escape(session['role'])}); "
        f"the session expires {format_time(session['expires_at'])}.",
        highlight=False,
    )
    err.print(f"Saved to {escape(str(path))}.", highlight=False)
    if os.environ.get(TOKEN_VARIABLE):
        err.print(
            f"[yellow]Note: {TOKEN_VARIABLE} is set and takes precedence over this "
            "session.[/yellow]"
        )


@reports_errors
def logout() -> None:
    """Forget the saved session token (the console URL stays)."""
    path = config_path()
    try:
        stored = read_config(path)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if not stored.get("token"):
        err.print(f"No saved session in {escape(str(path))}.", highlight=False)
    else:
        write_config(path, {"console": stored.get("console"), "email": stored.get("email")})
        err.print(
            f"Logged out: removed the session token from {escape(str(path))}.", highlight=False
        )
    if os.environ.get(TOKEN_VARIABLE):
        err.print(f"[yellow]Note: {TOKEN_VARIABLE} is still set in this shell.[/yellow]")
