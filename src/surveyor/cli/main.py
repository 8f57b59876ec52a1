"""The `surveyor` command."""

from __future__ import annotations

import typer

from surveyor import __version__
from surveyor.cli import (
    accounts,
    assets,
    audit,
    explorer,
    exports,  # noqa: F401  (adds `asset export`, `task data` and `task changes`)
    imports,
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
app.command()(server.up)
app.command()(server.console)
app.add_typer(server.db_app, name="db")
app.command()(session.login)
app.command()(session.logout)
app.add_typer(tasks.task_app, name="task")
app.add_typer(tokens.token_app, name="token")
app.add_typer(accounts.user_app, name="user")
app.add_typer(accounts.invitation_app, name="invitation")
app.add_typer(accounts.account_app, name="account")
app.add_typer(accounts.site_app, name="site")
app.add_typer(assets.asset_app, name="asset")
app.command("import")(imports.import_file)
app.command()(worker.worker)
app.command()(scan.scan)
app.add_typer(explorer.explorer_app, name="explorer")
app.add_typer(explorer.zone_app, name="zone")
app.add_typer(explorer.enrollment_app, name="enrollment")
app.add_typer(audit.audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"surveyor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Surveyor: network asset discovery console."""


def main() -> None:
    app()
