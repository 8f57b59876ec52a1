"""`surveyor doctor`: checks what a console, worker or upgrade needs, and says what to fix.

Each check gives findings (ok, warn or fail, with the fix). Doctor only looks: it creates
no data directory, key or database, changes no mode, and opens an SQLite database
read-only; in an object store it writes one probe object and deletes it at once. It exits
with 1 when a check fails.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from surveyor import __version__
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.store.location import DATABASE_VARIABLE, DatabaseLocation, database_location
from surveyor.store.location import data_dir_path as configured_data_dir
from surveyor.store.revision import (
    DatabaseRevision,
    Standing,
    expected_revision,
    read_revision,
    standing,
)

if TYPE_CHECKING:
    from surveyor.store.diagnostics import ExplorerVersion

#: Below this much free space in the data directory a check fails; below WARN it warns.
FREE_BYTES_FAIL = 512 * 1024**2
FREE_BYTES_WARN = 2 * 1024**3
#: How far the database's clock may be from this machine's. Consoles compare times other
#: consoles wrote (check-ins within the 60 s online window, a dropped poll's 3 s grace).
SKEW_WARN = timedelta(seconds=2)
SKEW_FAIL = timedelta(seconds=30)


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One check's verdict: what was found and, unless all is well, what to do."""

    check: str
    level: Level
    message: str
    fix: str = ""


def _private(mode: int) -> bool:
    return not mode & 0o077


