"""Task data kept in the database, so that consoles and workers that share no directory
(several machines on one PostgreSQL) all reach it.

Where the data lives is decided once per database (`stores_in_database`): on PostgreSQL the
file is also written to `task_data_chunks`, in pieces of `CHUNK_BYTES`, in the transaction
that records its SHA-256 on the task; on SQLite (one machine) the data directory alone
holds it, unless `SURVEYOR_TASK_DATA_STORE=database` says otherwise. The file in a process's
own data directory stays the working copy: readers call `local_task_data`, which uses the
local file when its digest is the task's and otherwise copies the chunks into place,
checking the digest before anything is renamed into the tasks folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select

from surveyor.store.engine import Database
from surveyor.store.schema import task_data_chunks
from surveyor.store.taskdata import create_temp_file, sha256_of, task_data_path

#: The size of one stored piece (a bytea / BLOB row each).
CHUNK_BYTES = 1 << 20
#: `database` or `files`; unset: the database on PostgreSQL, files on SQLite.
STORE_ENV = "SURVEYOR_TASK_DATA_STORE"
STORE_CHOICES = ("database", "files")


class TaskDataUnavailable(Exception):
    """The stored data cannot be had: missing, or its digest is not the task's."""


def stores_in_database(dialect: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether task data goes into the database as well as the data directory."""
    chosen = (os.environ if env is None else env).get(STORE_ENV, "").strip().lower()
    if chosen and chosen not in STORE_CHOICES:
        raise ValueError(f"{STORE_ENV} must be one of {', '.join(STORE_CHOICES)}, not {chosen!r}")
    if chosen:
        return chosen == "database"
    return dialect == "postgresql"


def keep_task_data(conn: Connection, task_id: int, path: Path) -> int:
    """Store the file `path` as the data of task `task_id` (replacing any earlier one) when
    this database keeps task data; the number of chunks written (0: it does not)."""
    if not stores_in_database(conn.dialect.name):
        return 0
    conn.execute(delete(task_data_chunks).where(task_data_chunks.c.task_id == task_id))
    seq = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            conn.execute(insert(task_data_chunks).values(task_id=task_id, seq=seq, data=chunk))
            seq += 1
    return seq


def drop_stored_task_data(conn: Connection, task_ids: Iterable[int]) -> None:
    """Delete the stored data of these tasks (retention)."""
    ids = list(task_ids)
    if ids:
        conn.execute(delete(task_data_chunks).where(task_data_chunks.c.task_id.in_(ids)))


def _stored_chunks(db: Database, task_id: int) -> Iterable[bytes]:
    """The chunks of a task's data in order, read one at a time (never the whole file)."""
    seq = 0
    while True:
        with db.read() as conn:
            chunk = conn.execute(
                select(task_data_chunks.c.data).where(
                    task_data_chunks.c.task_id == task_id, task_data_chunks.c.seq == seq
                )
            ).scalar_one_or_none()
        if chunk is None:
            return
        yield bytes(chunk)
        seq += 1


def local_task_data(db: Database, data_dir: Path, task_id: int, sha256: str | None) -> Path:
    """The path of the task's data in this process's data directory. When the local file is
    missing or is not the one the task recorded (`sha256`), and the database keeps task
    data, the stored copy is fetched into place first, its digest checked.

    Raises TaskDataUnavailable when the stored copy is missing or does not match; without a
    database copy the path is returned as it is (the caller reports a missing file)."""
    path = task_data_path(data_dir, task_id)
    if path.is_file() and (not sha256 or sha256_of(path) == sha256):
        return path
    if not stores_in_database(db.dialect):
        return path
    fd, temp = create_temp_file(path.parent, prefix=f".{task_id}-", suffix=".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in _stored_chunks(db, task_id):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            if size == 0:
                raise TaskDataUnavailable(
                    f"its data file {path} is not the one the task stored (SHA-256 differs) "
                    "and the database holds no copy"
                    if path.is_file()
                    else f"its data file is missing (looked for {path} and in the database)"
                )
            if sha256 and digest.hexdigest() != sha256:
                raise TaskDataUnavailable(
                    f"the data of task {task_id} in the database is not the one the task "
                    f"stored (SHA-256 {digest.hexdigest()}, not {sha256})"
                )
            # Still locked while renamed: a starting console never takes it for abandoned.
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
