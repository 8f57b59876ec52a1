"""Where task data lives: `<data dir>/tasks/<task id>.jsonl.gz`, written atomically, and
how it is read back within the limits of `core.jsonl_limits`.

An upload is streamed into a temporary file beside its final place while its SHA-256 and
size are computed; only a complete, verified file is renamed into place, so a reader never
sees half a file and a failed upload leaves nothing behind. Every temporary file in that
folder is locked (`flock`) by the process writing it, so a console that starts removes the
temporary files of killed processes and never those of a live console or worker sharing
the data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import stat
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from surveyor.core.jsonl_limits import JsonlLimits, parse_line, split_lines

TASKS_DIR = "tasks"
GZIP_MAGIC = b"\x1f\x8b"
#: Decompressed data is read in blocks of this size.
BLOCK_BYTES = 1 << 20
#: Temporary files in the tasks folder: a leading dot and one of these endings.
TEMP_SUFFIXES = (".part", ".tmp")


def task_data_path(data_dir: Path, task_id: int) -> Path:
    return data_dir / TASKS_DIR / f"{task_id}.jsonl.gz"


def sha256_of(path: Path, *, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def create_temp_file(folder: Path, *, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new temporary file in `folder` (0600), locked for as long as its descriptor is
    open; `prefix` must start with a dot and `suffix` be one of TEMP_SUFFIXES."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    while True:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return fd, Path(name)
        # A starting console took it for abandoned between its creation and our lock.
        os.close(fd)


def remove_abandoned_temp_files(data_dir: Path) -> list[Path]:
    """Remove the temporary files that killed processes left in the tasks folder (partial
    uploads and imports, processing spools); those a live process holds stay."""
    folder = data_dir / TASKS_DIR
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if not (path.name.startswith(".") and path.name.endswith(TEMP_SUFFIXES)):
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def decompressed_blocks(path: Path, limits: JsonlLimits) -> Iterator[bytes]:
    """The file's bytes, decompressed when it is gzip, in blocks of at most BLOCK_BYTES.

    Raises LimitExceeded as soon as the output passes the limits (a gzip file may expand
    only so far: see `JsonlLimits.expansion_budget`), and OSError, EOFError or zlib.error
    for a damaged gzip file.
    """
    with path.open("rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        budget = limits.expansion_budget(size) if compressed else limits.max_data_bytes
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        total = 0
        with stream:
            while block := stream.read(BLOCK_BYTES):
                total += len(block)
                if total > budget:
                    raise limits.expanded_too_far(size) if compressed else limits.too_much_data()
                yield block


def task_data_lines(path: Path, limits: JsonlLimits) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-empty line of a task data file, within `limits`."""
    return split_lines(decompressed_blocks(path, limits), limits)


class NotJson(ValueError):
    """A line of task data that is not JSON: its number, and the parser's reason."""

    def __init__(self, line: int, reason: ValueError) -> None:
        super().__init__(str(reason))
        self.line = line


class Unreadable(Exception):
    """A task data file that is not complete gzip or text: `after` is the last line read
    (0 when none was); its message is the reader's error."""

    def __init__(self, after: int, reason: OSError | EOFError | zlib.error) -> None:
        super().__init__(str(reason))
        self.after = after


def task_data_values(path: Path, limits: JsonlLimits) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) for every line of a task data file that is not blank,
    within `limits`. Raises NotJson, Unreadable, or LimitExceeded for data over the limits."""
    number = 0
    try:
        for number, line in task_data_lines(path, limits):
            if not line.strip():
                continue
            try:
                value = parse_line(line, number, limits)
            except ValueError as exc:  # UnicodeDecodeError included
                raise NotJson(number, exc) from None
            yield number, value
    except (OSError, EOFError, zlib.error) as exc:
        raise Unreadable(number, exc) from None


class IncomingTaskData:
    """A task data file being received: write chunks, then `commit` it into place or
    `discard` it. Used as a context manager, it discards whatever was not committed."""

    def __init__(self, data_dir: Path, task_id: int) -> None:
        self.final_path = task_data_path(data_dir, task_id)
        fd, self.temp_path = create_temp_file(
            self.final_path.parent, prefix=f".{task_id}-", suffix=".part"
        )
        # Open (and so locked) until committed or discarded.
        self._handle = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        """Finish writing (flushed to disk); the digest and size are final after this."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def commit(self) -> Path:
        """Move the complete file into its final place, replacing any earlier one."""
        self.finish()
        os.replace(self.temp_path, self.final_path)
        self._handle.close()
        self._done = True
        return self.final_path

    def discard(self) -> None:
        if self._done:
            return
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()
        self._done = True

    def __enter__(self) -> IncomingTaskData:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def task_data_problem(path: Path, limits: JsonlLimits) -> str | None:
    """Why the file is not task data (SPEC §7: gzip JSONL, a `config` record first and a
    `summary` record last), or None when it is. Raises LimitExceeded for data over the
    limits."""
    first: str | None = None
    last: str | None = None
    count = 0
    with path.open("rb") as probe:
        if probe.read(2) != GZIP_MAGIC:
            return "it is not a gzip file"
    try:
        for number, record in task_data_values(path, limits):
            kind = record.get("type") if isinstance(record, dict) else None
            if not isinstance(kind, str):
                return f"record {number} has no 'type'"
            first = first or kind
            last = kind
            count += 1
    except NotJson as exc:
        return f"line {exc.line} is not JSON"
    except Unreadable as exc:
        return f"it is not a complete gzip file ({exc})"
    if count == 0:
        return "it holds no records"
    if first != "config":
        return f"its first record is '{first}', not 'config'"
    if last != "summary":
        return f"its last record is '{last}', not 'summary'"
    return None
