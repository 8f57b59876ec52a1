"""The `surveyor` command.

The top-level group knows each command's name, help line and module, and imports a module only
when one of its commands runs: `surveyor --help` loads no subcommand, `surveyor task list` loads
the task commands and what they use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from surveyor.cli import rich_later
from surveyor.cli.params import take_plain_values

if TYPE_CHECKING:
    from typer import _click

# Values of options and arguments without pydantic (cli/params.py), and help without the
# parts of Rich it does not use (cli/rich_later.py).
take_plain_values()
rich_later.install()


@dataclass(frozen=True)
class Lazy:
    """A command (a function) or a group of commands (a `typer.Typer`) found at
    `module.attribute`."""

    module: str
    attribute: str
    help: str

    def load(self, name: str) -> _click.Command:
        target = getattr(importlib.import_module(f"surveyor.cli.{self.module}"), self.attribute)
        # Built as `app.command(name)` and `app.add_typer(group, name=name)` would build it.
        holder = typer.Typer(add_completion=False)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
            return typer.main.get_group(holder).commands[name]
        holder.command(name)(target)
        return typer.main.get_command(holder)


#: The commands, then the groups of commands, in the order `surveyor --help` lists them, each
#: with the first paragraph of its help (tests/unit/test_cli_lazy.py checks they agree).
COMMANDS: dict[str, Lazy] = {
    "up": Lazy(
        "server",
        "up",
        "Run everything in one process: console, scheduler and processing on SQLite.",
    ),
    "console": Lazy(
        "server",
        "console",
        "Run the console (API and web UI); on PostgreSQL several may run side by side.",
    ),
    "login": Lazy(
        "session",
        "login",
        "Log in with your email and password and keep the session for later commands.",
    ),
    "logout": Lazy("session", "logout", "Forget the saved session token (the console URL stays)."),
    "import": Lazy(
        "imports",
        "import_file",
        "Import a file into a site's inventory (an import task, processed like a scan).",
    ),
    "worker": Lazy(
        "worker",
        "worker",
        "Run a processing worker: merge queued task data into the inventory until stopped.",
    ),
    "scan": Lazy(
        "scan", "scan", "Scan targets from this machine and write task data, without a console."
    ),
    "doctor": Lazy(
        "doctor",
        "doctor",
        "Check the configuration, database, schema revision, clock, explorers' versions,\n"
        "permissions, free disk and where task data is kept, and say what to fix. Exits with 1\n"
        "when a check fails.",
    ),
    "db": Lazy("server", "db_app", "Database maintenance."),
    "task": Lazy("tasks", "task_app", "Create, list, watch and control tasks."),
    "token": Lazy("tokens", "token_app", "Create, list and delete your API tokens."),
    "user": Lazy(
        "accounts",
        "user_app",
        "The organization's members and their roles, and your own password.",
    ),
    "invitation": Lazy(
        "accounts",
        "invitation_app",
        "Invitations: an existing account joins an organization only when it accepts.",
    ),
    "account": Lazy(
        "accounts", "account_app", "Every account, whatever its organizations (superusers only)."
    ),
    "site": Lazy(
        "accounts",
        "site_app",
        "Sites: network segments, each with its own scan scope and inventory.",
    ),
    "asset": Lazy(
        "assets",
        "asset_app",
        "Search the asset inventory and inspect assets.",
    ),
    "explorer": Lazy(
        "explorer",
        "explorer_app",
        "Run an explorer (with --console and --token), or list and manage the console's explorers.",
    ),
    "zone": Lazy(
        "explorer", "zone_app", "Hosted zones: pools of explorers with a concurrency limit."
    ),
    "enrollment": Lazy(
        "explorer", "enrollment_app", "Enrollment tokens: how new explorers join an organization."
    ),
    "audit": Lazy(
        "audit",
        "audit_app",
        "The organization's audit trail: who created, edited, stopped or removed what "
        "(admins only).",
    ),
    "credential": Lazy(
        "credentials",
        "credential_app",
        "Credentials connectors sign in with (admins only); secrets are write-only.",
    ),
    "query": Lazy(
        "queries", "query_app", "Save searches and pin them to the Dashboard as insights."
    ),
    "secrets": Lazy(
        "credentials",
        "secrets_app",
        "The key that encrypts credentials' secrets (run where the console runs).",
    ),
}


class LazyGroup(TyperGroup):
    """The `surveyor` group. Its help lists `COMMANDS` from their help lines; a command's module
    is imported when that command is looked up to run (or to show its own help)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # What the listing in `--help`, and the "Did you mean" of a mistyped name, read.
        for name, lazy in COMMANDS.items():
            self.commands[name] = TyperCommand(name, help=lazy.help)
        self._loaded: dict[str, _click.Command] = {}
        self._listing = False

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        lazy = COMMANDS.get(cmd_name)
        if lazy is None or self._listing:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = lazy.load(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="surveyor",
    cls=LazyGroup,
    help="Surveyor: network asset discovery console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
