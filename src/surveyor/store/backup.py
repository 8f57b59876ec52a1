"""Backing up and restoring an SQLite install: `surveyor db backup` and `surveyor db restore`.

A backup is one tar file holding everything an install keeps:

- `surveyor.db`: a consistent copy of the database, taken with SQLite's online backup API
  while the console runs (writers go on; the copy is the database as of one moment);
- `tasks/<id>.jsonl.gz`: the task data files that copy refers to, each checked against the
  SHA-256 its task stored (a file written after the moment of the copy is not taken; a task
  whose file went missing is named in the manifest, never silently skipped);
- `secret.key`: the key that seals credentials, when it lives in the data directory
  (without it the restored credentials cannot be opened);
- `manifest.json`: the format, the Surveyor version and schema revision, when it was taken,
  and the SHA-256 and size of every other member.

A restore checks the whole file before it touches anything, refuses a data directory whose
database is in use or that already holds an install (unless told to replace it), and puts
the restored files in place only once all of them were written and checked. PostgreSQL
installs are backed up with `pg_dump` (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from surveyor import __version__
from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.store.taskdata import TASKS_DIR, task_data_path

FORMAT = "surveyor-backup/1"
DATABASE_MEMBER = "surveyor.db"
MANIFEST_MEMBER = "manifest.json"
KEY_MEMBER = "secret.key"
#: Pages copied per step of the online backup (the database is locked only per step).
BACKUP_PAGES_PER_STEP = 1024

#: The only member names a backup may hold besides the database, key and manifest.
_TASK_MEMBER = re.compile(rf"{TASKS_DIR}/[0-9]{{1,19}}\.jsonl\.gz")

#: Called as the backup or restore goes: (what is done, bytes so far, bytes in all).
Progress = Callable[[str, int, int], None]


def _quiet(_what: str, _done: int, _total: int) -> None:
    """The progress callback of a caller that does not watch."""


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass
class BackupReport:
    """What a backup holds."""

    path: Path
    revision: str | None
    tasks: int
    data_files: int
    data_bytes: int
    #: Tasks whose data file was missing or did not match its checksum.
    missing: list[int] = field(default_factory=list)
    with_key: bool = False


def _sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _snapshot(database: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database, by the online backup API."""
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy, pages=BACKUP_PAGES_PER_STEP)
        finally:
            copy.close()
    finally:
        source.close()


def _snapshot_facts(snapshot: Path) -> tuple[str | None, int, list[tuple[int, str]]]:
    """The schema revision, the number of tasks, and (task id, sha256) of every task with
    stored data, as the copy says."""
    conn = sqlite3.connect(snapshot)
    try:
        revision_row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        count = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        with_data = conn.execute(
            "SELECT id, data_sha256 FROM tasks WHERE data_sha256 IS NOT NULL ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database copy cannot be read ({exc})") from exc
    finally:
        conn.close()
    return (revision_row[0] if revision_row else None), int(count), list(with_data)


def _add_file(archive: tarfile.TarFile, path: Path, name: str, mode: int = 0o600) -> None:
    info = archive.gettarinfo(str(path), arcname=name)
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with path.open("rb") as handle:
        archive.addfile(info, handle)


def backup_sqlite(
    database: Path,
    data_dir: Path,
    target: Path,
    *,
    key_file: Path | None,
    progress: Progress = _quiet,
) -> BackupReport:
    """Write a backup of the install (`database` and the task data in `data_dir`) to
    `target`, readable only by its owner. `key_file`: the credentials key to include, if
    any. The target appears whole or not at all."""
    if not database.is_file():
        raise BackupError(f"there is no database at {database}")
    target = target.resolve()
    if target.is_dir():
        raise BackupError(f"{target} is a directory; name the backup file to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="surveyor-backup-") as work:
        snapshot = Path(work) / DATABASE_MEMBER
        progress("copying the database", 0, 1)
        _snapshot(database, snapshot)
        revision, task_count, with_data = _snapshot_facts(snapshot)
        members: dict[str, dict[str, Any]] = {}
        missing: list[int] = []
        files: list[tuple[Path, str]] = [(snapshot, DATABASE_MEMBER)]
        for task_id, expected in with_data:
            path = task_data_path(data_dir, int(task_id))
            if not path.is_file():
                missing.append(int(task_id))
                continue
            files.append((path, f"{TASKS_DIR}/{path.name}"))
            members[f"{TASKS_DIR}/{path.name}"] = {"task_id": int(task_id), "sha256": expected}
        if key_file is not None and key_file.is_file():
            files.append((key_file, KEY_MEMBER))
        total = sum(path.stat().st_size for path, _ in files)
        partial = target.with_name(f".{target.name}.part")
        done = 0
        try:
            descriptor = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
                for path, name in files:
                    with path.open("rb") as handle:
                        digest, size = _sha256_stream(handle)
                    expected_digest = members.get(name, {}).get("sha256")
                    if expected_digest is not None and digest != expected_digest:
                        # the file changed under us or was damaged: say so, keep the rest
                        missing.append(int(members[name]["task_id"]))
                        del members[name]
                        continue
                    members.setdefault(name, {}).update(sha256=digest, size=size)
                    _add_file(tar, path, name)
                    done += size
                    progress(f"added {name}", done, total)
                manifest = {
                    "format": FORMAT,
                    "surveyor_version": __version__,
                    "revision": revision,
                    "created_at": SYSTEM_CLOCK.now().isoformat(),
                    "tasks": task_count,
                    "members": members,
                    "missing_task_data": sorted(missing),
                }
                encoded = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST_MEMBER)
                info.size = len(encoded)
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(encoded))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    data_files = sum(1 for name in members if name.startswith(f"{TASKS_DIR}/"))
    return BackupReport(
        path=target,
        revision=revision,
        tasks=task_count,
        data_files=data_files,
        data_bytes=sum(
            int(m["size"]) for name, m in members.items() if name.startswith(f"{TASKS_DIR}/")
        ),
        missing=sorted(missing),
        with_key=KEY_MEMBER in members,
    )


