"""What every reader shares: the formats, the error that names where a file is broken, what a
file says about its scan, and building host records of the task data format (SPEC §7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

#: Text fields are cut to these lengths (the task data reader would cut them anyway).
MAX_TEXT: Final = 1000
MAX_NAME: Final = 200
#: A host keeps at most this many names, CPEs of a service, tags and attributes.
MAX_NAMES: Final = 100
MAX_ATTRIBUTES: Final = 50


class Format(StrEnum):
    """The formats an import accepts (`format=` takes these names)."""

    JSONL = "jsonl"
    NMAP = "nmap"
    MASSCAN = "masscan"
    CSV = "csv"

    @property
    def source(self) -> str:
        """The `source` the host records of this format carry."""
        return "import" if self is Format.JSONL else f"import:{self.value}"


class FormatError(ValueError):
    """A file that cannot be read as its format: `problem`, and where (`line`, `column`,
    `offset` in bytes, as far as they are known)."""

    def __init__(
        self,
        problem: str,
        *,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(f"{self.where}: {problem}" if self.where else problem)

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"line {self.line}" + (f", column {self.column}" if self.column else "")
        if self.offset is not None:
            return f"byte {self.offset}"
        return ""


@dataclass
class ScanFacts:
    """What a file says about the scan that wrote it, learned while it is read."""

    scanner: str = ""
    version: str = ""
    args: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    #: The scan did not finish (an nmap file without its end).
    partial: bool = False
    #: Host entries read (before entries of one address are merged) and left out (down).
    entries: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def saw_time(self, moment: str | None) -> None:
        """Widen started/finished to include `moment` (RFC 3339)."""
        if moment is None:
            return
        if self.started_at is None or moment < self.started_at:
            self.started_at = moment
        if self.finished_at is None or moment > self.finished_at:
            self.finished_at = moment


def epoch_time(value: object) -> str | None:
    """A Unix time (as nmap and masscan write it) as RFC 3339 UTC, or None when it is not one."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        return None
    if not 0 < seconds < 253402300800:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def text(value: object, limit: int = MAX_NAME) -> str:
    """Short, clean text: stripped, without NUL, cut to `limit`."""
    found = value.strip() if type(value) is str else str(value).strip()
    if "\x00" in found:
        found = found.replace("\x00", "")
    return found[:limit]


def port_number(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 1 <= number <= 65535 else None


def service_record(port: int, proto: str, state: str = "open") -> dict[str, Any]:
    return {"port": port, "proto": proto, "state": state}


def host_record(source: str, addresses: list[str]) -> dict[str, Any]:
    return {"type": "host", "source": source, "addresses": addresses}