def check_configuration() -> list[Finding]:
    """The settings a console reads at start, read the same way."""
    from surveyor.console.state import ConsoleSettings

    location = database_location()
    scheme = location.url.partition("://")[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        return [
            Finding(
                "configuration",
                Level.FAIL,
                f"{DATABASE_VARIABLE} is not an sqlite:/// or postgresql:// URL",
                f"set {DATABASE_VARIABLE}=postgresql://USER:PASSWORD@HOST/DATABASE, or unset it "
                "for SQLite in the data directory",
            )
        ]
    try:
        ConsoleSettings.from_environment(configured_data_dir(), location.url)
    except SystemExit as exc:
        return [Finding("configuration", Level.FAIL, str(exc), "correct or unset that variable")]
    return [
        Finding(
            "configuration",
            Level.OK,
            f"settings read; data directory {configured_data_dir()}, database {location.shown}",
        )
    ]


def check_data_directory(data_dir: Path) -> list[Finding]:
    """The data directory exists, is its owner's alone (0700) and writable; so is an SQLite
    database in it (0600)."""
    name = "data directory"
    if not data_dir.exists():
        return [
            Finding(
                name,
                Level.WARN,
                f"{data_dir} does not exist yet",
                "start the console once (it creates it, mode 0700), or set SURVEYOR_DATA",
            )
        ]
    if not data_dir.is_dir():
        return [Finding(name, Level.FAIL, f"{data_dir} is not a directory", "set SURVEYOR_DATA")]
    found: list[Finding] = []
    info = data_dir.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not _private(mode):
        found.append(
            Finding(
                name,
                Level.FAIL,
                f"{data_dir} is open to others (mode {mode:04o}); it holds the database, task "
                "data and the credentials key",
                f"chmod 700 {data_dir}",
            )
        )
    if info.st_uid != os.geteuid():
        found.append(
            Finding(
                name,
                Level.WARN,
                f"{data_dir} belongs to uid {info.st_uid}, not to this user ({os.geteuid()})",
                "run Surveyor and doctor as the user that owns the data directory",
            )
        )
    if not os.access(data_dir, os.W_OK | os.X_OK):
        found.append(
            Finding(
                name,
                Level.FAIL,
                f"{data_dir} is not writable by this user",
                f"chown the directory to the user running Surveyor, or chmod u+rwx {data_dir}",
            )
        )
    location = database_location()
    if location.sqlite_path is not None:
        for suffix in ("", "-wal", "-shm"):
            path = location.sqlite_path.with_name(location.sqlite_path.name + suffix)
            if path.exists() and not _private(file_mode := stat.S_IMODE(path.stat().st_mode)):
                found.append(
                    Finding(
                        name,
                        Level.FAIL,
                        f"{path} is readable by others (mode {file_mode:04o})",
                        f"chmod 600 {path}",
                    )
                )
    if not found:
        found.append(Finding(name, Level.OK, f"{data_dir}: mode {mode:04o}, yours, writable"))
    return found


def check_secret_key(data_dir: Path) -> list[Finding]:
    """The key that seals credentials: present, a valid key, readable by its owner only."""
    from surveyor.security.secretbox import (
        KEY_ENV,
        KEY_FILE_ENV,
        SecretKeyError,
        decode_key,
        key_source,
        read_key_file,
    )

    name = "secret key"
    path = key_source(data_dir)
    try:
        if path is None:
            decode_key(os.environ[KEY_ENV], where=KEY_ENV)
            return [Finding(name, Level.OK, f"the key comes from {KEY_ENV}")]
        given = bool(os.environ.get(KEY_FILE_ENV))
        if not path.exists():
            if given:
                return [
                    Finding(
                        name,
                        Level.FAIL,
                        f"{KEY_FILE_ENV} names {path}, which does not exist",
                        "put the key every console shares there (`surveyor secrets new-key` "
                        "makes one)",
                    )
                ]
            return [
                Finding(
                    name,
                    Level.WARN,
                    f"no key at {path} yet",
                    "start the console once (it creates the key, mode 0600); consoles sharing "
                    f"a database must share one key: give them {KEY_FILE_ENV}",
                )
            ]
        read_key_file(path)
    except SecretKeyError as exc:
        return [Finding(name, Level.FAIL, str(exc), "restore the key from your backup")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if not _private(mode):
        return [
            Finding(
                name,
                Level.FAIL,
                f"{path} is readable by others (mode {mode:04o}): anyone who reads it can open "
                "every stored credential",
                f"chmod 600 {path}",
            )
        ]
    return [Finding(name, Level.OK, f"{path}: a valid key, mode {mode:04o}")]


def check_disk(
    data_dir: Path, *, fail_below: int = FREE_BYTES_FAIL, warn_below: int = FREE_BYTES_WARN
) -> list[Finding]:
    """Free space where the task data and (for SQLite) the database grow."""
    where = data_dir
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    shown = f"{free / 1024**3:.1f} GiB free at {where}"
    if free < fail_below:
        fix = "free space or move SURVEYOR_DATA to a larger disk: uploads and imports fail"
        return [Finding("disk", Level.FAIL, shown, fix)]
    if free < warn_below:
        fix = "task data grows with every scan: free space or plan a larger disk"
        return [Finding("disk", Level.WARN, shown, fix)]
    return [Finding("disk", Level.OK, shown)]


def check_task_data_store(location: DatabaseLocation) -> list[Finding]:
    """Where task data is kept: an object store must be reachable, its bucket there, and a
    probe object written, read back and deleted; files alone on PostgreSQL warn."""
    from surveyor.store.task_data_store import (
        STORE_ENV,
        TaskDataStoreError,
        TaskDataStoreSettingError,
        store_choice,
        verify_task_data_store,
    )

    name = "task data"
    dialect = "sqlite" if location.is_sqlite else "postgresql"
    fix = 'see docs/deploy.md, "Where task data lives"'
    try:
        found = verify_task_data_store(dialect, probe=True)
        choice = store_choice(dialect)
    except TaskDataStoreSettingError as exc:
        return [Finding(name, Level.FAIL, str(exc), f"correct that setting; {fix}")]
    except TaskDataStoreError as exc:
        return [Finding(name, Level.FAIL, str(exc), fix)]
    if choice == "files" and dialect == "postgresql":
        return [
            Finding(
                name,
                Level.WARN,
                f"{STORE_ENV}=files: task data stays in the data directory that received it, "
                "so consoles and workers on other machines cannot reach it",
                f"unset {STORE_ENV} (the database keeps it) or set it to s3, unless every "
                "console and worker shares one data directory",
            )
        ]
    return [Finding(name, Level.OK, found)]


_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(.*)$")
_PRE_RELEASE = ("a", "b", "c", "rc", "alpha", "beta", "pre", "preview", "dev")


def version_key(version: str) -> tuple[tuple[int, ...], int] | None:
    """A version's place in release order (1.2 = 1.2.0; a pre-release before its release;
    local labels ignored), or None for something that is not a version."""
    found = _RELEASE.match(version.split("+", 1)[0])
    if found is None:
        return None
    numbers = [int(part) for part in found.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    rest = found.group(2).lstrip(".-_").lower()
    return tuple(numbers), 0 if rest.startswith(_PRE_RELEASE) else 1


def check_database(
    location: DatabaseLocation,
    *,
    clock: Clock = SYSTEM_CLOCK,
    console_version: str = __version__,
) -> list[Finding]:
    """Connectivity, the schema revision against this code's, the database's clock against
    this machine's, and the versions explorers report against this console's."""
    from surveyor.store.diagnostics import (
        database_now,
        explorer_versions,
        open_for_reading,
        read_catalogue,
    )

    if location.sqlite_path is not None and not location.sqlite_path.exists():
        return [
            Finding(
                "database",
                Level.WARN,
                f"no database yet ({location.shown})",
                "start the console (`surveyor up`): it creates and migrates the database",
            )
        ]
    engine = None
    try:
        engine = open_for_reading(location)
        with engine.connect() as conn:
            tables = read_catalogue(conn)
            before = clock.now()
            database_time = database_now(conn)
            after = clock.now()
            reading = read_revision(location)
            current = reading.error is None and standing(reading.revision) is Standing.CURRENT
            versions = explorer_versions(conn) if current else None
    except Exception as exc:
        message = str(exc).strip().splitlines()
        return [
            Finding(
                "database",
                Level.FAIL,
                f"cannot reach {location.shown}: {message[0] if message else type(exc).__name__}",
                "check that the database runs, and the host, user and password of "
                f"{DATABASE_VARIABLE}",
            )
        ]
    finally:
        if engine is not None:
            engine.dispose()
    found = [Finding("database", Level.OK, f"connected to {location.shown} ({tables} tables)")]
    found += _revision_findings(reading)
    found += _clock_findings(database_time, before, after)
    if versions is not None:  # an older schema is upgraded before explorers are read
        found += _explorer_findings(versions, console_version)
    return found


def _revision_findings(reading: DatabaseRevision) -> list[Finding]:
    name = "schema revision"
    expected = expected_revision()
    if reading.error is not None:
        return [Finding(name, Level.FAIL, f"cannot read it: {reading.error}", "see the database")]
    revision = reading.revision
    match standing(revision):
        case Standing.CURRENT:
            return [Finding(name, Level.OK, f"{revision}, the revision this code expects")]
        case Standing.EMPTY:
            return [
                Finding(
                    name,
                    Level.WARN,
                    "the database has no schema yet",
                    "run `surveyor db upgrade`, or start the console (it migrates at start)",
                )
            ]
        case Standing.BEHIND:
            return [
                Finding(
                    name,
                    Level.FAIL,
                    f"the database is at {revision}, behind this code's {expected}",
                    "run `surveyor db upgrade` (back up first: `surveyor db backup FILE`); "
                    "a console also upgrades when it starts",
                )
            ]
        case Standing.AHEAD:
            return [
                Finding(
                    name,
                    Level.FAIL,
                    f"the database is at {revision}, which this code ({__version__}, "
                    f"revision {expected}) does not know: a newer Surveyor migrated it",
                    "upgrade Surveyor on this machine to the version the other consoles run",
                )
            ]


def _clock_findings(database_time: datetime, before: datetime, after: datetime) -> list[Finding]:
    """The database's time against the midpoint of the round trip that read it; the half
    round trip is the uncertainty."""
    name = "clock"
    skew = database_time - (before + (after - before) / 2)
    off = abs(skew) - (after - before) / 2
    shown = f"the database's clock is {abs(skew).total_seconds():.3f} s " + (
        "ahead of" if skew >= timedelta(0) else "behind"
    )
    shown += " this machine's"
    fix = "synchronise both machines' clocks with NTP (chrony, systemd-timesyncd)"
    if off > SKEW_FAIL:
        return [Finding(name, Level.FAIL, shown, fix)]
    if off > SKEW_WARN:
        return [Finding(name, Level.WARN, shown, fix)]
    return [Finding(name, Level.OK, shown)]


def _explorer_findings(versions: Iterable[ExplorerVersion], console_version: str) -> list[Finding]:
    name = "explorers"
    mine = version_key(console_version)
    older: list[str] = []
    newer: list[str] = []
    unknown: list[str] = []
    count = 0
    for item in versions:
        count += 1
        label = f"{item.name} ({item.organization}) {item.version}"
        theirs = version_key(item.version)
        if theirs is None or mine is None:
            unknown.append(label)
        elif theirs < mine:
            older.append(label)
        elif theirs > mine:
            newer.append(label)
    found = []
    if older:
        found.append(
            Finding(
                name,
                Level.WARN,
                f"{_explorers(len(older))} an older version than this console "
                f"({console_version}): {_listed(older)}",
                "upgrade Surveyor on those explorers' machines and restart them",
            )
        )
    if newer:
        found.append(
            Finding(
                name,
                Level.WARN,
                f"{_explorers(len(newer))} a newer version than this console: {_listed(newer)}",
                "upgrade the consoles first, then the explorers",
            )
        )
    if unknown:
        found.append(
            Finding(
                name,
                Level.WARN,
                f"{_explorers(len(unknown), 'reports', 'report')} a version that cannot be "
                "compared: "
                f"{_listed(unknown)}",
                "install released Surveyor versions on explorers and consoles",
            )
        )
    if not found:
        said = f"all {count} that checked in run {console_version}" if count else "none yet"
        found.append(Finding(name, Level.OK, f"explorers' versions: {said}"))
    return found


def _explorers(count: int, one: str = "runs", many: str = "run") -> str:
    return f"1 explorer {one}" if count == 1 else f"{count} explorers {many}"


def _listed(labels: list[str], shown: int = 10) -> str:
    more = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {more} more" if more > 0 else "")


def run_checks(*, clock: Clock = SYSTEM_CLOCK) -> list[Finding]:
    """Every check, in the order doctor prints them."""
    data_dir = configured_data_dir()
    checks: list[Callable[[], list[Finding]]] = [
        check_configuration,
        lambda: check_database(database_location(), clock=clock),
        lambda: check_data_directory(data_dir),
        lambda: check_secret_key(data_dir),
        lambda: check_disk(data_dir),
        lambda: check_task_data_store(database_location()),
    ]
    found: list[Finding] = []
    for check in checks:
        found += check()
    return found


def report(findings: list[Finding], *, quiet: bool = False) -> str:
    """The findings as doctor prints them: a line each, the fix indented under it (`quiet`:
    only those that warn or fail), and a count."""
    lines = []
    for finding in findings:
        if quiet and finding.level is Level.OK:
            continue
        lines.append(f"{finding.level.value:<5} {finding.check:<16} {finding.message}")
        if finding.fix and finding.level is not Level.OK:
            lines.append(f"{'':<22} fix: {finding.fix}")
    failed = sum(finding.level is Level.FAIL for finding in findings)
    warned = sum(finding.level is Level.WARN for finding in findings)
    lines.append(f"{failed} failed, {warned} warned, {len(findings) - failed - warned} ok")
    return "\n".join(lines)


def doctor(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only what warns or fails.")
    ] = False,
) -> None:
    """Check the configuration, database, schema revision, clock, explorers' versions,
    permissions, free disk and where task data is kept, and say what to fix. Exits with 1
    when a check fails."""
    findings = run_checks()
    typer.echo(report(findings, quiet=quiet))
    if any(finding.level is Level.FAIL for finding in findings):
        raise typer.Exit(1)
