"""nmap XML (`-oX`, any nmap since 6) as host records.

Every `<host>` that is up becomes a record: its IPv4/IPv6 addresses, MAC and vendor, user
and PTR names, every port with its state and service (name, product, version, extrainfo,
tunnel, CPEs), the best OS match (`os`, `os_accuracy`, with its class's generation and
device type), uptime and distance, and the `ssl-cert`, `http-title` and
`http-server-header` script output (as `tls` and `http`). A file that ends before
`</nmaprun>` (an interrupted scan) gives the hosts it finished. masscan's `-oX` has the
same shape and is read here too (`MasscanXml`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from surveyor.core.jsonl_limits import JsonlLimits
from surveyor.formats import safe_xml
from surveyor.formats.records import (
    MAX_NAME,
    MAX_NAMES,
    MAX_TEXT,
    FormatError,
    ScanFacts,
    epoch_time,
    port_number,
    text,
)

SOURCE: Final = "import:nmap"
#: A host keeps at most this many ports; the rest are counted in `services_truncated`.
MAX_PORTS: Final = 4096
#: Script output kept per script (a certificate's PEM is about 2 KB).
MAX_SCRIPT_TEXT: Final = 16_384
SCRIPTS: Final = frozenset({"ssl-cert", "http-title", "http-server-header"})
#: nmap's names of distinguished name attributes, as RFC 4514 writes them.
DN_KEYS: Final = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "emailAddress": "emailAddress",
    "domainComponent": "DC",
}
_NO_TITLE: Final = "Site doesn't have a title"


def _accuracy(value: str | None) -> int:
    try:
        return max(0, min(100, int(value or "0")))
    except ValueError:
        return 0


def _whole(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number >= 0 else None


class NmapReader:
    """Turns nmap's elements into host records (see `safe_xml.parse`).

    Only element starts call Python, and only those named in `_starts` do any work: a
    host's record is complete when the next top-level element starts (or the file ends).
    Ends and text go to lists (C calls): the ends tell whether the last host was closed,
    the text is a `<cpe>`'s. Inside a kept script, ends are followed in Python, for its
    tables.
    """

    source = SOURCE
    what = "nmap XML"

    def __init__(self, facts: ScanFacts) -> None:
        self.facts = facts
        self.pending: list[dict[str, Any]] = []
        self.ends: list[str] = []
        self.texts: list[str] = []
        self.host: dict[str, Any] | None = None
        self.host_line = 0
        self.host_closed = False
        self.services: list[dict[str, Any]] = []
        self.truncated = 0
        self.port: dict[str, Any] | None = None
        #: The service whose <cpe> elements come next, and whether one is open.
        self.cpe_of: dict[str, Any] | None = None
        self.cpe_open = False
        self.matches: list[tuple[int, str, list[dict[str, str]]]] = []
        self.classes: list[dict[str, str]] = []
        self.match_classes: list[dict[str, str]] | None = None
        self.script: str | None = None
        self.script_output = ""
        self.script_items: list[tuple[tuple[str, ...], str]] = []
        self.keys: list[str] = []
        self.seen_root = False
        self.parser: Any = None
        self._starts: dict[str, Callable[[dict[str, str]], None]] = {
            "host": self._host,
            "address": self._address,
            "hostname": self._hostname,
            "status": self._status,
            "port": self._port,
            "state": self._state,
            "service": self._service,
            "cpe": self._cpe,
            "script": self._script,
            "table": self._table,
            "elem": self._elem,
            "os": self._os,
            "osmatch": self._osmatch,
            "osclass": self._osclass,
            "uptime": self._uptime,
            "distance": self._distance,
            "nmaprun": self._run,
            "finished": self._finished,
            **dict.fromkeys(_TOP_LEVEL, self._top_level),
        }

    def attach(self, parser: Any) -> None:
        self.parser = parser
        starts = self._starts.get
        take_cpe = self._take_cpe
        reader = self

        def start(name: str, attributes: dict[str, str]) -> None:
            handler = starts(name)
            if handler is not None:
                if reader.cpe_open:
                    take_cpe()
                handler(attributes)

        parser.StartElementHandler = start
        parser.EndElementHandler = self.ends.append
        parser.CharacterDataHandler = self.texts.append

    def after_block(self) -> None:
        if "host" in self.ends:
            self.host_closed = True
        self.ends.clear()
        if not self.cpe_open and self.script is None:
            self.texts.clear()
        elif sum(map(len, self.texts)) > MAX_SCRIPT_TEXT:
            kept = "".join(self.texts)[:MAX_SCRIPT_TEXT]
            self.texts[:] = [kept]

    def finish(self, *, complete: bool, line: int) -> None:
        if self.cpe_open:
            self._take_cpe()
        if not self.seen_root:
            raise FormatError(f"the file holds no <nmaprun> element; it is not {self.what}")
        closed = self.host_closed or "host" in self.ends
        if self.host is not None and not complete and not closed:
            raise FormatError(
                f"the file ends inside the <host> element of line {self.host_line}; "
                "it is cut short",
                line=line,
            )
        self._close_host()
        if not complete:
            self.facts.partial = True
            self.facts.notes.append("the file ends before </nmaprun>: the scan was interrupted")

    # Elements outside hosts.

    def _run(self, attributes: dict[str, str]) -> None:
        self.seen_root = True
        get = attributes.get
        facts = self.facts
        facts.scanner = text(get("scanner", "nmap"), 40)
        facts.version = text(get("version", ""), 40)
        facts.args = text(get("args", ""), MAX_TEXT)
        facts.saw_time(epoch_time(get("start", "")))

    def _finished(self, attributes: dict[str, str]) -> None:
        self._close_host()
        self.facts.saw_time(epoch_time(attributes.get("time", "")))

    def _top_level(self, _attributes: dict[str, str]) -> None:
        self._close_host()

    # A host and what it holds.

    def _host(self, attributes: dict[str, str]) -> None:
        self._close_host()
        self.ends.clear()
        self.host_closed = False
        self.host_line = self.parser.CurrentLineNumber
        self.services = []
        self.truncated = 0
        self.matches = []
        self.classes = []
        self.match_classes = None
        self.port = self.cpe_of = None
        self.host = {
            "type": "host",
            "source": self.source,
            "addresses": [],
            "hostnames": [],
            "services": self.services,
        }
        self.facts.saw_time(epoch_time(attributes.get("endtime") or ""))

    def _close_host(self) -> None:
        host = self.host
        if host is None:
            return
        self.host = None
        self.port = self.cpe_of = None
        self.facts.entries += 1
        if host.get("down") or not host["addresses"]:
            self.facts.skipped += 1
            return
        if self.truncated:
            host["services_truncated"] = self.truncated
        if self.matches or self.classes:
            _apply_os(host, self.matches, self.classes)
        self.pending.append(host)

    def _status(self, attributes: dict[str, str]) -> None:
        if self.host is not None and attributes.get("state", "up") != "up":
            self.host["down"] = True

    def _address(self, attributes: dict[str, str]) -> None:
        host = self.host
        if host is None:
            return
        value = attributes.get("addr", "").strip()[:100]
        if not value:
            return
        if attributes.get("addrtype") == "mac":
            host["mac"] = value
            vendor = attributes.get("vendor")
            if vendor:
                host["mac_vendor"] = vendor[:MAX_NAME]
        elif value not in host["addresses"] and len(host["addresses"]) < MAX_NAMES:
            host["addresses"].append(value)

    def _hostname(self, attributes: dict[str, str]) -> None:
        host = self.host
        if host is None:
            return
        name = attributes.get("name", "")[:MAX_NAME]
        names = host["hostnames"]
        if name and name not in names and len(names) < MAX_NAMES:
            names.append(name)

    def _port(self, attributes: dict[str, str]) -> None:
        self.port = self.cpe_of = None
        if self.host is None:
            return
        proto = attributes.get("protocol", "tcp")
        number = port_number(attributes.get("portid"))
        if number is None or proto not in ("tcp", "udp"):
            return  # sctp and IP protocol scans name no TCP or UDP service
        if len(self.services) >= MAX_PORTS:
            self.truncated += 1
            return
        self.port = {"port": number, "proto": proto, "state": "open"}
        self.services.append(self.port)

    def _state(self, attributes: dict[str, str]) -> None:
        if self.port is not None:
            self.port["state"] = attributes.get("state", "open")[:20] or "open"

    def _service(self, attributes: dict[str, str]) -> None:
        port = self.port
        if port is None:
            return
        get = attributes.get
        # Attribute values are text without NUL (XML cannot hold one): cut, not cleaned.
        name = get("name")
        if name:
            port["service"] = name[:40]
        for key in _SERVICE_FIELDS:
            value = get(key)
            if value:
                port[key] = value[:MAX_NAME]
        self.cpe_of = port

    def _cpe(self, _attributes: dict[str, str]) -> None:
        if self.cpe_of is not None:
            self.texts.clear()
            self.cpe_open = True

    def _take_cpe(self) -> None:
        self.cpe_open = False
        value = "".join(self.texts).strip()[:MAX_TEXT]
        self.texts.clear()
        if value and self.cpe_of is not None:
            cpes = self.cpe_of.setdefault("cpe", [])
            if value not in cpes and len(cpes) < MAX_NAMES:
                cpes.append(value)

    def _script(self, attributes: dict[str, str]) -> None:
        self.cpe_of = None
        if self.port is None or attributes.get("id") not in SCRIPTS:
            return
        self.script = attributes.get("id")
        self.script_output = attributes.get("output", "")[:MAX_SCRIPT_TEXT]
        self.script_items = []
        self.keys = []
        self.parser.EndElementHandler = self._script_end

    def _table(self, attributes: dict[str, str]) -> None:
        if self.script is not None:
            self.keys.append(attributes.get("key", ""))

    def _elem(self, attributes: dict[str, str]) -> None:
        if self.script is not None:
            self.keys.append(attributes.get("key", ""))
            self.texts.clear()

    def _script_end(self, name: str) -> None:
        if name == "elem":
            if len(self.script_items) < MAX_SCRIPT_ITEMS:
                value = "".join(self.texts)[:MAX_SCRIPT_TEXT]
                self.script_items.append((tuple(self.keys), value))
            self.texts.clear()
            if self.keys:
                self.keys.pop()
        elif name == "table":
            if self.keys:
                self.keys.pop()
        elif name == "script":
            if self.port is not None and self.script is not None:
                _apply_script(self.port, self.script, self.script_output, self.script_items)
            self.script = None
            self.script_items = []
            self.texts.clear()
            self.parser.EndElementHandler = self.ends.append

    def _os(self, _attributes: dict[str, str]) -> None:
        self.port = self.cpe_of = None

    def _osmatch(self, attributes: dict[str, str]) -> None:
        if self.host is None:
            return
        self.match_classes = []
        self.matches.append(
            (
                _accuracy(attributes.get("accuracy")),
                text(attributes.get("name", "")),
                self.match_classes,
            )
        )

    def _osclass(self, attributes: dict[str, str]) -> None:
        if self.host is None:
            return
        # nmap before 6 wrote <osclass> beside <osmatch>, before them, not inside one.
        target = self.match_classes if self.match_classes is not None else self.classes
        target.append(attributes)

    def _uptime(self, attributes: dict[str, str]) -> None:
        seconds = _whole(attributes.get("seconds"))
        if self.host is not None and seconds is not None:
            self.host["uptime_seconds"] = seconds

    def _distance(self, attributes: dict[str, str]) -> None:
        hops = _whole(attributes.get("value"))
        if self.host is not None and hops is not None:
            self.host["distance"] = hops


_SERVICE_FIELDS: Final = ("product", "version", "extrainfo", "tunnel")
#: Elements directly under <nmaprun> other than hosts: each closes the host before it.
_TOP_LEVEL: Final = frozenset(
    {
        "hosthint",
        "taskbegin",
        "taskprogress",
        "taskend",
        "scaninfo",
        "verbose",
        "debugging",
        "prescript",
        "postscript",
        "output",
        "runstats",
    }
)
#: A kept script keeps at most this many of its elements.
MAX_SCRIPT_ITEMS: Final = 1000


class MasscanReader(NmapReader):
    """masscan's `-oX`: nmap's shape, one `<host>` per port found, banners as services."""

    source = "import:masscan"
    what = "masscan XML"

    def _service(self, attributes: dict[str, str]) -> None:
        if self.port is not None:
            apply_masscan_banner(
                self.port, attributes.get("name", ""), attributes.get("banner", "")
            )

    def finish(self, *, complete: bool, line: int) -> None:
        # masscan writes its closing tags only when it ends cleanly; what it wrote stands.
        super().finish(complete=True, line=line)
        if not complete:
            self.facts.partial = True


#: masscan's names of services that differ from the ones scans give.
MASSCAN_NAMES: Final = {"pop": "pop3", "X509": "ssl"}
_MASSCAN_ESCAPE: Final = re.compile(r"\\x([0-9a-fA-F]{2})")


def apply_masscan_banner(port: dict[str, Any], name: str, banner: str) -> None:
    """What masscan's banner of a port (`--banners`) says, onto the service record.

    masscan writes the bytes of a banner that are not printable as `\\xNN` in its list and
    XML output (and as JSON escapes in `-oJ`); they are read back as characters.
    """
    name = MASSCAN_NAMES.get(name.strip(), name.strip()).lower()
    banner = _MASSCAN_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), banner[: MAX_TEXT * 4])
    if not name or not banner.strip():
        return
    if name == "title":
        port.setdefault("http", {})["title"] = text(banner, MAX_TEXT)
        port.setdefault("service", "http")
    elif name in ("http", "http.server"):
        port["service"] = "http"
        for line in banner.splitlines():
            if line.lower().startswith("server:"):
                port.setdefault("http", {})["server"] = text(line[7:])
    elif name == "ssl":
        port["tunnel"] = "ssl"
    else:
        port["service"] = text(name, 40)
        port["banner"] = text(banner, MAX_TEXT)


def _apply_os(
    record: dict[str, Any],
    matches: list[tuple[int, str, list[dict[str, str]]]],
    classes: list[dict[str, str]],
) -> None:
    best = max(matches, key=lambda match: match[0], default=None)
    if best is not None and best[2]:
        classes = best[2]
    if best is not None and best[1]:
        record["os"] = best[1]
        record["os_accuracy"] = best[0]
    top = max(classes, key=lambda c: _accuracy(c.get("accuracy")), default=None)
    if top is None:
        return
    if "os" not in record:
        name = " ".join(filter(None, (top.get("vendor"), top.get("osfamily"), top.get("osgen"))))
        if name:
            record["os"] = text(name)
            record["os_accuracy"] = _accuracy(top.get("accuracy"))
    if top.get("osgen"):
        record["os_version"] = text(top.get("osgen", ""))
    kind = (top.get("type") or "").strip().lower()
    if kind and kind != "general purpose":
        record["device_type"] = text(kind, 40)


def _apply_script(
    port: dict[str, Any], script: str, output: str, items: list[tuple[tuple[str, ...], str]]
) -> None:
    if script == "http-title":
        title = next((value for keys, value in items if keys == ("title",)), None)
        if title is None and output and not output.startswith(_NO_TITLE):
            title = output
        if title:
            port.setdefault("http", {})["title"] = text(title, MAX_TEXT)
    elif script == "http-server-header":
        server = next((value for _keys, value in items if value.strip()), None) or output
        if server.strip():
            port.setdefault("http", {})["server"] = text(server.strip().splitlines()[0])
    elif script == "ssl-cert":
        tls = _certificate(items) if items else _certificate_from_output(output)
        if tls:
            port["tls"] = tls


def _dn(items: list[tuple[tuple[str, ...], str]], table: str) -> str:
    parts = [
        f"{DN_KEYS.get(keys[1], keys[1])}={value.strip()}"
        for keys, value in items
        if len(keys) == 2 and keys[0] == table and value.strip()
    ]
    # nmap lists a name most specific first (commonName, ..., countryName), as RFC 4514 does.
    return ",".join(parts)[:MAX_TEXT]


def _timestamp(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if len(value) == 19 and value[10] == "T":
        return value + "Z"
    return value[:40]


def _sans(value: str) -> list[str]:
    names = []
    for part in value.split(","):
        kind, _, name = part.strip().partition(":")
        if kind in ("DNS", "IP Address", "email", "URI") and name.strip():
            names.append(text(name))
    return names[:MAX_NAMES]


def _pem_sha256(pem: str) -> str:
    body = "".join(
        line.strip() for line in pem.splitlines() if line.strip() and not line.startswith("-----")
    )
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return hashlib.sha256(der).hexdigest() if der else ""


def _certificate(items: list[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    found: dict[str, str] = {}
    sans: list[str] = []
    extension = ""
    for keys, value in items:
        if keys and keys[0] == "extensions":
            if keys[-1] == "name":
                extension = value.strip()
            elif keys[-1] == "value" and extension == "X509v3 Subject Alternative Name":
                sans = _sans(value)
        elif len(keys) == 1 or keys[0] == "validity":
            found[keys[-1]] = value
    tls: dict[str, Any] = {
        "subject": _dn(items, "subject"),
        "issuer": _dn(items, "issuer"),
        "sans": sans,
        "not_before": _timestamp(found.get("notBefore", "")),
        "not_after": _timestamp(found.get("notAfter", "")),
    }
    digest = _pem_sha256(found.get("pem", ""))
    if digest:
        tls["sha256"] = digest
    return {key: value for key, value in tls.items() if value}


def _certificate_from_output(output: str) -> dict[str, Any]:
    """nmap before structured script output (6.2x) gave only text: `Subject: commonName=x/
    organizationName=y`, `Issuer: ...`, `Not valid before: ...`."""
    tls: dict[str, Any] = {}
    for line in output.splitlines():
        label, _, value = line.partition(":")
        label, value = label.strip(), value.strip()
        if label in ("Subject", "Issuer"):
            parts = [p.partition("=") for p in value.split("/") if "=" in p]
            dn = ",".join(f"{DN_KEYS.get(k, k)}={v}" for k, _, v in parts)
            tls["subject" if label == "Subject" else "issuer"] = dn[:MAX_TEXT]
        elif label == "Subject Alternative Name":
            tls["sans"] = _sans(value)
        elif label == "Not valid before":
            tls["not_before"] = _timestamp(value)
        elif label == "Not valid after":
            tls["not_after"] = _timestamp(value)
    return {key: value for key, value in tls.items() if value}


def read_nmap(blocks: Iterable[bytes], limits: JsonlLimits, facts: ScanFacts) -> Iterator[Any]:
    """The host records of an nmap XML file (see the module docstring)."""
    return safe_xml.parse(blocks, NmapReader(facts), limits)


def read_masscan_xml(
    blocks: Iterable[bytes], limits: JsonlLimits, facts: ScanFacts
) -> Iterator[Any]:
    """The host records of a masscan `-oX` file, one per port found (merged later)."""
    facts.scanner = "masscan"
    return safe_xml.parse(blocks, MasscanReader(facts), limits)