@dataclass
class RestoreReport:
    revision: str | None
    tasks: int
    data_files: int
    with_key: bool
    created_at: str


def read_manifest(backup: Path) -> dict[str, Any]:
    """The manifest of a backup file; raises BackupError if it is not one."""
    try:
        with tarfile.open(backup, mode="r:") as tar:
            member = tar.extractfile(MANIFEST_MEMBER)
            if member is None:
                raise KeyError(MANIFEST_MEMBER)
            manifest = json.loads(member.read())
    except FileNotFoundError:
        raise BackupError(f"there is no file {backup}") from None
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise BackupError(
            f"{backup} is not a Surveyor backup (made by `surveyor db backup`): {exc}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{backup} is not a Surveyor backup of a format this version reads")
    return manifest


def _database_in_use(database: Path) -> bool:
    """Whether another process holds the database (a console running on it)."""
    if not database.exists():
        return False
    conn = sqlite3.connect(database, timeout=0.5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.rollback()
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


@contextlib.contextmanager
def _staging(data_dir: Path) -> Iterator[Path]:
    stage = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def restore_sqlite(
    backup: Path,
    database: Path,
    data_dir: Path,
    *,
    key_file: Path | None,
    replace: bool = False,
    progress: Progress = _quiet,
) -> RestoreReport:
    """Restore `backup` into `database` and `data_dir`, with the console stopped. Every
    member is checked before anything is put in place."""
    manifest = read_manifest(backup)
    members: dict[str, dict[str, Any]] = manifest.get("members") or {}
    if DATABASE_MEMBER not in members:
        raise BackupError(f"{backup} holds no database")
    if _database_in_use(database):
        raise BackupError(
            f"the database {database} is in use: stop the console (and workers) on this data "
            "directory first, then restore"
        )
    if database.exists() and database.stat().st_size and not replace:
        raise BackupError(
            f"{database} already holds a database; restore into an empty data directory, or "
            "pass --replace to overwrite it"
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    total = sum(int(m.get("size", 0)) for m in members.values())
    done = 0
    with _staging(data_dir) as stage, tarfile.open(backup, mode="r:") as tar:
        for info in tar:
            name = info.name
            if name == MANIFEST_MEMBER:
                continue
            allowed = name in (DATABASE_MEMBER, KEY_MEMBER) or _TASK_MEMBER.fullmatch(name)
            wanted = members.get(name)
            if wanted is None or not allowed or not info.isfile():
                raise BackupError(f"{backup} holds {name!r}, which its manifest does not list")
            source = tar.extractfile(info)
            assert source is not None
            out_path = stage / name
            out_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            digest = hashlib.sha256()
            descriptor = os.open(out_path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                for block in iter(functools.partial(source.read, 1 << 20), b""):
                    digest.update(block)
                    out.write(block)
                    done += len(block)
            if digest.hexdigest() != wanted.get("sha256"):
                raise BackupError(
                    f"{name} in {backup} is damaged (its SHA-256 differs from the manifest's); "
                    "nothing was restored"
                )
            progress(f"checked {name}", done, total)
        absent = [name for name in members if not (stage / name).is_file()]
        if absent:
            raise BackupError(
                f"{backup} is incomplete: {', '.join(sorted(absent)[:5])} missing; "
                "nothing was restored"
            )
        # Everything is checked: put it in place.
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        database.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / DATABASE_MEMBER, database)
        tasks_dir = data_dir / TASKS_DIR
        tasks_dir.mkdir(exist_ok=True, mode=0o700)
        restored_files = 0
        for name in members:
            if name.startswith(f"{TASKS_DIR}/"):
                os.replace(stage / name, data_dir / name)
                restored_files += 1
        with_key = KEY_MEMBER in members
        if with_key and key_file is not None:
            os.replace(stage / KEY_MEMBER, key_file)
            key_file.chmod(0o600)
    return RestoreReport(
        revision=manifest.get("revision"),
        tasks=int(manifest.get("tasks") or 0),
        data_files=restored_files,
        with_key=with_key,
        created_at=str(manifest.get("created_at") or ""),
    )
