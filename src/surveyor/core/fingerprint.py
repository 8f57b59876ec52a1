"""Which asset a host answer is: the documented fingerprint (docs/inventory.md).

Pure rules, no I/O. A host answer from task data becomes an `Observation`; the inventory's
assets of the same site that share its MAC, an address or a name are `KnownAsset`s; `match`
picks the one the answer belongs to, or none (a new asset). In order:

1. **MAC.** An asset with the same MAC is the one, whatever its addresses: a host that
   changed IP but kept its MAC stays one asset. Two different known MACs are never one asset,
   even at the same address (the address was handed to another device).
2. **Evidence.** Otherwise each candidate scores: a shared address +2, a shared name +2, a
   shared TLS certificate +2, similar services (half or more of the ports in common) +1, and
   -2 when both have names and none is shared. Names derived from the address
   (`host-127-0-0-5.example`) are no evidence: they follow the address, not the host. A
   candidate needs 2 points and a shared address, name or certificate.
3. **Ties** go to the candidate seen last, then to the oldest asset (lowest id).

An asset already claimed by another answer of the same task is not a candidate.

The module also says which answers are bogus (`ignore_reason`) and normalizes the values
everything else compares: addresses, MACs, names, services.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, ip_address
from typing import Final, NamedTuple

SCORE_SHARED_ADDRESS: Final = 2
SCORE_SHARED_NAME: Final = 2
SCORE_SHARED_CERTIFICATE: Final = 2
SCORE_SIMILAR_SERVICES: Final = 1
SCORE_DISJOINT_NAMES: Final = -2
MATCH_THRESHOLD: Final = 2
SIMILAR_SERVICES_RATIO: Final = 0.5

#: An answer open on at least this share of at least `EVERY_PORT_MIN_PROBED` probed ports is a
#: device answering on every port (a SYN proxy or a tarpit), not a host.
EVERY_PORT_SHARE: Final = 0.9
EVERY_PORT_MIN_PROBED: Final = 64
#: A MAC in more host records than this in one task is not one host's identity.
SHARED_MAC_RECORDS: Final = 16

#: Names that many hosts answer to; they identify nothing.
GENERIC_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

_MAC_HEX = re.compile(r"[0-9a-f]{12}")
_MAC_SEPARATORS = re.compile(r"[:\-.]")
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*")


class FingerprintError(ValueError):
    """A value that cannot be an address, a MAC or a name."""


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: An IPv4 address already in canonical spelling: the common case, checked without parsing.
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def normalize_address(text: str) -> str:
    """The canonical spelling of an IPv4 or IPv6 address (`fe80::1`, `127.0.0.5`)."""
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    try:
        return str(ip_address(text.strip()))
    except ValueError:
        raise FingerprintError(f"{text!r} is not an IP address") from None


def address_key(address: str) -> str:
    """A text key that sorts like the address: IPv4 before IPv6, each in numeric order."""
    if _CANONICAL_IPV4.fullmatch(address):
        a, b, c, d = address.split(".")
        return f"4{(int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d):08x}"
    parsed = ip_address(address)
    if isinstance(parsed, IPv4Address):
        return f"4{int(parsed):08x}"
    return f"6{int(parsed):032x}"


def address_key_bounds(version: int, first: int, last: int) -> tuple[str, str]:
    """The `address_key` range of the addresses `first..last` of one family."""
    if version == 4:
        return f"4{first:08x}", f"4{last:08x}"
    return f"6{first:032x}", f"6{last:032x}"


def sort_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Unique addresses in `address_key` order."""
    return tuple(sorted(set(addresses), key=address_key))


def normalize_mac(text: str) -> str:
    """`00:1a:2b:3c:4d:5e` from any common spelling (dashes, dots, upper case)."""
    digits = _MAC_SEPARATORS.sub("", text.strip().lower())
    if not _MAC_HEX.fullmatch(digits):
        raise FingerprintError(f"{text!r} is not a MAC address")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_hostname(text: str) -> str:
    """A lower-case name without the trailing dot."""
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253 or not _NAME.fullmatch(name):
        raise FingerprintError(f"{text!r} is not a host name")
    return name


def is_derived_from_address(name: str, addresses: Iterable[str]) -> bool:
    """Whether a name spells one of the addresses (`127-0-0-5.dhcp.example`, `5.0.0.127.in-...`)."""
    digits = re.split(r"[^0-9]+", name)
    joined = "." + ".".join(part for part in digits if part) + "."
    for address in addresses:
        parsed = ip_address(address)
        if not isinstance(parsed, IPv4Address):
            continue
        octets = address.split(".")
        if f".{'.'.join(octets)}." in joined or f".{'.'.join(reversed(octets))}." in joined:
            return True
    return False


