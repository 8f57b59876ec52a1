"""TCP port lists of a scan (SPEC §7 `tcp_ports`): presets, lists and inclusive ranges.

A port list parses to a sorted tuple of unique ports; `format_ports` writes it back in the
canonical compact form (`22,80,443,8000-8100`) that task data and the API show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from surveyor.core.targets import Entry, quote_token, split_entries

MIN_PORT: Final = 1
MAX_PORT: Final = 65535

#: Our own selection of TCP ports commonly open on the networks users map, by what answers there.
_COMMON_TCP_PORTS: Final[Mapping[str, tuple[int, ...]]] = {
    "legacy small services on appliances and old Unix hosts": (7, 9, 13, 37, 79, 113, 119),
    "remote shells and desktops": (22, 23, 512, 513, 514, 2222, 3389, 5800, 5900, 5901),
    "remote management": (5985, 5986, 8291),
    "file sharing and Windows RPC": (21, 111, 135, 139, 445, 548, 873, 990, 2049, 49152, 49153),
    "mail": (25, 110, 143, 465, 587, 993, 995),
    "name, directory and authentication services": (53, 88, 389, 464, 636, 3268, 3269),
    "web and application servers": (80, 81, 443, 3000, 4443, 5000, 7001, 8000, 8008, 8009),
    "alternative web ports and admin consoles": (8080, 8081, 8088, 8443, 8888, 9000, 9443, 10000),
    "proxies": (1080, 3128),
    "databases and caches": (1433, 1521, 3306, 5432, 5984, 6379, 9042, 9200, 11211, 27017),
    "message brokers": (1883, 5672, 8883, 9092),
    "printers and media": (515, 554, 631, 9100),
    "voice, VPN and routing": (179, 1194, 1720, 1723, 5060, 5061),
    "containers and orchestration": (2375, 2376, 2379, 6443, 8500, 10250),
    "monitoring": (5666, 9090, 10050),
    "industrial control": (102, 502),
}

#: 100 commonly open TCP ports, sorted.
TOP100: Final[tuple[int, ...]] = tuple(
    sorted({port for group in _COMMON_TCP_PORTS.values() for port in group})
)

#: Preset names a `tcp_ports` value may use, alone or mixed with ports and ranges.
PRESETS: Final[Mapping[str, tuple[int, ...]]] = {
    # the default is the top 100: it finds most services in seconds per host
    "default": TOP100,
    "top100": TOP100,
    "all": tuple(range(MIN_PORT, MAX_PORT + 1)),
}


class PortError(ValueError):
    """A `tcp_ports` value that cannot be scanned; names the offending token."""

    def __init__(self, message: str, *, token: str | None = None, index: int | None = None) -> None:
        self.field = "tcp_ports"
        self.message = message
        self.token = token
        self.index = index
        super().__init__(message)


def parse_ports(value: object) -> tuple[int, ...]:
    """Parse `"22,80,443,8000-8100"`, a preset name, a port, or a list of ports and tokens."""
    entries: list[Entry]
    if isinstance(value, bool):
        raise PortError(_type_message(value))
    if isinstance(value, int):
        entries = [Entry(text=str(value), index=0, offset=0)]
    elif isinstance(value, str):
        entries = split_entries(value)
    elif isinstance(value, list | tuple):
        entries = _list_entries(value)
    else:
        raise PortError(_type_message(value))
    if not entries:
        raise PortError("no ports given")
    ports: set[int] = set()
    for entry in entries:
        ports.update(_parse_token(entry))
    return tuple(sorted(ports))


def ports_count(value: object) -> int:
    """How many distinct ports a `tcp_ports` value names."""
    return len(parse_ports(value))


def format_ports(ports: Iterable[int]) -> str:
    """The canonical compact form: sorted, unique, runs of three or more as ranges."""
    parts: list[str] = []
    run: list[int] = []
    for port in sorted(set(ports)):
        if run and port != run[-1] + 1:
            parts.extend(_format_run(run))
            run = []
        run.append(port)
    if run:
        parts.extend(_format_run(run))
    return ",".join(parts)


def _format_run(run: list[int]) -> list[str]:
    if len(run) >= 3:
        return [f"{run[0]}-{run[-1]}"]
    return [str(port) for port in run]


def _type_message(value: object) -> str:
    return f"'tcp_ports' must be a string, a port or a list of ports, got {type(value).__name__}"


def _list_entries(items: Iterable[object]) -> list[Entry]:
    entries: list[Entry] = []
    for index, item in enumerate(items):
        if isinstance(item, int) and not isinstance(item, bool):
            entries.append(Entry(text=str(item), index=index, offset=0))
        elif isinstance(item, str):
            parts = split_entries(item)
            if len(parts) > 1:
                raise PortError(
                    f"{quote_token(item.strip())} holds several entries; give one per list item",
                    token=item.strip(),
                    index=index,
                )
            entries.extend(Entry(part.text, index, 0) for part in parts)
        else:
            raise PortError(
                f"entry {index + 1} of 'tcp_ports' must be a port or a string, "
                f"got {type(item).__name__}",
                index=index,
            )
    return entries


_NUMBER: Final = re.compile(r"[0-9]+")


def _parse_token(entry: Entry) -> Iterable[int]:
    token = entry.text
    text = re.sub(r"\s*-\s*", "-", token)
    preset = PRESETS.get(text.lower())
    if preset is not None:
        return preset
    low, dash, high = text.partition("-")
    if not _NUMBER.fullmatch(low) or (dash and not _NUMBER.fullmatch(high)):
        names = ", ".join(PRESETS)
        raise PortError(
            f"{quote_token(token)} is not a port, range or preset (presets: {names})",
            token=token,
            index=entry.index,
        )
    first = _port_number(low, entry)
    last = _port_number(high, entry) if dash else first
    if last < first:
        raise PortError(f"{quote_token(token)} is a reversed range", token=token, index=entry.index)
    return range(first, last + 1)


def _port_number(digits: str, entry: Entry) -> int:
    # the length check keeps absurdly long digit strings away from int()
    number = int(digits) if len(digits) <= 5 else MAX_PORT + 1
    if not MIN_PORT <= number <= MAX_PORT:
        raise PortError(
            f"{quote_token(entry.text)} is out of range {MIN_PORT}-{MAX_PORT}",
            token=entry.text,
            index=entry.index,
        )
    return number
