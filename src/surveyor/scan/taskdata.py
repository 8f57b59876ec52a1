"""Task data files (SPEC §7): gzip JSONL, one record per line.

`surveyor scan -o FILE` writes them, explorers upload them, imports read them. Reading also
accepts plain (uncompressed) JSONL, since people hand-edit and concatenate such files.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from surveyor.core.jsonl import encode_record

__all__ = [
    "COMPRESS_LEVEL",
    "FAST_COMPRESS_LEVEL",
    "TaskDataError",
    "encode_record",
    "read_task_data",
    "write_encoded",
    "write_task_data",
]

_GZIP_MAGIC = b"\x1f\x8b"
#: gzip's default of 9 costs several times the CPU for a few percent of size
COMPRESS_LEVEL = 6
#: For lines made faster than level 6 compresses them (a directory sync's): level 3 takes
#: half level 6's CPU for 7% more bytes (100,000 LDAP computers: 1.49 MB against 1.40 MB),
#: and the CPU it frees is the one the server and the reading share
FAST_COMPRESS_LEVEL = 3
#: lines are compressed in chunks of about this size: per-line writes cost more than the JSON,
#: and each chunk costs the writing thread a wait for the GIL
CHUNK_BYTES = 1 << 19
#: chunks waiting for the writing thread, at most: memory stays a few chunks whatever the size
_QUEUED_CHUNKS = 2


class TaskDataError(ValueError):
    """A task data file that is not one: names the line at fault."""


def write_task_data(records: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write records as gzip JSONL, streaming; the file appears whole or not at all.
    Returns the number of records written."""
    count = 0
    with _task_data_file(path) as writer:
        chunk = bytearray()
        for record in records:
            chunk += encode_record(record)
            count += 1
            if len(chunk) >= CHUNK_BYTES:
                writer.write(bytes(chunk))
                chunk.clear()
        writer.write(bytes(chunk))
    return count


def write_encoded(
    pieces: Iterable[bytes], path: str | os.PathLike[str], *, level: int = COMPRESS_LEVEL
) -> None:
    """Write task data already encoded, each record as `encode_record` encodes it (a piece
    holds any number of whole lines), as gzip JSONL compressed at `level`, streaming; the
    file appears whole or not at all."""
    with _task_data_file(path, level) as writer:
        chunk = bytearray()
        for piece in pieces:
            chunk += piece
            if len(chunk) >= CHUNK_BYTES:
                writer.write(bytes(chunk))
                chunk.clear()
        writer.write(bytes(chunk))


@contextlib.contextmanager
def _task_data_file(
    path: str | os.PathLike[str], level: int = COMPRESS_LEVEL
) -> Iterator[_ChunkWriter]:
    """A writer of chunks of lines into a gzip file at `path`, in place once the block ends
    without an error. The chunks are compressed and written by a thread of their own (zlib
    lets go of the GIL), so a second CPU takes that work while the records are still being
    made; at most `_QUEUED_CHUNKS` chunks wait for it."""
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    try:
        with gzip.open(partial, "wb", compresslevel=level) as out:
            writer = _ChunkWriter(out)
            try:
                yield writer
            except BaseException:
                writer.close(raising=False)  # the records' own failure is the one to tell
                raise
            writer.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class _ChunkWriter:
    """Hands chunks to a thread that writes them to `out`; its failure is raised here."""

    def __init__(self, out: gzip.GzipFile) -> None:
        self._out = out
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUED_CHUNKS)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="task-data-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._out.write(chunk)
                except BaseException as exc:  # raised in the caller's thread
                    self._failure = exc

    def write(self, chunk: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._queue.put(chunk)

    def close(self, *, raising: bool = True) -> None:
        """Waits for every chunk to be written; raises the writing's failure, if any."""
        self._queue.put(None)
        self._thread.join()
        if raising and self._failure is not None:
            raise self._failure


def read_task_data(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a task data file (gzip or plain JSONL), lazily; blank lines are skipped.
    Raises `TaskDataError` for a line that is not a JSON object with a string `type`."""
    with Path(path).open("rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    stream: io.BufferedIOBase
    with gzip.open(path, "rb") if compressed else Path(path).open("rb") as stream:
        try:
            yield from _records(stream)
        except (OSError, EOFError) as error:
            raise TaskDataError(f"the file is damaged: {error}") from error


def _records(stream: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            raise TaskDataError(f"line {number} is not JSON: {error}") from error
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise TaskDataError(f"line {number} is not a record (an object with a 'type')")
        yield record
