"""Limits on reading JSONL task data (SPEC §7) that anyone may send: how long a record may
be, how deeply its JSON may nest, and how far a gzip file may expand.

Every limit is enforced while reading, never after: a line is refused as soon as it grows
past the record limit (it is never held whole), nesting is measured before `json.loads`
(which would otherwise recurse once per level), and decompression stops once its output
passes the file's budget. Memory stays a small multiple of the record limit for any input.
Each limit has a setting, named in the error, so an operator knows what to raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

#: A record (one line) may be this long. Parsing a record costs up to ~25 times its size in
#: memory, so this is what bounds memory.
MAX_RECORD_BYTES: Final = 1 << 20
#: Objects and arrays may nest this deep (scan records nest four levels).
MAX_JSON_DEPTH: Final = 64
#: A file may decompress to at most this many bytes...
MAX_DATA_BYTES: Final = 64 << 30
#: ...and to at most this many times its compressed size (task data compresses 10 to 20
#: times; a decompression bomb about 1000 times)...
MAX_GZIP_RATIO: Final = 200
#: ...except that any file may expand to this much, so small files are never refused.
RATIO_FREE_BYTES: Final = 16 << 20

RECORD_SETTING: Final = "SURVEYOR_MAX_RECORD_BYTES"
DEPTH_SETTING: Final = "SURVEYOR_MAX_JSON_DEPTH"
DATA_SETTING: Final = "SURVEYOR_MAX_DATA_BYTES"
RATIO_SETTING: Final = "SURVEYOR_MAX_GZIP_RATIO"


class LimitExceeded(Exception):
    """Data over one of the limits; `setting` names the limit, `line` the line at fault.

    `too_large` is true for the size limits (the answer is 413) and false for nesting.
    """

    def __init__(
        self, problem: str, *, setting: str, maximum: int, line: int | None = None
    ) -> None:
        self.problem = problem
        self.setting = setting
        self.maximum = maximum
        self.line = line
        super().__init__(f"line {line}: {problem}" if line is not None else problem)

    @property
    def too_large(self) -> bool:
        return self.setting != DEPTH_SETTING

    @property
    def details(self) -> dict[str, Any]:
        """What the API shows of it, beside the message."""
        found: dict[str, Any] = {"limit": self.setting, "maximum": self.maximum}
        if self.line is not None:
            found["line"] = self.line
        return found


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number above 0, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class JsonlLimits:
    """The limits one reader applies; every field has its setting (see the constants)."""

    max_record_bytes: int = MAX_RECORD_BYTES
    max_json_depth: int = MAX_JSON_DEPTH
    max_data_bytes: int = MAX_DATA_BYTES
    max_gzip_ratio: int = MAX_GZIP_RATIO

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JsonlLimits:
        return cls(
            max_record_bytes=_positive(environ, RECORD_SETTING, MAX_RECORD_BYTES),
            max_json_depth=_positive(environ, DEPTH_SETTING, MAX_JSON_DEPTH),
            max_data_bytes=_positive(environ, DATA_SETTING, MAX_DATA_BYTES),
            max_gzip_ratio=_positive(environ, RATIO_SETTING, MAX_GZIP_RATIO),
        )

    def expansion_budget(self, compressed_bytes: int) -> int:
        """How many bytes a gzip file of this size may decompress to."""
        by_ratio = max(RATIO_FREE_BYTES, self.max_gzip_ratio * compressed_bytes)
        return min(self.max_data_bytes, by_ratio)

    def exceeded(self, setting: str, problem: str, line: int | None = None) -> LimitExceeded:
        """`problem`, data over the limit `setting` sets (at `line`, when one is at fault)."""
        maximum = {
            RECORD_SETTING: self.max_record_bytes,
            DEPTH_SETTING: self.max_json_depth,
            DATA_SETTING: self.max_data_bytes,
            RATIO_SETTING: self.max_gzip_ratio,
        }[setting]
        return LimitExceeded(problem, setting=setting, maximum=maximum, line=line)

    def expanded_too_far(self, compressed_bytes: int) -> LimitExceeded:
        budget = self.expansion_budget(compressed_bytes)
        if budget == self.max_data_bytes:
            return self.exceeded(
                DATA_SETTING, f"the data is larger than {budget} bytes once decompressed"
            )
        return self.exceeded(
            RATIO_SETTING,
            f"the file decompresses to more than {self.max_gzip_ratio} times its size "
            f"({budget} bytes from {compressed_bytes}); it looks like a decompression bomb",
        )

    def too_much_data(self) -> LimitExceeded:
        return self.exceeded(DATA_SETTING, f"the data is larger than {self.max_data_bytes} bytes")


DEFAULT_LIMITS: Final = JsonlLimits()


def _record_too_large(limits: JsonlLimits, line: int) -> LimitExceeded:
    problem = f"the record is larger than {limits.max_record_bytes} bytes"
    return limits.exceeded(RECORD_SETTING, problem, line)


_TEXT = re.compile(rb"[^\n]+")


def split_lines(blocks: Iterable[bytes], limits: JsonlLimits) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-empty line of the data arriving in `blocks`.

    A line longer than the record limit is refused as soon as that much of it has arrived,
    so at most one limit's worth of a line is ever held. Runs of empty lines cost no Python
    work per line.
    """
    maximum = limits.max_record_bytes
    carry = b""
    done = 0
    for block in blocks:
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut:
            complete, carry = data[:cut], data[cut:]
            position = 0
            for match in _TEXT.finditer(complete):
                start, end = match.span()
                done += complete.count(b"\n", position, start) + 1
                if end - start > maximum:
                    raise _record_too_large(limits, done)
                yield done, match.group()
                position = end + 1
            done += complete.count(b"\n", position)
        else:
            carry = data
        if len(carry) > maximum:
            raise _record_too_large(limits, done + 1)
    if carry:
        yield done + 1, carry


