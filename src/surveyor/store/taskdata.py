"""Where task data lives: `<data dir>/tasks/<task id>.jsonl.gz`, written atomically.

An upload is streamed into a temporary file beside its final place while its SHA-256 and
size are computed; only a complete, verified file is renamed into place, so a reader never
sees half a file and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path
from types import TracebackType

TASKS_DIR = "tasks"
MAX_RECORD_BYTES = 64 << 20


def task_data_path(data_dir: Path, task_id: int) -> Path:
    return data_dir / TASKS_DIR / f"{task_id}.jsonl.gz"


def sha256_of(path: Path, *, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class IncomingTaskData:
    """A task data file being received: write chunks, then `commit` it into place or
    `discard` it. Used as a context manager, it discards whatever was not committed."""

    def __init__(self, data_dir: Path, task_id: int) -> None:
        self.final_path = task_data_path(data_dir, task_id)
        self.final_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(
            prefix=f".{task_id}-", suffix=".part", dir=self.final_path.parent
        )
        self.temp_path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        """Finish writing (flushed to disk); the digest and size are final after this."""
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def commit(self) -> Path:
        """Move the complete file into its final place, replacing any earlier one."""
        self.close()
        os.replace(self.temp_path, self.final_path)
        self._done = True
        return self.final_path

    def discard(self) -> None:
        if self._done:
            return
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()
        self._done = True

    def __enter__(self) -> IncomingTaskData:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()


def task_data_problem(path: Path) -> str | None:
    """Why the file is not task data (SPEC §7: gzip JSONL, a `config` record first and a
    `summary` record last), or None when it is."""
    first: str | None = None
    last: str | None = None
    count = 0
    try:
        with gzip.open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if len(line) > MAX_RECORD_BYTES:
                    return f"record {number} is larger than {MAX_RECORD_BYTES} bytes"
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    return f"line {number} is not JSON"
                kind = record.get("type") if isinstance(record, dict) else None
                if not isinstance(kind, str):
                    return f"record {number} has no 'type'"
                first = first or kind
                last = kind
                count += 1
    except (OSError, EOFError, zlib.error) as exc:
        return f"it is not a complete gzip file ({exc})"
    if count == 0:
        return "it holds no records"
    if first != "config":
        return f"its first record is '{first}', not 'config'"
    if last != "summary":
        return f"its last record is '{last}', not 'summary'"
    return None
