"""Imports: what turning an uploaded file into an `import` task means.

The console receives the file as it comes (`console/routes/imports.py`). `check_file` tells
its format (or takes the one named), turns nmap XML, masscan output and CSV into task data
(`surveyor.formats`), and checks every record of the task data as processing will read it:
a broken file is refused whole, naming where, before anything is kept. `create_import` then
picks the site, creates the task, puts the task data in place, queues it for processing and
audits the import, in one transaction: a refusal or a failure leaves no task and no file
behind.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.core import kinds
from surveyor.core.jsonl_limits import JsonlLimits, LimitExceeded
from surveyor.core.resources import Site
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.formats.convert import LABELS, file_format, peek, task_lines
from surveyor.formats.records import Format, FormatError
from surveyor.processing.records import TaskDataError, survey
from surveyor.service import audit
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal
from surveyor.store.records import find_site, get_site
from surveyor.store.taskdata import GZIP_MAGIC, create_temp_file, decompressed_blocks, sha256_of

#: The largest site id a `site` given by number may name (the API's id bound).
_MAX_SITE_ID = 2**63 - 1


class ImportRefused(Exception):
    """The import cannot be made as asked; `field` names what to change, if anything."""

    def __init__(self, message: str, *, field: str | None = None, site: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.site = site


class FileRefused(Exception):
    """The file cannot be imported: `status` (400, or 413 for data over a size limit),
    `code` and `details` as the API answers them."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """A received file that passed the task data checks, waiting at `path` as task data."""

    path: Path
    size: int
    sha256: str
    hosts: int
    format: str = Format.JSONL.value
    #: What the file said about itself (its scanner, how many entries it had).
    about: dict[str, Any] = field(default_factory=dict)


#: Task data written from another format is compressed fast: it is read once, merged, and
#: kept only for the retention period.
CONVERTED_GZIP_LEVEL = 1
#: Surveyor JSONL sent plain is stored as compressed as before.
JSONL_GZIP_LEVEL = 6


def check_file(
    received: Path,
    *,
    named_format: str | None,
    limits: JsonlLimits,
) -> ImportedFile:
    """The received file (gzip or plain, in any format an import takes) as checked task
    data: a new temporary file beside it (or, for gzip JSONL, the file itself). Raises
    FileRefused naming the problem and where; nothing is left behind then."""
    folder = received.parent
    written: Path | None = None
    try:
        head, blocks = peek(decompressed_blocks(received, limits))
        fmt = file_format(head, named_format)
        about: dict[str, Any] = {}
        if fmt is Format.JSONL:
            with received.open("rb") as probe:
                compressed = probe.read(2) == GZIP_MAGIC
            if compressed:
                data = received
            else:
                data = written = _write_gzip(folder, blocks, JSONL_GZIP_LEVEL)
        else:
            data = written = _convert(fmt, blocks, folder, limits, about)
        hosts = _checked_hosts(data, fmt, limits)
        size, sha256 = data.stat().st_size, sha256_of(data)
    except FormatError as exc:
        _remove(written)
        raise _format_refusal(exc, named_format) from None
    except LimitExceeded as exc:
        _remove(written)
        raise _limit_refusal(exc) from None
    except (OSError, EOFError, zlib.error) as exc:
        _remove(written)
        raise FileRefused(
            400,
            "invalid_import_file",
            f"the file is refused: its gzip data is not complete ({exc})",
            {"problem": f"the gzip data is not complete ({exc})"},
        ) from None
    except BaseException:
        _remove(written)
        raise
    return ImportedFile(data, size, sha256, hosts, fmt.value, about)


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_gzip(folder: Path, blocks: Iterator[bytes], level: int) -> Path:
    fd, path = create_temp_file(folder, prefix=".import-", suffix=".part")
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level) as out,
        ):
            for block in blocks:
                out.write(block)
            out.close()
            raw.flush()
            os.fsync(raw.fileno())
        return path
    except BaseException:
        _remove(path)
        raise


def _convert(
    fmt: Format,
    blocks: Iterator[bytes],
    folder: Path,
    limits: JsonlLimits,
    about: dict[str, Any],
) -> Path:
    lock, merge_path = create_temp_file(folder, prefix=".merge-", suffix=".tmp")
    try:
        records = task_lines(fmt, blocks, limits, merge_path)

        def lines() -> Iterator[bytes]:
            config = next(records)
            about.update(json.loads(config).get("imported", {}))
            batch: list[bytes] = [config]
            for line in records:
                batch.append(line)
                if len(batch) >= 1024:
                    batch.append(b"")
                    yield b"\n".join(batch)
                    batch.clear()
            batch.append(b"")
            yield b"\n".join(batch)

        return _write_gzip(folder, lines(), CONVERTED_GZIP_LEVEL)
    finally:
        os.close(lock)
        _remove(merge_path)


def _checked_hosts(path: Path, fmt: Format, limits: JsonlLimits) -> int:
    """How many host records the task data holds, once every record is checked as
    processing reads it."""
    try:
        with survey(path, limits=limits) as surveyed:
            return surveyed.host_records
    except TaskDataError as exc:
        raise _task_data_refusal(exc, fmt) from None


def _task_data_refusal(exc: TaskDataError, fmt: Format) -> FileRefused:
    details: dict[str, Any] = {"problem": exc.problem, "format": fmt.value}
    if exc.exceeded is not None:
        details |= exc.exceeded.details
        if exc.exceeded.too_large:
            return FileRefused(413, "too_large", f"the file is refused: {exc}", details)
    if fmt is not Format.JSONL:
        # The line is one of the task data written from the file, not of the file.
        return FileRefused(
            400,
            "invalid_import_file",
            f"the {LABELS[fmt]} file holds a host Surveyor cannot take: {exc.problem}",
            details,
        )
    if exc.line is not None:
        details["line"] = exc.line
    return FileRefused(
        400, "invalid_task_data", f"the file is not Surveyor task data: {exc}", details
    )


def _format_refusal(exc: FormatError, named: str | None) -> FileRefused:
    details: dict[str, Any] = {"problem": exc.problem}
    for key in ("line", "column", "offset"):
        value = getattr(exc, key)
        if value is not None:
            details[key] = value
    field_name = "format" if named and "there is no format" in exc.problem else None
    if field_name:
        details["field"] = field_name
    return FileRefused(400, "invalid_import_file", f"the file is refused: {exc}", details)


def _limit_refusal(exc: LimitExceeded) -> FileRefused:
    details = {"problem": exc.problem, **exc.details}
    if exc.too_large:
        return FileRefused(413, "too_large", f"the file is refused: {exc}", details)
    return FileRefused(400, "invalid_import_file", f"the file is refused: {exc}", details)


def _imported_message(imported: ImportedFile) -> str:
    """What the task's event says of the file: how many hosts, from what, what was left out."""
    message = f"imported {imported.hosts} host records ({LABELS[Format(imported.format)]})"
    skipped = imported.about.get("skipped")
    if isinstance(skipped, int) and skipped:
        message += f"; {skipped} hosts that were down or had no address left out"
    notes = imported.about.get("notes")
    if isinstance(notes, list) and notes:
        message += "; " + "; ".join(str(note) for note in notes)
    return message