class Service(NamedTuple):
    """One open port of a host, with what the probes learned about it.

    A named tuple: immutable, and cheap to make by the hundred thousand.
    """

    port: int
    proto: str = "tcp"
    state: str = "open"
    name: str = ""
    banner: str = ""
    product: str = ""
    http_status: int | None = None
    http_server: str = ""
    http_title: str = ""
    tls_subject: str = ""
    tls_issuer: str = ""
    tls_sans: tuple[str, ...] = ()
    tls_not_before: str = ""
    tls_not_after: str = ""
    tls_sha256: str = ""
    #: What nmap's version detection adds: the version, extra information, the tunnel it
    #: runs in (`ssl`) and its CPE names.
    version: str = ""
    extrainfo: str = ""
    tunnel: str = ""
    cpe: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.proto, self.port)


#: The fields of a service that describe it (everything but its key).
SERVICE_DETAILS: Final = (
    "state",
    "name",
    "banner",
    "product",
    "http_status",
    "http_server",
    "http_title",
    "tls_subject",
    "tls_issuer",
    "tls_sans",
    "tls_not_before",
    "tls_not_after",
    "tls_sha256",
    "version",
    "extrainfo",
    "tunnel",
    "cpe",
)


@dataclass(frozen=True, slots=True)
class HostDetails:
    """What some sources tell of a host besides its identity and services (SPEC §7's
    optional host fields): compared and merged like the operating system. A record without
    any of them has none (`Observation.details` is None), so scans carry nothing extra."""

    #: The maker of its network interface, by its MAC (nmap's `vendor`).
    mac_vendor: str = ""
    #: How sure the OS guess is (0-100), and the version of the system, when a source says.
    os_accuracy: int | None = None
    os_version: str = ""
    #: `server`, `router`, `switch`, `printer`, `workstation`, ...
    device_type: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    #: Short name -> short text (a directory's `ou`, unknown CSV columns), sorted by name.
    attributes: tuple[tuple[str, str], ...] = ()
    #: The device whose ARP table told of it (its name or address).
    seen_by: str = ""


#: No details: what an asset has until a source tells some.
NO_DETAILS: Final = HostDetails()


class _Matched:
    """What matching reads of a host, seen (`Observation`) or known (`KnownAsset`): the
    names that identify it, its certificates and its open ports."""

    __slots__ = ()
    addresses: tuple[str, ...]
    hostnames: tuple[str, ...]
    services: tuple[Service, ...]

    @property
    def identity_names(self) -> frozenset[str]:
        return identity_names(self.hostnames, self.addresses)

    @property
    def certificates(self) -> frozenset[str]:
        return frozenset(s.tls_sha256 for s in self.services if s.tls_sha256)

    @property
    def port_keys(self) -> frozenset[tuple[str, int]]:
        return frozenset(s.key for s in self.services)


@dataclass(frozen=True, slots=True)
class Observation(_Matched):
    """One host as a task saw it: normalized, sorted, comparable."""

    addresses: tuple[str, ...]
    mac: str | None = None
    hostnames: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    os: str = ""
    #: The line of the task data it came from (the first, when several records were merged).
    line: int = 0
    #: Open ports the record left out of `services` (a scanner lists a bounded number).
    services_truncated: int = 0
    #: What saw it (`scan`, `ldap`, `import:nmap`, ...); empty: the task's kind says.
    source: str = ""
    #: The optional descriptive fields, None when the record has none.
    details: HostDetails | None = None
    #: Values that change with every look, kept as last reported but never compared.
    uptime_seconds: int | None = None
    distance: int | None = None
    #: False when the record says nothing of its services (it has no `services`): then it
    #: makes no known service gone.
    lists_services: bool = True


@dataclass(frozen=True, slots=True)
class KnownAsset(_Matched):
    """An asset of the inventory as matching and change detection see it."""

    id: int
    addresses: tuple[str, ...]
    mac: str | None = None
    hostnames: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    os: str = ""
    details: HostDetails = NO_DETAILS
    alive: bool = True
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    #: Claimed by an earlier answer of the task being processed.
    claimed: bool = False


def identity_names(hostnames: Iterable[str], addresses: Iterable[str]) -> frozenset[str]:
    """The names that say who a host is: not generic, not spelled from its addresses."""
    addresses = tuple(addresses)
    return frozenset(
        name
        for name in hostnames
        if name not in GENERIC_NAMES and not is_derived_from_address(name, addresses)
    )


class MatchReason(StrEnum):
    MAC = "mac"
    EVIDENCE = "evidence"


@dataclass(frozen=True, slots=True)
class Match:
    asset: KnownAsset
    reason: MatchReason
    score: int
    evidence: tuple[str, ...] = field(default=())


