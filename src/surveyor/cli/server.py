"""Commands that run Surveyor itself: `up`, `console`, `db upgrade|status|backup|restore`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.panel import Panel

from surveyor.cli.logs import LogFormatOption, configure_logging

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from surveyor.store.backup import Progress as BackupProgress
    from surveyor.store.bootstrap import Bootstrap

T = TypeVar("T")

# Kept here rather than imported, so that every CLI command starts without loading the server.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
#: Requests still open this long after a stop was asked for are cancelled.
GRACEFUL_SHUTDOWN_SECONDS = 5

err = Console(stderr=True)

Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]


def _announce(created: Bootstrap, *, host: str, port: int) -> None:
    lines = [f"Surveyor created its first administrator: [bold]{created.email}[/bold]"]
    if created.generated_password:
        lines.append(f"Password (shown once): [bold]{created.generated_password}[/bold]")
        lines.append(f"It is also in {created.credentials_file} (readable only by you).")
    lines.append("")
    lines.append(
        f"Log in from the CLI:  surveyor login --console http://{host}:{port} "
        f"--email {created.email}"
    )
    err.print(Panel("\n".join(lines), title="First start", border_style="green"))


def serve(host: str, port: int, *, embedded: bool, log_format: LogFormatOption = None) -> None:
    """Run the console until interrupted."""
    import uvicorn

    configure_logging(log_format)

    from surveyor.console.app import create_app
    from surveyor.console.header_timeout import header_deadline_protocol
    from surveyor.console.services import console_services
    from surveyor.console.state import ConsoleSettings
    from surveyor.core.explorer_protocol import KEEP_ALIVE_SECONDS
    from surveyor.store.engine import data_dir, database_url

    settings = ConsoleSettings.from_environment(data_dir(), database_url())
    from surveyor.security.secretbox import SecretKeyError, load_secret_box

    try:
        load_secret_box(settings.data_dir)  # made at the first start; a bad setting stops it
    except SecretKeyError as exc:
        raise SystemExit(f"credentials' secret key: {exc}") from exc
    from sqlalchemy.engine import make_url

    err.print(task_data_store_at_start(make_url(settings.database_url).get_backend_name()))
    app = create_app(
        settings,
        on_bootstrap=lambda created: _announce(created, host=host, port=port),
        background=console_services(embedded=embedded),
    )
    err.print(
        f"Surveyor console on [bold]http://{host}:{port}[/bold] "
        f"(data in {settings.data_dir}); API at /api/v1, health at /healthz"
    )
    stop_explorer = None
    if embedded:
        from surveyor.explorer.embedded import start_embedded_explorer

        stop_explorer = start_embedded_explorer(
            loopback_url(host, port), settings.data_dir, settings.database_url
        )
    console = app.state.console

    class ConsoleServer(uvicorn.Server):
        """Tells the console when it begins to stop, so explorers' held polls end in time."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            console.begin_stopping()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=os.environ.get("SURVEYOR_LOG_LEVEL", "info"),
        access_log=False,  # the console's own access log (surveyor.access) has the request id
        log_config=None,  # uvicorn's lines go through the handler configure_logging set
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # explorers reuse idle connections for less than this (CLIENT_KEEP_ALIVE_SECONDS)
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Forwarded client addresses are believed from configured proxies only, never by
        # default: anyone could otherwise choose the address their logins are limited by.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        http=header_deadline_protocol(settings.header_timeout_seconds),
        loop="uvloop",
    )
    settle_heap()
    try:
        ConsoleServer(config).run()
    finally:
        if stop_explorer is not None:
            stop_explorer.set()


#: The console process's garbage collector thresholds (youngest, middle, oldest; CPython's
#: defaults are 700, 10, 10). See `settle_heap`.
GC_THRESHOLDS = (1_000, 10, 1_000)


def settle_heap() -> None:
    """Keep the garbage collector's pauses short in a console holding many explorers' polls.

    A collection stops the process for as long as it takes to walk the objects of the
    generations it collects. What importing and building the app made (half a million
    objects, living as long as the process) is frozen here, out of every walk. A held poll
    is about 190 objects that live for the long poll and go through the young generations:
    the more that piles up between two collections, the longer one stops the console.
    Measured with 2,000 explorers (`bench.fleet`), young collections 10 times rarer than
    CPython's left 50,000-370,000 objects to walk, 40-320 ms, the slowest 1% of check-ins;
    at about CPython's rate most take 20-40 ms. Whole-heap collections walk every held poll,
    so they stay rare: the oldest generation waits for 1,000 middle collections (with 100,
    they made the slowest check-ins 0.6 s)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def task_data_store_at_start(dialect: str) -> str:
    """Where task data is kept, checked as a console or worker starts: a bad setting, an
    unreachable object store, a missing bucket or refused credentials stop the start."""
    from surveyor.store.task_data_store import (
        TaskDataStoreError,
        TaskDataStoreSettingError,
        verify_task_data_store,
    )

    try:
        return verify_task_data_store(dialect)
    except (TaskDataStoreError, TaskDataStoreSettingError) as exc:
        raise SystemExit(f"task data store: {exc}") from exc


def loopback_url(host: str, port: int) -> str:
    """How a process on this machine reaches the console listening on `host`."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (naming the wildcard, not binding to it)
        return f"http://127.0.0.1:{port}"
    if host == "::":
        return f"http://[::1]:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def up(
    host: Host = DEFAULT_HOST, port: Port = DEFAULT_PORT, log_format: LogFormatOption = None
) -> None:
    """Run everything in one process: console, scheduler and processing on SQLite."""
    serve(host, port, embedded=True, log_format=log_format)


