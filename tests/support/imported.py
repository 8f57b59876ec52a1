"""Reading a file of another tool as task data records, the way an import does, in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from surveyor.core.jsonl_limits import DEFAULT_LIMITS, JsonlLimits
from surveyor.formats.convert import file_format, peek, task_lines


def blocks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def convert(
    data: bytes,
    folder: Path,
    *,
    named: str | None = None,
    block: int = 1 << 20,
    limits: JsonlLimits = DEFAULT_LIMITS,
) -> list[dict[str, Any]]:
    """Every task data record of the file (config, hosts, summary), fed in `block`-byte
    pieces so that records and tags fall across block boundaries."""
    head, blocks = peek(blocks_of(data, block))
    fmt = file_format(head, named)
    merge = folder / f"merge-{len(list(folder.iterdir()))}.sqlite"
    try:
        return [json.loads(line) for line in task_lines(fmt, blocks, limits, merge)]
    finally:
        merge.unlink(missing_ok=True)


def hosts(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The host records by their first address (or first name)."""
    found = {}
    for record in records:
        if record["type"] == "host":
            key = (record["addresses"] or record["hostnames"])[0]
            assert key not in found, f"{key} has two records"
            found[key] = record
    return found


def ports(record: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(s["proto"], s["port"]): s for s in record["services"]}
