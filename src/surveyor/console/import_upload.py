"""Receiving an import file, for both ways in: the API's `POST /api/v1/imports`
(`console/routes/imports.py`) and the Import page's upload (`console/web/imports.py`).

The file is the raw body, or the `file` part of a `multipart/form-data` body (whose `site`,
`name`, `format` and `description` parts count as the fields of the same names). It is
stored as it arrives, then `service.imports.check_file` tells its format (Surveyor JSONL,
nmap XML, masscan output, CSV; gzip or plain), turns it into task data and checks every
record: a broken file is a 400 naming where and what, data over a size limit a 413 naming
the limit, and nothing is kept. A good file becomes an import task in `processing_queued`
(`service/imports.py`), merged by the same workers as scans. Refusals are `ApiError`s; the
page shows their message at its form.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from surveyor.console.errors import ApiError
from surveyor.console.state import ConsoleState
from surveyor.core.task import Task
from surveyor.formats.records import Format
from surveyor.service import imports as import_service
from surveyor.service.imports import FileRefused, ImportedFile
from surveyor.store.accounts import Principal
from surveyor.store.task_data_store import keep_task_data
from surveyor.store.taskdata import TASKS_DIR, create_temp_file, task_data_path

#: The form fields read besides the file, and how long each may be.
FORM_FIELDS = {"site": 200, "name": 200, "format": 20, "description": 10_000}


class _StoredUpload:
    """The upload as it came, in a temporary file beside the task data."""

    def __init__(self, data_dir: Path) -> None:
        fd, self.path = create_temp_file(data_dir / TASKS_DIR, prefix=".import-", suffix=".part")
        # Open (and so locked) until discarded.
        self._file = os.fdopen(fd, "wb")
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self._file.write(chunk)

    def finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class _Form:
    """A `multipart/form-data` body read as it arrives: the `file` part (or else the first
    part with a file name) into the upload, the small fields into `fields`."""

    def __init__(self, boundary: bytes, upload: _StoredUpload) -> None:
        self.upload = upload
        self.fields: dict[str, str] = {}
        self.files = 0
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._target: str | None = None
        self._value = bytearray()
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_name,
                "on_header_value": self._header_value,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_field = b""
        self._target = None
        self._value = bytearray()

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        name = self._header_field.lower()
        self._headers[name] = self._headers.get(name, b"") + data[start:end]
        if len(self._headers[name]) > 4096:
            raise ApiError(400, "invalid_import", "a form part's header is too long")

    def _headers_finished(self) -> None:
        self._header_field = b""
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if (name == "file" or b"filename" in options) and self.files == 0:
            self._target = "\0file"
            self.files += 1
        elif name in FORM_FIELDS:
            self._target = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "\0file":
            self.upload.write(data[start:end])
        elif self._target is not None:
            self._value += data[start:end]
            if len(self._value) > FORM_FIELDS[self._target] * 4:
                raise ApiError(
                    400, "invalid_import", f"the form field {self._target!r} is too long"
                )

    def _part_end(self) -> None:
        if self._target is not None and self._target != "\0file":
            self.fields[self._target] = self._value.decode("utf-8", "replace")[
                : FORM_FIELDS[self._target]
            ]
        self._target = None

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def finish(self) -> None:
        self.parser.finalize()
        if self.files == 0:
            raise ApiError(
                400, "invalid_import", "the form has no file: send it as the part named 'file'"
            )


def _refusal(refused: FileRefused) -> ApiError:
    return ApiError(refused.status, refused.code, refused.message, refused.details)


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
            task = import_service.create_import(
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
            keep_task_data(conn, task.id, task_data_path(state.settings.data_dir, task.id))
            return task
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
    format: Format | str | None = None,
) -> Task:
    """Receive a file (`chunks`: the raw file, or a `multipart/form-data` body), check it
    and create its import task: what the API's `POST /api/v1/imports` and the Import page's
    upload (`console/web/imports.py`) both do. A refusal is an `ApiError` and leaves
    nothing behind."""
    if isinstance(format, str):
        format = _form_format(format) if format.strip() else None
    upload = await run_in_threadpool(_StoredUpload, state.settings.data_dir)
    imported: ImportedFile | None = None
    try:
        form: _Form | None = None
        sink: Any = upload
        if content_type.startswith("multipart/form-data"):
            _, options = parse_options_header(content_type)
            boundary = options.get(b"boundary")
            if not boundary:
                raise ApiError(400, "invalid_import", "the form has no boundary")
            form = sink = _Form(boundary, upload)
        elif content_type.startswith("multipart/"):
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the file as the request body, or as the part 'file' of multipart/form-data",
            )
        async for chunk in chunks:
            if chunk:
                await run_in_threadpool(sink.write, chunk)
        if form is not None:
            form.finish()
            fields = form.fields
            site = site or fields.get("site") or None
            name = name or fields.get("name") or None
            description = description or fields.get("description", "")
            if format is None and fields.get("format", "").strip():
                format = _form_format(fields["format"])
        if upload.received == 0:
            raise ApiError(400, "invalid_import", "the request body is empty; send the file")
        await run_in_threadpool(upload.finish)
        named = format.value if format is not None else None
        try:
            imported = await run_in_threadpool(
                lambda: import_service.check_file(
                    upload.path, named_format=named, limits=state.settings.task_data_limits
                )
            )
        except FileRefused as refused:
            raise _refusal(refused) from refused
        return await run_in_threadpool(
            _create_import,
            state,
            principal,
            imported,
            site=site,
            name=name.strip() if name else None,
            description=description,
        )
    finally:
        if imported is not None and imported.path != upload.path:
            with contextlib.suppress(FileNotFoundError):
                imported.path.unlink()
        await run_in_threadpool(upload.discard)


def _form_format(value: str) -> Format:
    try:
        return Format(value.strip().lower())
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise ApiError(
            400,
            "invalid_import",
            f"there is no format {value.strip()!r}; formats are {names}",
            {"field": "format"},
        ) from None