#: Everything but quotes and brackets, deleted before nesting is measured.
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
#: Opening brackets as +1, closing ones as -1 (as signed bytes).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nesting_depth(line: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (0 for a scalar).

    Brackets inside strings do not count. Only C-level work per byte: escapes that could
    hide a quote are removed, everything but quotes and brackets is deleted, the quoted
    stretches are dropped, and the depth is the highest running sum of +1/-1 steps. Invalid
    JSON gets the depth a parser would reach before failing.
    """
    if b"\\" in line:
        line = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = line.translate(None, _NOT_STRUCTURE)
    steps = b"".join(structure.split(b'"')[::2]).translate(_STEPS)
    if not steps:
        return 0
    return max(0, max(accumulate(memoryview(steps).cast("b"))))


def check_depth(line: bytes, number: int, limits: JsonlLimits) -> None:
    """Refuse a line nested deeper than the limit (cheaply: most lines cannot be)."""
    maximum = limits.max_json_depth
    if line.count(b"[") + line.count(b"{") <= maximum:
        return
    if nesting_depth(line) > maximum:
        raise _too_deep(limits, number)


def _too_deep(limits: JsonlLimits, line: int) -> LimitExceeded:
    problem = f"the JSON nests deeper than {limits.max_json_depth} levels"
    return limits.exceeded(DEPTH_SETTING, problem, line)


def parse_line(line: bytes, number: int, limits: JsonlLimits) -> Any:
    """The JSON value of one line, within the limits.

    Raises LimitExceeded, or ValueError (UnicodeDecodeError included) for text that is not
    JSON.
    """
    if len(line) > limits.max_record_bytes:
        raise _record_too_large(limits, number)
    check_depth(line, number, limits)
    try:
        return json.loads(line)
    except RecursionError:
        # A last guard: whatever the measure says, data must never crash the reader.
        raise _too_deep(limits, number) from None
