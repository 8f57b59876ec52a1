"""Where task data lives beside the data directory: the seam every writer and reader of task
data goes through, so that consoles and workers that share no directory (several machines on
one PostgreSQL) all reach it.

The file in a process's own data directory is always the working copy. A store keeps the
data where other processes reach it too:

- `files`: nowhere else (the SQLite default: one machine, one data directory);
- `database`: in the database, chunked (`store/task_data_chunks.py`; the PostgreSQL default);
- `s3`: in an S3-compatible object store (`store/task_data_s3.py`).

`SURVEYOR_TASK_DATA_STORE` chooses. Writers call `keep_task_data` in the transaction that
records the data's SHA-256 on the task, before it commits: the data is stored first, so a
committed digest always names stored data. If storing fails, the transaction rolls back and
the task keeps its earlier state. If the transaction rolls back after an object was
uploaded, that object is named by no task: the next upload for the task overwrites it, and
a task that never gets data has nothing that reads it. Readers call `local_task_data`,
which uses the local file when its digest is the task's and otherwise streams the stored
copy into place, checking the digest before anything is renamed into the tasks folder.
Retention calls `discard_task_data` before it records, in its own transaction, that the
tasks hold no data (as it deletes the local files first).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlalchemy import Connection

from surveyor.store.engine import Database
from surveyor.store.task_data_base import (
    STORE_CHOICES,
    STORE_ENV,
    DataDirectoryOnly,
    TaskDataStore,
    TaskDataStoreError,
    TaskDataStoreSettingError,
    TaskDataUnavailable,
)
from surveyor.store.task_data_chunks import DatabaseChunks
from surveyor.store.task_data_s3 import S3Settings, require_client, s3_store
from surveyor.store.taskdata import create_temp_file, sha256_of, task_data_path

__all__ = [
    "STORE_CHOICES",
    "STORE_ENV",
    "TaskDataStore",
    "TaskDataStoreError",
    "TaskDataStoreSettingError",
    "TaskDataUnavailable",
]


def store_choice(dialect: str, env: Mapping[str, str] | None = None) -> str:
    """`database`, `files` or `s3`: what `SURVEYOR_TASK_DATA_STORE` says, else the database
    on PostgreSQL and files on SQLite."""
    chosen = (os.environ if env is None else env).get(STORE_ENV, "").strip().lower()
    if chosen and chosen not in STORE_CHOICES:
        raise TaskDataStoreSettingError(
            f"{STORE_ENV} must be one of {', '.join(STORE_CHOICES)}, not {chosen!r}"
        )
    if chosen:
        return chosen
    return "database" if dialect == "postgresql" else "files"


def check_store_settings(env: Mapping[str, str] | None = None) -> None:
    """Read the store's settings as a process does at start, without reaching the store.
    Raises TaskDataStoreSettingError naming the setting to fix."""
    environ = os.environ if env is None else env
    if store_choice("", environ) == "s3":
        S3Settings.from_environment(environ)
        require_client()


def task_data_store(dialect: str, env: Mapping[str, str] | None = None) -> TaskDataStore:
    """The store the settings choose for a database of this dialect. An object store's
    client is made once per settings and shared (its connections are pooled)."""
    choice = store_choice(dialect, env)
    if choice == "database":
        return DatabaseChunks()
    if choice == "s3":
        return s3_store(S3Settings.from_environment(os.environ if env is None else env))
    return DataDirectoryOnly()


def keep_task_data(conn: Connection, task_id: int, path: Path) -> None:
    """Store the file `path` as the data of task `task_id` (replacing any earlier one) where
    every process reaches it, in the transaction that records its digest. Raises
    TaskDataStoreError when the store fails: the transaction must then roll back."""
    task_data_store(conn.dialect.name).keep(conn, task_id, path)


def discard_task_data(db: Database, task_ids: Iterable[int]) -> None:
    """Delete these tasks' data from a store outside the database (retention)."""
    ids = list(task_ids)
    if ids:
        task_data_store(db.dialect).discard(ids)


def local_task_data(db: Database, data_dir: Path, task_id: int, sha256: str | None) -> Path:
    """The path of the task's data in this process's data directory. When the local file is
    missing or is not the one the task recorded (`sha256`), and a shared store keeps task
    data, the stored copy is streamed into place first, its digest checked.

    Raises TaskDataUnavailable when the stored copy is missing or does not match, and
    TaskDataStoreError when the store cannot be reached; without a shared store the path is
    returned as it is (the caller reports a missing file)."""
    path = task_data_path(data_dir, task_id)
    if path.is_file() and (not sha256 or sha256_of(path) == sha256):
        return path
    store = task_data_store(db.dialect)
    if not store.shared:
        return path
    fd, temp = create_temp_file(path.parent, prefix=f".{task_id}-", suffix=".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in store.read(db, task_id, sha256):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            if size == 0:
                raise TaskDataUnavailable(
                    f"its data file {path} is not the one the task stored (SHA-256 differs) "
                    f"and {store.where} holds no copy"
                    if path.is_file()
                    else f"its data file is missing (looked for {path} and in {store.where})"
                )
            if sha256 and digest.hexdigest() != sha256:
                raise TaskDataUnavailable(
                    f"the data of task {task_id} in {store.where} is not the one the task "
                    f"stored (SHA-256 {digest.hexdigest()}, not {sha256})"
                )
            # Still locked while renamed: a starting console never takes it for abandoned.
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def verify_task_data_store(dialect: str, *, probe: bool = False) -> str:
    """Check the configured store as a process does at start (`probe`: as doctor does);
    what was found. Raises TaskDataStoreSettingError or TaskDataStoreError."""
    return task_data_store(dialect).verify(probe=probe)