def evidence_score(observation: Observation, candidate: KnownAsset) -> tuple[int, tuple[str, ...]]:
    """Points for `candidate` being the host of `observation`, and the reasons (rule 2)."""
    score = 0
    reasons: list[str] = []
    if set(observation.addresses) & set(candidate.addresses):
        score += SCORE_SHARED_ADDRESS
        reasons.append("address")
    seen_names, known_names = observation.identity_names, candidate.identity_names
    if seen_names & known_names:
        score += SCORE_SHARED_NAME
        reasons.append("name")
    elif seen_names and known_names:
        score += SCORE_DISJOINT_NAMES
        reasons.append("other names")
    if observation.certificates & candidate.certificates:
        score += SCORE_SHARED_CERTIFICATE
        reasons.append("certificate")
    if services_similar(observation.port_keys, candidate.port_keys):
        score += SCORE_SIMILAR_SERVICES
        reasons.append("services")
    return score, tuple(reasons)


def services_similar(a: Collection[tuple[str, int]], b: Collection[tuple[str, int]]) -> bool:
    """Half or more of the ports of both, together, are common to both."""
    if not a or not b:
        return False
    common = len(set(a) & set(b))
    return common / len(set(a) | set(b)) >= SIMILAR_SERVICES_RATIO


_ANCHORS: Final = frozenset({"address", "name", "certificate"})


def match(observation: Observation, candidates: Sequence[KnownAsset]) -> Match | None:
    """The asset `observation` belongs to among `candidates` (one site), or None for new."""
    available = [c for c in candidates if not c.claimed]
    if observation.mac is not None:
        for candidate in sorted(available, key=_preference):
            if candidate.mac == observation.mac:
                return Match(candidate, MatchReason.MAC, 0, ("mac",))
        available = [c for c in available if c.mac is None]
    best: Match | None = None
    for candidate in sorted(available, key=_preference):
        score, reasons = evidence_score(observation, candidate)
        if score < MATCH_THRESHOLD or not _ANCHORS & set(reasons):
            continue
        if best is None or score > best.score:
            best = Match(candidate, MatchReason.EVIDENCE, score, reasons)
    return best


def _preference(candidate: KnownAsset) -> tuple[float, int]:
    seen = candidate.last_seen.timestamp() if candidate.last_seen is not None else float("-inf")
    return (-seen, candidate.id)


class IgnoreReason(StrEnum):
    EVERY_PORT = "answers on every port"
    SHARED_MAC = "one device answering for many addresses"
    OUT_OF_SCOPE = "outside the task's scope"


def answers_every_port(observation: Observation, probed_ports: int | None) -> bool:
    """A SYN proxy or tarpit: open on nearly every one of many probed ports."""
    if probed_ports is None or probed_ports < EVERY_PORT_MIN_PROBED:
        return False
    enough = EVERY_PORT_SHARE * probed_ports
    left_out = observation.services_truncated
    if len(observation.services) + left_out < enough:
        return False
    return sum(1 for s in observation.services if s.state == "open") + left_out >= enough


def service_signature(services: Iterable[Service]) -> tuple[tuple[object, ...], ...]:
    """What a device answers, without what only its address changes: ports, banners, products."""
    return tuple(
        sorted((s.proto, s.port, s.state, s.banner, s.product, s.http_title) for s in services)
    )


@dataclass(frozen=True, slots=True)
class MacUse:
    """How a MAC was used across one task's host records (gathered before merging)."""

    records: int
    #: Every record of the MAC answered with the same services (`service_signature`).
    one_face: bool


class MacVerdict(StrEnum):
    IDENTITY = "identity"  # one host (perhaps with several addresses): merge its answers
    NOT_IDENTITY = "not_identity"  # many hosts behind one MAC (proxy ARP): ignore the MAC
    BOGUS = "bogus"  # one device answering for many addresses: ignore the answers


def judge_mac(use: MacUse) -> MacVerdict:
    """What a MAC means in one task, from the records and services it was reported with."""
    if use.records <= SHARED_MAC_RECORDS:
        return MacVerdict.IDENTITY
    if use.one_face:
        return MacVerdict.BOGUS
    return MacVerdict.NOT_IDENTITY


def merge_observations(parts: Sequence[Observation]) -> Observation:
    """Several answers of one host (one MAC, several addresses) as one observation."""
    first = parts[0]
    services: dict[tuple[str, int], Service] = {}
    for part in parts:
        for service in part.services:
            services[service.key] = service
    return Observation(
        addresses=sort_addresses(a for p in parts for a in p.addresses),
        mac=first.mac,
        hostnames=tuple(sorted({n for p in parts for n in p.hostnames})),
        services=tuple(services[key] for key in sorted(services)),
        os=next((p.os for p in parts if p.os), ""),
        line=min(p.line for p in parts),
        services_truncated=sum(p.services_truncated for p in parts),
        source=first.source,
        details=next((p.details for p in parts if p.details is not None), None),
        uptime_seconds=next(
            (p.uptime_seconds for p in parts if p.uptime_seconds is not None), None
        ),
        distance=next((p.distance for p in parts if p.distance is not None), None),
        lists_services=any(p.lists_services for p in parts),
    )


