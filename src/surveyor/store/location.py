"""Where the data directory and the database are, read from the environment without
creating or changing either (`surveyor --version` and `surveyor doctor` look before anything
is made). Light: no SQLAlchemy, so `surveyor --version` starts fast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATA_DIR = "surveyor-data"
DATA_VARIABLE = "SURVEYOR_DATA"
DATABASE_VARIABLE = "SURVEYOR_DATABASE_URL"
SQLITE_FILE = "surveyor.db"


def data_dir_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$SURVEYOR_DATA`, else ./surveyor-data, as an absolute path; nothing is created."""
    env = os.environ if environ is None else environ
    return Path(env.get(DATA_VARIABLE) or DEFAULT_DATA_DIR).resolve()


@dataclass(frozen=True)
class DatabaseLocation:
    """The configured database: an SQLite file (`sqlite_path`) or a PostgreSQL URL."""

    #: The URL as configured (for SQLite in the data directory: made from its path).
    url: str
    sqlite_path: Path | None

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite_path is not None

    @property
    def shown(self) -> str:
        """The URL without its password, fit for a terminal or a log."""
        if self.sqlite_path is not None:
            return f"SQLite file {self.sqlite_path}"
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def libpq_url(self) -> str:
        """The PostgreSQL URL as libpq (psycopg) reads it: SQLAlchemy's driver suffix gone."""
        scheme, _, rest = self.url.partition("://")
        if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
            raise ValueError(f"not a PostgreSQL URL: {self.shown}")
        return f"postgresql://{rest}"


def sqlite_path_of(url: str) -> Path | None:
    """The file of an `sqlite:///` URL; None for another backend (or an in-memory one)."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+", 1)[0] != "sqlite":
        return None
    database = rest[1:].split("?", 1)[0]  # sqlite:///relative, sqlite:////absolute
    if not database or database == ":memory:":
        return None
    return Path(database)


def database_location(environ: Mapping[str, str] | None = None) -> DatabaseLocation:
    """`$SURVEYOR_DATABASE_URL`, else the SQLite file in the data directory."""
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_VARIABLE)
    if url:
        return DatabaseLocation(url, sqlite_path_of(url))
    path = data_dir_path(env) / SQLITE_FILE
    return DatabaseLocation(f"sqlite:///{path}", path)
