"""A file of another tool as the records of Surveyor task data (SPEC §7): a `config`
record, one `host` record per host (the entries of one address merged), a `summary`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from surveyor.core.jsonl_limits import JsonlLimits
from surveyor.formats import csv_hosts, masscan, nmap_xml
from surveyor.formats.detect import HEAD_BYTES, detect
from surveyor.formats.merge import HostMerge, encode
from surveyor.formats.records import Format, FormatError, ScanFacts

Reader = Callable[[Iterable[bytes], JsonlLimits, ScanFacts], Iterator[Any]]

LABELS: Final = {
    Format.JSONL: "Surveyor task data",
    Format.NMAP: "nmap XML",
    Format.MASSCAN: "masscan output",
    Format.CSV: "CSV",
}


def _masscan_reader(head: bytes) -> Reader:
    start = head.lstrip()
    if start.startswith(b"<"):
        return nmap_xml.read_masscan_xml
    if start.startswith((b"[", b"{")):
        return masscan.read_json
    return masscan.read_list


def reader_for(fmt: Format, head: bytes) -> Reader:
    if fmt is Format.NMAP:
        return nmap_xml.read_nmap
    if fmt is Format.MASSCAN:
        return _masscan_reader(head)
    if fmt is Format.CSV:
        return csv_hosts.read_csv
    raise ValueError(f"{fmt} is read as task data, not converted")


def peek(blocks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The file's first bytes, and all its blocks again."""
    stream = iter(blocks)
    head: list[bytes] = []
    size = 0
    for block in stream:
        head.append(block)
        size += len(block)
        if size >= HEAD_BYTES:
            break
    return b"".join(head), itertools.chain(head, stream)


def file_format(head: bytes, named: str | None) -> Format:
    """The format `format=` names, or else the one the first bytes show."""
    if named:
        try:
            return Format(named.strip().lower())
        except ValueError:
            names = ", ".join(f.value for f in Format)
            raise FormatError(f"there is no format {named!r}; formats are {names}") from None
    return detect(head)


def task_lines(
    fmt: Format,
    blocks: Iterable[bytes],
    limits: JsonlLimits,
    merge_path: Path,
) -> Iterator[bytes]:
    """The lines (JSON, without their newline) of the task data of a file in `fmt` (not
    JSONL, which is task data already).

    The whole file is read before the first record is yielded (its hosts are merged in the
    SQLite file `merge_path`, which the caller creates and removes), so a broken file is
    refused before anything is written.
    """
    head, blocks = peek(blocks)
    facts = ScanFacts()
    merge = HostMerge(merge_path)
    try:
        for record in reader_for(fmt, head)(blocks, limits, facts):
            merge.add(record)
        hosts = merge.hosts
        config: dict[str, Any] = {
            "type": "config",
            "source": fmt.source,
            "imported": {
                "format": fmt.value,
                "scanner": facts.scanner or fmt.value,
                "version": facts.version,
                "args": facts.args,
                "entries": facts.entries,
                "skipped": facts.skipped,
                "notes": facts.notes,
            },
        }
        if facts.started_at:
            config["started_at"] = facts.started_at
        yield encode(config)
        yield from merge.lines()
        summary: dict[str, Any] = {"type": "summary", "hosts": hosts}
        if facts.finished_at:
            summary["finished_at"] = facts.finished_at
        if facts.partial:
            summary["partial"] = True
        yield encode(summary)
    finally:
        merge.close()