def without_mac(observation: Observation) -> Observation:
    return replace(observation, mac=None)


_BANNER_NAMES: Final = (
    (re.compile(r"^SSH-", re.I), "ssh"),
    (re.compile(r"^220[ -].*\b(E?SMTP|Postfix|Exim|Sendmail)\b", re.I), "smtp"),
    (re.compile(r"^220[ -].*\bFTP\b", re.I), "ftp"),
    (re.compile(r"^\+OK", re.I), "pop3"),
    (re.compile(r"^\* OK", re.I), "imap"),
    (re.compile(r"^RFB \d", re.I), "vnc"),
    (re.compile(r"mysql|mariadb", re.I), "mysql"),
    (re.compile(r"^-ERR|^\$\d|redis", re.I), "redis"),
)
_PORT_NAMES: Final = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    25: "smtp",
    53: "dns",
    80: "http",
    110: "pop3",
    111: "rpcbind",
    135: "msrpc",
    139: "netbios",
    143: "imap",
    389: "ldap",
    443: "https",
    445: "smb",
    465: "smtps",
    587: "submission",
    631: "ipp",
    636: "ldaps",
    993: "imaps",
    995: "pop3s",
    1433: "mssql",
    1521: "oracle",
    3306: "mysql",
    3389: "rdp",
    5432: "postgresql",
    5900: "vnc",
    6379: "redis",
    8080: "http",
    8443: "https",
    9100: "jetdirect",
    27017: "mongodb",
}


def service_name(
    port: int, *, banner: str, has_http: bool, has_tls: bool, proto: str = "tcp"
) -> str:
    """The application protocol on a port: what it said first, else what the port suggests."""
    if has_http:
        return "https" if has_tls else "http"
    for pattern, name in _BANNER_NAMES:
        if banner and pattern.search(banner):
            return name
    if has_tls and port not in _PORT_NAMES:
        return "tls"
    return _PORT_NAMES.get(port, "") if proto == "tcp" else ""


_SSH_SOFTWARE = re.compile(r"^SSH-[\d.]+-([A-Za-z][\w.-]*?)(?:_([\w.]+))?(?:[ \r\n]|$)")


def product_from(banner: str, http_server: str) -> str:
    """A product name when the record gives none: the HTTP server, or the SSH software."""
    if http_server:
        return http_server
    found = _SSH_SOFTWARE.match(banner)
    if found:
        name, version = found.groups()
        return f"{name} {version}" if version else name
    return ""


_OS_HINTS: Final = (
    (r"\bubuntu\b", "Ubuntu Linux"),
    (r"\bdebian\b", "Debian Linux"),
    (r"\b(?:red ?hat|rhel|centos|rocky|alma)\b", "Red Hat Linux"),
    (r"\bfreebsd\b", "FreeBSD"),
    (r"\bopenbsd\b", "OpenBSD"),
    (r"\b(?:microsoft|windows|win32|win64)\b", "Windows"),
    (r"\b(?:routeros|mikrotik)\b", "MikroTik RouterOS"),
    (r"\bcisco\b", "Cisco IOS"),
)
#: One pattern for every hint; the group that matched names the system.
_OS_PATTERN: Final = re.compile(
    "|".join(f"(?P<os{n}>{pattern})" for n, (pattern, _) in enumerate(_OS_HINTS)), re.I
)


def guess_os(services: Iterable[Service]) -> str:
    """An operating system named by a banner or a server header, or empty."""
    parts = (part for s in services for part in (s.banner, s.http_server, s.product) if part)
    return _os_named_in("\n".join(dict.fromkeys(parts)))


@functools.lru_cache(maxsize=4096)
def _os_named_in(text: str) -> str:
    # Hosts of one kind answer alike, so the same texts come back again and again.
    found = _OS_PATTERN.search(text) if text else None
    if found is None or found.lastgroup is None:
        return ""
    return _OS_HINTS[int(found.lastgroup[2:])][1]


def primary_address(addresses: Sequence[str]) -> str:
    """The address an asset is listed by: its lowest IPv4 address, else its lowest IPv6."""
    return min(addresses, key=address_key) if addresses else ""


def listing_key(addresses: Sequence[str], names: Sequence[str]) -> str:
    """The key an asset is listed in order by: its address's (`address_key`), or, for a host
    known by name only, `n` and the start of its name, after every address."""
    if addresses:
        return address_key(primary_address(addresses))
    return "n" + (primary_hostname(names) or "")[:32]


def primary_hostname(names: Sequence[str]) -> str | None:
    """The name an asset is listed and looked up by: its first name in sort order."""
    return min(names) if names else None
