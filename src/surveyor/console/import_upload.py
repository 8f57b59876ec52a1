"""Receiving an import file, for both ways in: the API's `POST /api/v1/imports`
(`console/routes/imports.py`) and the Import page's upload (`console/web/imports.py`).

The file is stored gzip-compressed while it arrives, then checked record by record within the
task data limits; a bad record is a 400 naming its line, data over a size limit a 413 naming
the limit, and nothing is kept. A good file becomes an import task in `processing_queued`
(`service/imports.py`), merged by the same workers as scans. Refusals are `ApiError`s; the
page shows their message at its form.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from starlette.concurrency import run_in_threadpool

from surveyor.console.errors import ApiError
from surveyor.console.state import ConsoleState
from surveyor.core.jsonl_limits import JsonlLimits
from surveyor.core.task import Task
from surveyor.processing.records import TaskDataError, survey
from surveyor.service import imports as import_service
from surveyor.service.imports import ImportedFile
from surveyor.store.accounts import Principal
from surveyor.store.taskdata import GZIP_MAGIC, TASKS_DIR, create_temp_file, task_data_path


class _StoredUpload:
    """The upload as it will be stored (gzip), in a temporary file beside the task data."""

    def __init__(self, data_dir: Path) -> None:
        fd, self.path = create_temp_file(data_dir / TASKS_DIR, prefix=".import-", suffix=".part")
        # Open (and so locked) until discarded.
        self._file = os.fdopen(fd, "wb")
        self._sink: IO[bytes] | gzip.GzipFile | None = None
        self._head = b""
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self._sink is None:
            self._head += chunk
            if len(self._head) < 2:
                return
            chunk, self._head = self._head, b""
            # Plain JSONL is compressed on the way in; gzip is stored as it came.
            self._sink = (
                self._file
                if chunk[:2] == GZIP_MAGIC
                else gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=6)
            )
        assert self._sink is not None
        self._sink.write(chunk)

    def finish(self) -> tuple[int, str]:
        """Finish writing (flushed to disk); the stored size and SHA-256."""
        if self._sink is None:
            self._sink = gzip.GzipFile(fileobj=self._file, mode="wb")
            assert self._sink is not None
            self._sink.write(self._head)
        if self._sink is not self._file:
            self._sink.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        digest = hashlib.sha256()
        with self.path.open("rb") as stored:
            while block := stored.read(1 << 20):
                digest.update(block)
        return self.path.stat().st_size, digest.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _host_records(path: Path, limits: JsonlLimits) -> int:
    """How many host records the file holds, once every record is checked."""
    with survey(path, limits=limits) as surveyed:
        return surveyed.host_records


def _refusal(exc: TaskDataError) -> ApiError:
    details: dict[str, Any] = {"problem": exc.problem}
    if exc.line is not None:
        details["line"] = exc.line
    if exc.exceeded is not None:
        details |= exc.exceeded.details
        if exc.exceeded.too_large:
            return ApiError(413, "too_large", f"the file is refused: {exc}", details)
    return ApiError(400, "invalid_task_data", f"the file is not Surveyor task data: {exc}", details)


def _create_import(
    state: ConsoleState,
    principal: Principal,
    imported: ImportedFile,
    *,
    site: str | None,
    name: str | None,
    description: str,
) -> Task:
    moved: list[Path] = []

    def move(source: Path, final: Path) -> None:
        os.replace(source, final)
        moved.append(final)

    try:
        with state.db.write() as conn:
            return import_service.create_import(
                conn,
                principal,
                imported,
                site=site,
                name=name,
                description=description,
                data_path=lambda task_id: task_data_path(state.settings.data_dir, task_id),
                move=move,
                now=state.clock.now(),
            )
    except import_service.ImportRefused as refused:
        details = {"field": refused.field, "site": refused.site} if refused.field else {}
        raise ApiError(400, "invalid_import", refused.message, details) from refused
    except BaseException:
        for final in moved:
            with contextlib.suppress(FileNotFoundError):
                final.unlink()
        raise


async def receive_import(
    state: ConsoleState,
    principal: Principal,
    chunks: AsyncIterator[bytes],
    *,
    content_type: str,
    site: str | None,
    name: str | None,
    description: str,
    format: str | None = None,
) -> Task:
    """Receive a file (`chunks`), check it and create its import task: what the API's
    `POST /api/v1/imports` and the Import page's upload (`console/web/imports.py`) both do.
    A refusal is an `ApiError` and leaves nothing behind."""
    if format and format != "jsonl":
        raise ApiError(
            400,
            "invalid_import",
            f"the format {format!r} is not read by this console: send Surveyor JSONL",
            {"field": "format"},
        )
    if content_type.startswith("multipart/"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the file itself as the request body (for example "
            "Content-Type: application/gzip), not as a form",
        )
    upload = await run_in_threadpool(_StoredUpload, state.settings.data_dir)
    try:
        async for chunk in chunks:
            if chunk:
                await run_in_threadpool(upload.write, chunk)
        if upload.received == 0:
            raise ApiError(400, "invalid_import", "the request body is empty; send the file")
        size, sha256 = await run_in_threadpool(upload.finish)
        try:
            hosts = await run_in_threadpool(
                _host_records, upload.path, state.settings.task_data_limits
            )
        except TaskDataError as exc:
            raise _refusal(exc) from exc
        return await run_in_threadpool(
            _create_import,
            state,
            principal,
            ImportedFile(upload.path, size, sha256, hosts),
            site=site,
            name=name.strip() if name else None,
            description=description,
        )
    finally:
        await run_in_threadpool(upload.discard)