def console(
    host: Host = DEFAULT_HOST, port: Port = DEFAULT_PORT, log_format: LogFormatOption = None
) -> None:
    """Run the console (API and web UI); on PostgreSQL several may run side by side."""
    serve(host, port, embedded=False, log_format=log_format)


db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (the console also does this when it starts)."""
    from surveyor.store.engine import database_url, make_engine
    from surveyor.store.migrate import current_revision, upgrade
    from surveyor.store.start_lock import one_start_at_a_time

    engine = make_engine()
    with one_start_at_a_time(engine):
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    engine.dispose()
    where = database_url().split("@")[-1]
    if before == after:
        err.print(f"The database is up to date (revision {after}) at {where}.")
    else:
        err.print(f"Upgraded the database from {before or 'empty'} to {after} at {where}.")


@db_app.command("status")
def db_status() -> None:
    """Show the schema revision of the database and the newest one this version knows."""
    from surveyor.store.engine import make_engine
    from surveyor.store.migrate import current_revision, head_revision

    engine = make_engine()
    current = current_revision(engine)
    engine.dispose()
    head = head_revision()
    state = "up to date" if current == head else "needs `surveyor db upgrade`"
    err.print(f"database revision {current or 'empty'}, newest {head}: {state}")


def _sqlite_database(url: str) -> Path:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        raise typer.BadParameter(
            "this database is PostgreSQL: back it up with pg_dump (task data kept in the "
            "database is in the dump; an object store or shared tasks folder is backed up "
            "apart: docs/operations.md, Backups)",
            param_hint="SURVEYOR_DATABASE_URL",
        )
    return Path(parsed.database)


def _key_file(data: Path) -> Path | None:
    """The credentials key when it lives in the data directory (a key given by the
    environment is the operator's to keep)."""
    if os.environ.get("SURVEYOR_SECRET_KEY") or os.environ.get("SURVEYOR_SECRET_KEY_FILE"):
        return None
    return data / "secret.key"


def _transfer(
    title: str,
    failed: str,
    run: Callable[[Path, Path, Path | None, BackupProgress], T],
) -> tuple[Path, T]:
    """The data directory and what `run` (a backup or a restore) returns, given the SQLite
    database, the data directory, the credentials key file and a progress callback that
    drives a bar titled `title`; a BackupError is said as "`failed` failed" and exits 1."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from surveyor.store.backup import BackupError
    from surveyor.store.engine import data_dir, database_url

    data = data_dir()
    database = _sqlite_database(database_url())
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=err, transient=True
    )
    job = bar.add_task(title, total=None)
    try:
        with bar:
            return data, run(
                database,
                data,
                _key_file(data),
                lambda what, done, total: bar.update(job, completed=done, total=total),
            )
    except BackupError as exc:
        err.print(f"[red]{failed} failed:[/red] {exc}")
        raise typer.Exit(1) from None


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write (a tar file).")],
) -> None:
    """Back up the database, the task data and the credentials key into one file, while
    the console runs (SQLite; for PostgreSQL see docs/operations.md)."""
    from surveyor.store.backup import backup_sqlite

    _, report = _transfer(
        "Backing up",
        "Backup",
        lambda database, data, key_file, progress: backup_sqlite(
            database, data, file, key_file=key_file, progress=progress
        ),
    )
    err.print(
        f"Backed up {report.tasks} tasks and {report.data_files} task data files "
        f"({report.data_bytes:,} bytes) at revision {report.revision} to {report.path}"
        + ("" if report.with_key else "; the credentials key is not in it (keep it yourself)")
    )
    if report.missing:
        shown = ", ".join(str(task_id) for task_id in report.missing[:10])
        err.print(f"[yellow]The data of {len(report.missing)} tasks was missing: {shown}[/yellow]")
    from surveyor.store.task_data_store import STORE_ENV, store_choice

    if store_choice("sqlite") == "s3":
        err.print(
            f"[yellow]{STORE_ENV}=s3: task data lives in the object store, which this file "
            "does not hold beyond the copies in this data directory; back the bucket up by "
            "its own means (docs/operations.md, Backups).[/yellow]"
        )


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `surveyor db backup`.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite the database already there.")
    ] = False,
) -> None:
    """Restore a backup into the data directory, with the console stopped."""
    from surveyor.store.backup import restore_sqlite

    data, report = _transfer(
        "Checking and restoring",
        "Restore",
        lambda database, data, key_file, progress: restore_sqlite(
            file, database, data, key_file=key_file, replace=replace, progress=progress
        ),
    )
    err.print(
        f"Restored {report.tasks} tasks and {report.data_files} task data files (revision "
        f"{report.revision}, backed up {report.created_at}) into {data}. Start the console: "
        "it upgrades the schema if this version is newer."
    )
