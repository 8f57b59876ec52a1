"""Host records of one address merged into one, in the order each address first came.

nmap writes a host twice when it was scanned twice (a target listed twice, `--resume`,
files joined), and masscan writes one entry per port found. The records wait in a
temporary SQLite file (which the caller creates and removes), in batches, so memory does
not grow with the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

_BATCH: Final = 5000
_LOOKUP: Final = 500
#: Fields that hold lists merged as sets, in order of first appearance.
_LISTS: Final = ("addresses", "hostnames", "tags")
#: Records wait as the JSON text they are written as: most are never merged, and are then
#: encoded once.
_encode: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode(record: dict[str, Any]) -> bytes:
    """A record as a line of task data (without its newline)."""
    return _encode(record).encode("utf-8", "surrogatepass")


def _unpack(packed: bytes) -> dict[str, Any]:
    return json.loads(packed)  # type: ignore[no-any-return]


def key_of(record: dict[str, Any]) -> str:
    """What identifies a record's host here: its first address, else its first name."""
    addresses = record.get("addresses") or ()
    if addresses:
        return str(addresses[0])
    names = record.get("hostnames") or ()
    return "name:" + str(names[0]) if names else ""


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    merged = list(first)
    merged.extend(value for value in second if value not in first)
    return merged


def merge_records(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """Two records of one host as one: lists joined, services by protocol and port (the newer
    entry's fields over the older's), the OS guess with the higher accuracy, and otherwise
    the newer value where it has one."""
    merged = {**older, **{k: v for k, v in newer.items() if v not in (None, "", [], {})}}
    for name in _LISTS:
        if name in older or name in newer:
            merged[name] = _union(older.get(name) or [], newer.get(name) or [])
    services = {(s["proto"], s["port"]): s for s in older.get("services") or ()}
    for service in newer.get("services") or ():
        key = (service["proto"], service["port"])
        known = services.get(key)
        if known is None:
            services[key] = service
            continue
        joined = {**known, **service}
        for nested in ("http", "tls"):
            if nested in known and nested in service:
                joined[nested] = {**known[nested], **service[nested]}
        if "cpe" in known and "cpe" in service:
            joined["cpe"] = _union(known["cpe"], service["cpe"])
        if service.get("state") != "open" and known.get("state") == "open":
            # A port seen open once stays open: masscan's banner entries carry no state.
            joined["state"] = "open"
        services[key] = joined
    merged["services"] = [services[key] for key in sorted(services)]
    if (older.get("os_accuracy") or 0) > (newer.get("os_accuracy") or 0) and older.get("os"):
        for name in ("os", "os_accuracy", "os_version", "device_type"):
            if name in older:
                merged[name] = older[name]
    if "attributes" in older and "attributes" in newer:
        merged["attributes"] = {**older["attributes"], **newer["attributes"]}
    if "services_truncated" in older or "services_truncated" in newer:
        merged["services_truncated"] = max(
            older.get("services_truncated", 0), newer.get("services_truncated", 0)
        )
    return merged


class HostMerge:
    """Collects records (`add`), then gives them merged by host (`records`)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-8192"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE hosts (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
            "record BLOB NOT NULL)"
        )
        # Encoded: bytes are not tracked by the garbage collector, whose passes over
        # thousands of waiting dictionaries would cost more than the encoding.
        self._batch: dict[str, bytes] = {}
        self._next = 0
        self.entries = 0

    def add(self, record: dict[str, Any]) -> None:
        key = key_of(record)
        self.entries += 1
        known = self._batch.get(key)
        if known is not None:
            record = merge_records(_unpack(known), record)
        self._batch[key] = encode(record)
        if len(self._batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        batch, self._batch = self._batch, {}
        if not batch:
            return
        keys = list(batch)
        stored: dict[str, tuple[int, dict[str, Any]]] = {}
        for start in range(0, len(keys), _LOOKUP):
            part = keys[start : start + _LOOKUP]
            marks = ",".join("?" * len(part))
            for seq, key, packed in self._db.execute(
                f"SELECT seq, key, record FROM hosts WHERE key IN ({marks})",
                part,
            ):
                stored[key] = (seq, _unpack(packed))
        rows = []
        for key, packed in batch.items():
            if key in stored:
                seq, older = stored[key]
                merged = merge_records(older, _unpack(packed))
                rows.append((seq, key, encode(merged)))
            else:
                rows.append((self._next, key, packed))
                self._next += 1
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO hosts VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")

    def lines(self) -> Iterator[bytes]:
        """Every host's merged record as a line of task data (without its newline), in the
        order the hosts first came."""
        self._flush()
        for (packed,) in self._db.execute("SELECT record FROM hosts ORDER BY seq"):
            yield packed

    @property
    def hosts(self) -> int:
        self._flush()
        return int(self._db.execute("SELECT count(*) FROM hosts").fetchone()[0])

    def close(self) -> None:
        self._db.close()
