"""The schema revision this code expects and the one a database is at, found without
Alembic or SQLAlchemy so that `surveyor --version` answers at once.

The expected revision is read from the migration files' `revision` and `down_revision`
lines (the head is the one revision no other revises; `tests/unit/test_version.py` checks
it is Alembic's head). The database's is its `alembic_version` row, read with the standard
library's sqlite3 (read-only) or with psycopg directly.
"""

from __future__ import annotations

import enum
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from surveyor.store.location import DatabaseLocation

VERSIONS = Path(__file__).parent / "migrations" / "versions"
CONNECT_TIMEOUT_SECONDS = 3
_ASSIGNMENT = r"^{name}\s*(?::[^=\n]*)?=\s*(?:[\"']([^\"']+)[\"']|None)"
_REVISION = re.compile(_ASSIGNMENT.format(name="revision"), re.MULTILINE)
_DOWN_REVISION = re.compile(_ASSIGNMENT.format(name="down_revision"), re.MULTILINE)


def _chain(versions: Path) -> tuple[list[str], set[str]]:
    """Every revision of the migration files, and those another one revises."""
    revised: set[str] = set()
    revisions: list[str] = []
    for path in sorted(versions.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None or found.group(1) is None:
            continue
        revisions.append(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None and down.group(1):
            revised.add(down.group(1))
    return revisions, revised


def known_revisions(versions: Path = VERSIONS) -> list[str]:
    """The revisions this code's migrations know, oldest file first."""
    return _chain(versions)[0]


def expected_revision(versions: Path = VERSIONS) -> str | None:
    """The newest revision the migrations of this code know (their single head)."""
    revisions, revised = _chain(versions)
    heads = [revision for revision in revisions if revision not in revised]
    return heads[-1] if heads else None


class Standing(enum.Enum):
    """Where a database's schema stands against this code's."""

    EMPTY = "empty"  # no schema yet: the console creates it when it starts
    CURRENT = "current"
    BEHIND = "behind"  # older: `surveyor db upgrade` (or starting the console) brings it up
    AHEAD = "ahead"  # written by a newer Surveyor (or another build): upgrade this one


def standing(revision: str | None, versions: Path = VERSIONS) -> Standing:
    if revision is None:
        return Standing.EMPTY
    if revision == expected_revision(versions):
        return Standing.CURRENT
    if revision in known_revisions(versions):
        return Standing.BEHIND
    return Standing.AHEAD


@dataclass(frozen=True)
class DatabaseRevision:
    """What reading a database's revision found."""

    #: False: there is no database yet (an SQLite file not created).
    exists: bool
    #: Its revision; None with `exists`: a database without the schema yet.
    revision: str | None = None
    #: Why it could not be read (the database did not answer, a wrong password, ...).
    error: str | None = None


def read_revision(location: DatabaseLocation) -> DatabaseRevision:
    """The revision of the database at `location`; never creates or changes it."""
    try:
        if location.sqlite_path is not None:
            return _sqlite_revision(location.sqlite_path)
        return _postgres_revision(location.libpq_url)
    except Exception as exc:  # any failure to read is reported, never raised
        return DatabaseRevision(exists=True, error=_first_line(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _sqlite_revision(path: Path) -> DatabaseRevision:
    if not path.exists():
        return DatabaseRevision(exists=False)
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if has_table is None:
            return DatabaseRevision(exists=True)
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        connection.close()
    return DatabaseRevision(exists=True, revision=row[0] if row else None)


def _postgres_revision(url: str) -> DatabaseRevision:
    import psycopg

    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        found = connection.execute("SELECT to_regclass('alembic_version')").fetchone()
        if found is None or found[0] is None:
            return DatabaseRevision(exists=True)
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return DatabaseRevision(exists=True, revision=row[0] if row else None)
