"""CSV with a header row (docs/imports.md) as host records.

Columns are recognised by name, case and spacing aside, under the names common tools
export (`ip`, `ip_address`, `dns_name`, `mac_address`, `operating_system`, ...); columns
no name matches are kept as the host's `attributes`. The delimiter is the one the header
row uses most of comma, semicolon and tab.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

from surveyor.core.fingerprint import (
    FingerprintError,
    normalize_address,
    normalize_hostname,
    normalize_mac,
)
from surveyor.core.jsonl_limits import JsonlLimits, split_lines
from surveyor.formats.records import (
    MAX_ATTRIBUTES,
    MAX_NAMES,
    MAX_TEXT,
    FormatError,
    ScanFacts,
    text,
)

SOURCE: Final = "import:csv"

#: Each column Surveyor reads, and the header names that mean it.
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "address": (
        "address",
        "addresses",
        "ip",
        "ips",
        "ip_address",
        "ip_addresses",
        "ipaddress",
        "ipv4",
        "ipv4_address",
        "ipv6",
        "ipv6_address",
        "host",
        "host_ip",
        "addr",
    ),
    "hostname": (
        "hostname",
        "hostnames",
        "host_name",
        "name",
        "dns_name",
        "dns",
        "fqdn",
        "dnsname",
        "computer_name",
        "netbios_name",
        "device_name",
    ),
    "mac": ("mac", "mac_address", "macaddress", "hardware_address", "physical_address"),
    "mac_vendor": ("mac_vendor", "vendor", "manufacturer"),
    "os": ("os", "operating_system", "os_name", "platform"),
    "os_version": ("os_version",),
    "device_type": ("device_type", "device", "asset_type"),
    "tcp_ports": ("tcp_ports", "tcp", "open_tcp_ports", "ports", "open_ports", "port"),
    "udp_ports": ("udp_ports", "udp", "open_udp_ports"),
    "tags": ("tags", "tag", "labels", "groups"),
    "description": ("description", "comment", "comments", "notes", "note"),
}
ALIASES: Final = {alias: column for column, names in COLUMNS.items() for alias in names}
#: The largest port range one cell may name (`8000-8100`).
MAX_RANGE: Final = 1024
_PORT: Final = re.compile(
    r"^(\d{1,5})(?:\s*-\s*(\d{1,5}))?(?:\s*/\s*(tcp|udp))?(?:\s*\(.*\))?$", re.I
)
_LOOKS_LIKE_ADDRESS: Final = re.compile(r"[\d.]+|[\da-fA-F:.%]*:[\da-fA-F:.%]*")
_SPLIT: Final = re.compile(r"[,;|\s]+")
_PORT_SPLIT: Final = re.compile(r"[,;|]+|\s+(?=\d)")


def header_key(name: str) -> str:
    """A header cell as it is matched: lower case, words joined by `_`."""
    return re.sub(r"[\s\-.]+", "_", name.strip().strip("\ufeff").lower()).strip("_")


def _text_lines(blocks: Iterable[bytes], limits: JsonlLimits) -> Iterator[tuple[int, str]]:
    # Spreadsheets save in UTF-8 (with or without a BOM) or in a legacy code page: bytes
    # that are not UTF-8 become U+FFFD rather than refusing the file.
    for number, line in split_lines(blocks, limits):
        decoded = line.decode("utf-8", "replace")
        if number == 1:
            decoded = decoded.lstrip("\ufeff")
        yield number, decoded.rstrip("\r")


def _delimiter(header: str) -> str:
    return max((",", ";", "\t"), key=header.count)


def _ports(cell: str, proto: str, line: int, column: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for token in _PORT_SPLIT.split(cell.strip()):
        token = token.strip()
        if not token:
            continue
        match = _PORT.match(token)
        if match is None:
            raise FormatError(f"{column}: {token!r} is not a port", line=line)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        named = (match.group(3) or proto).lower()
        if not 1 <= first <= last <= 65535:
            raise FormatError(f"{column}: {token!r} is not a port from 1 to 65535", line=line)
        if last - first >= MAX_RANGE:
            raise FormatError(f"{column}: {token!r} names more than {MAX_RANGE} ports", line=line)
        found.extend((named, port) for port in range(first, last + 1))
    return found


def _names(cell: str) -> list[str]:
    return [part for part in _SPLIT.split(cell.strip()) if part]


class _Columns:
    def __init__(self, header: list[str]) -> None:
        self.known: dict[str, list[int]] = {}
        self.extra: list[tuple[int, str]] = []
        for index, name in enumerate(header):
            key = header_key(name)
            column = ALIASES.get(key)
            if column is not None:
                self.known.setdefault(column, []).append(index)
            elif key:
                self.extra.append((index, text(name, 100)))
        if "address" not in self.known and "hostname" not in self.known:
            raise FormatError(
                "the header row names no address or hostname column (expected one of "
                "address, ip, ip_address, hostname, dns_name, ...; see docs/imports.md)",
                line=1,
            )

    def cells(self, row: list[str], column: str) -> list[str]:
        return [
            row[i].strip() for i in self.known.get(column, ()) if i < len(row) and row[i].strip()
        ]


def _host(columns: _Columns, row: list[str], line: int) -> dict[str, Any] | None:
    if not any(cell.strip() for cell in row):
        return None
    addresses: list[str] = []
    hostnames: list[str] = []
    for cell in columns.cells(row, "address"):
        for value in _names(cell):
            try:
                address = normalize_address(value)
            except FingerprintError:
                if _LOOKS_LIKE_ADDRESS.fullmatch(value):
                    raise FormatError(
                        f"address: {value[:80]!r} is not an IP address", line=line
                    ) from None
                # A `host` column holds names as often as addresses.
                _add_name(hostnames, value, line, "address")
                continue
            if address not in addresses and len(addresses) < MAX_NAMES:
                addresses.append(address)
    for cell in columns.cells(row, "hostname"):
        for value in _names(cell):
            _add_name(hostnames, value, line, "hostname")
    if not addresses and not hostnames:
        raise FormatError("the row has no address and no hostname", line=line)
    record: dict[str, Any] = {
        "type": "host",
        "source": SOURCE,
        "addresses": addresses,
        "hostnames": hostnames,
    }
    macs = columns.cells(row, "mac")
    if macs:
        try:
            record["mac"] = normalize_mac(macs[0])
        except FingerprintError as exc:
            raise FormatError(f"mac: {exc}", line=line) from None
    for column in ("os", "os_version", "device_type", "mac_vendor"):
        values = columns.cells(row, column)
        if values:
            record[column] = text(values[0])
    descriptions = columns.cells(row, "description")
    if descriptions:
        record["description"] = text(" ".join(descriptions), MAX_TEXT)
    tags: list[str] = []
    for cell in columns.cells(row, "tags"):
        for tag in re.split(r"[,;|]+", cell):
            tag = text(tag, 100)
            if tag and tag not in tags and len(tags) < MAX_NAMES:
                tags.append(tag)
    if tags:
        record["tags"] = tags
    services: dict[tuple[str, int], dict[str, Any]] = {}
    for column, proto in (("tcp_ports", "tcp"), ("udp_ports", "udp")):
        for cell in columns.cells(row, column):
            for named, port in _ports(cell, proto, line, column):
                services[(named, port)] = {"port": port, "proto": named, "state": "open"}
    record["services"] = [services[key] for key in sorted(services)]
    attributes = {
        name: text(row[index], 200)
        for index, name in columns.extra[:MAX_ATTRIBUTES]
        if index < len(row) and row[index].strip()
    }
    if attributes:
        record["attributes"] = attributes
    return record


def _add_name(hostnames: list[str], value: str, line: int, column: str) -> None:
    try:
        name = normalize_hostname(value)
    except FingerprintError:
        raise FormatError(
            f"{column}: {value[:80]!r} is neither an address nor a host name", line=line
        ) from None
    if name not in hostnames and len(hostnames) < MAX_NAMES:
        hostnames.append(name)


def read_csv(blocks: Iterable[bytes], limits: JsonlLimits, facts: ScanFacts) -> Iterator[Any]:
    """The host records of a CSV file, one a row."""
    facts.scanner = "csv"
    lines = _text_lines(blocks, limits)
    first = next(lines, None)
    if first is None:
        raise FormatError("the file is empty")
    delimiter = _delimiter(first[1])
    numbers: list[int] = []

    def physical() -> Iterator[str]:
        yield first[1] + "\n"
        for number, line in lines:
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(physical(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        columns = _Columns(header)
        for row in reader:
            line = numbers[0] if numbers else 1
            record = _host(columns, row, line)
            numbers.clear()
            if record is not None:
                facts.entries += 1
                yield record
    except csv.Error as exc:
        raise FormatError(f"the CSV is broken: {exc}", line=numbers[0] if numbers else 1) from None