def resolve_site(conn: Connection, principal: Principal, site: str | None) -> Site:
    """The site an import goes to: the one named (by id or name), or the organization's
    default site."""
    if site is None or not site.strip():
        default = accounts.default_site_id(conn, principal.organization_id)
        found = get_site(conn, principal.organization_id, default) if default else None
        if found is None:
            raise ImportRefused("this organization has no site yet")
        return found
    site = site.strip()
    found = None
    if site.isdigit() and int(site) <= _MAX_SITE_ID:
        found = get_site(conn, principal.organization_id, int(site))
    found = found or find_site(conn, principal.organization_id, site)
    if found is None:
        raise ImportRefused(f"there is no site {site!r}", field="site", site=site)
    return found


def create_import(
    conn: Connection,
    principal: Principal,
    imported: ImportedFile,
    *,
    site: str | None,
    name: str | None,
    description: str,
    data_path: Callable[[int], Path],
    move: Callable[[Path, Path], None],
    now: datetime,
) -> Task:
    """Create the import task in `processing_queued`, its data moved (`move`) from
    `imported.path` to `data_path(task id)`. The caller removes the moved file again when the
    transaction does not commit, so no task data is left without its task."""
    target = resolve_site(conn, principal, site)
    task = task_store.create_task(
        conn,
        {
            "organization_id": principal.organization_id,
            "site_id": target.id,
            "name": name or f"Import into {target.name}",
            "description": description,
            "type": kinds.IMPORT.type,
            "created_by": principal.email,
            "created_by_user_id": principal.user_id,
        },
        actor=principal.email,
        now=now,
    )
    final = data_path(task.id)
    move(imported.path, final)
    queued = task_store.transition(
        conn,
        principal.organization_id,
        task.id,
        TaskStatus.PROCESSING_QUEUED,
        actor=principal.email,
        message=_imported_message(imported),
        changes={
            "size_data": imported.size,
            "data_sha256": imported.sha256,
            "stats": {"hosts": imported.hosts},
            "data_acquisition_ended_at": task.created_at,
        },
        now=now,
    )
    audit.record(
        conn,
        principal,
        "import",
        "task",
        task.id,
        now=now,
        details={
            "site_id": target.id,
            "hosts": imported.hosts,
            "bytes": imported.size,
            "format": imported.format,
        },
    )
    return queued
