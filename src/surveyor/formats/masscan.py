"""masscan output (`-oJ`, `-oL`; `-oX` is read by `nmap_xml`) as host records.

masscan writes one entry per port it found (and one per banner with `--banners`), in the
order answers came: the records of one address are merged later (`merge.HostMerge`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

from surveyor.core.jsonl_limits import JsonlLimits, parse_line, split_lines
from surveyor.formats.nmap_xml import apply_masscan_banner
from surveyor.formats.records import FormatError, ScanFacts, epoch_time, port_number, text

SOURCE: Final = "import:masscan"
_PROTOS: Final = frozenset({"tcp", "udp"})
#: Lines of a JSON file that hold no entry: the array's brackets, separators, and the
#: `{finished: 1}` that masscan 1.0 ends its (not quite JSON) files with.
_FRAMING: Final = frozenset({b"", b"[", b"]", b",", b"{finished: 1}", b"{finished:1}"})


def _record(address: str, port: int, proto: str, state: str) -> dict[str, Any]:
    return {
        "type": "host",
        "source": SOURCE,
        "addresses": [address],
        "services": [{"port": port, "proto": proto, "state": state}],
    }


def read_list(blocks: Iterable[bytes], limits: JsonlLimits, facts: ScanFacts) -> Iterator[Any]:
    """`-oL`: `open tcp 80 127.0.0.1 1609459200` lines, `banner tcp 80 127.0.0.1 <time>
    <service> <text>` lines with `--banners`, and `#` comments."""
    facts.scanner = "masscan"
    for number, raw in split_lines(blocks, limits):
        line = raw.decode("utf-8", "replace").strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 6)
        if len(fields) < 5:
            raise FormatError(
                "a masscan list line has 'state proto port address time', this has "
                f"{len(fields)} fields",
                line=number,
            )
        state, proto, port_text, address, moment = fields[:5]
        port = port_number(port_text)
        if proto not in _PROTOS or port is None:
            if proto in ("sctp", "icmp") or (port_text == "0" and proto != "tcp"):
                continue  # masscan's ICMP echo and SCTP answers name no TCP or UDP service
            raise FormatError(f"{proto!r} {port_text!r} is not a TCP or UDP port", line=number)
        facts.entries += 1
        facts.saw_time(epoch_time(moment))
        if state == "banner":
            record = _record(address, port, proto, "open")
            if len(fields) >= 6:
                banner = fields[6] if len(fields) == 7 else ""
                apply_masscan_banner(record["services"][0], fields[5], banner)
            yield record
        else:
            yield _record(address, port, proto, text(state, 20))


def read_json(blocks: Iterable[bytes], limits: JsonlLimits, facts: ScanFacts) -> Iterator[Any]:
    """`-oJ` (a JSON array, one entry a line) and `-oD` (one JSON entry a line)."""
    facts.scanner = "masscan"
    for number, raw in split_lines(blocks, limits):
        line = raw.strip().strip(b",").strip()
        if line in _FRAMING:
            continue
        try:
            entry = parse_line(line, number, limits)
        except (ValueError, RecursionError) as exc:
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise FormatError(f"not valid JSON: {problem}", line=number) from None
        yield from _json_entry(entry, number, facts)


def _json_entry(entry: object, number: int, facts: ScanFacts) -> Iterator[dict[str, Any]]:
    if not isinstance(entry, dict):
        raise FormatError("a masscan entry must be a JSON object", line=number)
    address = entry.get("ip")
    ports = entry.get("ports")
    if not isinstance(address, str) or not address.strip():
        raise FormatError("the entry has no 'ip'", line=number)
    if not isinstance(ports, list):
        raise FormatError("the entry has no 'ports' list", line=number)
    facts.entries += 1
    facts.saw_time(epoch_time(entry.get("timestamp", "")))
    for item in ports:
        if not isinstance(item, dict):
            raise FormatError("an entry of 'ports' must be an object", line=number)
        proto = str(item.get("proto", "tcp"))
        port = port_number(item.get("port"))
        if proto not in _PROTOS or port is None:
            if proto in ("sctp", "icmp"):
                continue
            raise FormatError(
                f"{proto!r} {item.get('port')!r} is not a TCP or UDP port", line=number
            )
        record = _record(address.strip(), port, proto, text(item.get("status") or "open", 20))
        service = item.get("service")
        if isinstance(service, dict):
            apply_masscan_banner(
                record["services"][0], str(service.get("name", "")), str(service.get("banner", ""))
            )
        yield record
