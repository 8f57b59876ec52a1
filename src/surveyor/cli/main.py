"""The `surveyor` command."""

from __future__ import annotations

from collections.abc import Callable

import typer

from surveyor.cli import (
    accounts,
    assets,
    audit,
    credentials,
    doctor,
    explorer,
    exports,  # noqa: F401  (adds `asset export`, `task data` and `task changes`)
    imports,
    queries,
    scan,
    server,
    session,
    tasks,
    tokens,
    worker,
)

app = typer.Typer(
    name="surveyor",
    help="Surveyor: network asset discovery console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: The commands, then the groups of commands, in the order `surveyor --help` lists them.
COMMANDS: dict[str, Callable[..., None]] = {
    "up": server.up,
    "console": server.console,
    "login": session.login,
    "logout": session.logout,
    "import": imports.import_file,
    "worker": worker.worker,
    "scan": scan.scan,
    "doctor": doctor.doctor,
}
GROUPS = {
    "db": server.db_app,
    "task": tasks.task_app,
    "token": tokens.token_app,
    "user": accounts.user_app,
    "invitation": accounts.invitation_app,
    "account": accounts.account_app,
    "site": accounts.site_app,
    "asset": assets.asset_app,
    "explorer": explorer.explorer_app,
    "zone": explorer.zone_app,
    "enrollment": explorer.enrollment_app,
    "audit": audit.audit_app,
    "credential": credentials.credential_app,
    "query": queries.query_app,
    "secrets": credentials.secrets_app,
}
for name, command in COMMANDS.items():
    app.command(name)(command)
for name, group in GROUPS.items():
    app.add_typer(group, name=name)


def _version(value: bool) -> None:
    if value:
        from surveyor.cli.version import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and the database's schema revision, and exit.",
    ),
) -> None:
    """Surveyor: network asset discovery console."""


def main() -> None:
    app()
