"""Task data files (SPEC §7): gzip JSONL, one record per line.

`surveyor scan -o FILE` writes them, explorers upload them, imports read them. Reading also
accepts plain (uncompressed) JSONL, since people hand-edit and concatenate such files.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

_GZIP_MAGIC = b"\x1f\x8b"
#: gzip's default of 9 costs several times the CPU for a few percent of size
COMPRESS_LEVEL = 6
#: lines are compressed in chunks of about this size: per-line writes cost more than the JSON
CHUNK_BYTES = 1 << 16
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class TaskDataError(ValueError):
    """A task data file that is not one: names the line at fault."""


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as a JSON line."""
    return _ENCODER.encode(record).encode() + b"\n"


def write_task_data(records: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write records as gzip JSONL, streaming; the file appears whole or not at all.
    Returns the number of records written."""
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    count = 0
    try:
        with gzip.open(partial, "wb", compresslevel=COMPRESS_LEVEL) as out:
            chunk = bytearray()
            for record in records:
                chunk += encode_record(record)
                count += 1
                if len(chunk) >= CHUNK_BYTES:
                    out.write(chunk)
                    chunk.clear()
            out.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return count


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
