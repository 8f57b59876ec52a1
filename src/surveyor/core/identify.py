"""What a host is: products, operating system and device type from what it answered.

Pure rules, no I/O. The rules live in `core/fingerprints/*.json` (docs/fingerprints.md): each
names one kind of evidence (an SSH version string, an HTTP Server header, an SNMP sysDescr...),
a regular expression over it, and what a match says (`vendor`, `product`, `version`, `os`,
`os_version`, `device_type`, `cpe`) with a confidence. Rules are compiled once, grouped by kind:
a text is only tried against the rules of its kind, through one alternation per kind, and the
first rule (in file order) that matches wins. `identify` combines the matches of one host into
an OS guess and a device-type guess, each with a confidence.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Final

from surveyor.core.fingerprint import Service, guess_os, product_from


class Kind(StrEnum):
    """The kinds of evidence a rule reads."""

    BANNER = "banner"
    SSH = "ssh"
    SMTP = "smtp"
    FTP = "ftp"
    POP3 = "pop3"
    IMAP = "imap"
    HTTP_SERVER = "http_server"
    HTTP_POWERED_BY = "http_powered_by"
    HTTP_TITLE = "http_title"
    TLS_SUBJECT = "tls_subject"
    TLS_ISSUER = "tls_issuer"
    SNMP_SYSDESCR = "snmp_sysdescr"
    SNMP_SYSOBJECTID = "snmp_sysobjectid"
    TCP_STACK = "tcp_stack"


#: What a rule may say; `version`, `os_version` and `cpe` may name capture groups as `{name}`.
FIELDS: Final = ("vendor", "product", "version", "os", "os_version", "device_type", "cpe")
DEFAULT_CONFIDENCE: Final = 0.8
#: The confidence of an OS named by a keyword only (`guess_os`), when no rule names one.
KEYWORD_CONFIDENCE: Final = 0.3
#: The host attribute that keeps a scan's stack hint (`stack_text`), for the asset's page.
STACK_ATTRIBUTE: Final = "TCP stack"
#: The initial TTLs systems start from: an answer's TTL is read as the next one up.
INITIAL_TTLS: Final = (32, 64, 128, 255)


_FORMATTER: Final = string.Formatter()


class RuleError(ValueError):
    """A rule file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: Kind
    pattern: re.Pattern[str]
    says: Mapping[str, str]
    confidence: float
    examples: tuple[Mapping[str, object], ...]

    def read(self, found: re.Match[str]) -> dict[str, str]:
        """What the rule says of one match: templates filled from the capture groups."""
        groups = {k: (v or "") for k, v in found.groupdict().items()}
        out = {}
        for name, template in self.says.items():
            if "{" in template:
                used = [field for _, field, _, _ in _FORMATTER.parse(template) if field]
                if name != "cpe" and not any(groups.get(field) for field in used):
                    continue  # the template's groups matched nothing: the rule cannot say
                value = template.format_map(groups).rstrip(":")
            else:
                value = template
            if value:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that matched one piece of evidence."""

    rule: str
    kind: Kind
    text: str
    says: Mapping[str, str]
    confidence: float
    port: int | None = None
    proto: str = "tcp"


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    vendor: str = ""
    product: str = ""
    version: str = ""
    cpe: str = ""

    @property
    def label(self) -> str:
        """`vsftpd 3.0.3`: the product and its version, as the `product` text shows it."""
        return f"{self.product} {self.version}".strip() if self.product else ""


@dataclass(frozen=True, slots=True)
class Identification:
    """What one host is, as far as its answers tell."""

    os: str = ""
    os_version: str = ""
    os_vendor: str = ""
    os_cpe: str = ""
    os_confidence: float = 0.0
    device_type: str = ""
    device_confidence: float = 0.0
    services: Mapping[tuple[str, int], ServiceIdentity] | None = None
    evidence: tuple[Finding, ...] = ()

    @property
    def os_label(self) -> str:
        """`Debian Linux 12`: the system and its version."""
        return f"{self.os} {self.os_version}".strip()


class _Dispatch:
    """The rules of one kind behind one alternation: one search finds the first rule."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.any = re.compile(
            "|".join(f"(?P<r{n}>{_ungrouped(r.pattern.pattern)})" for n, r in enumerate(rules)),
            re.I,
        )

    def find(self, text: str) -> tuple[Rule, re.Match[str]] | None:
        hit = self.any.match(text)
        if hit is None or hit.lastgroup is None:
            return None
        rule = self.rules[int(hit.lastgroup[1:])]
        found = rule.pattern.match(text)
        return (rule, found) if found is not None else None


def _ungrouped(pattern: str) -> str:
    """A pattern whose named groups are plain groups, so that many can share one regex."""
    return re.sub(r"\(\?P<\w+>", "(", pattern)


def _load_file(name: str, data: object) -> list[Rule]:
    if not isinstance(data, list):
        raise RuleError(f"{name}: a list of rules is expected")
    rules = []
    for entry in data:
        if not isinstance(entry, dict):
            raise RuleError(f"{name}: a rule is an object")
        rule_id = str(entry.get("id", ""))
        try:
            kind = Kind(entry["kind"])
            # Rules match from the start of the text; `.*?` in front searches.
            pattern = re.compile(entry["pattern"], re.I)
        except (KeyError, ValueError, re.error) as error:
            raise RuleError(f"{name}: rule {rule_id!r}: {error}") from None
        says = {k: str(entry[k]) for k in FIELDS if entry.get(k)}
        unknown = set(entry) - {*FIELDS, "id", "kind", "pattern", "confidence", "examples"}
        if not rule_id or not says or unknown:
            raise RuleError(f"{name}: rule {rule_id!r} lacks an id or a claim, or has {unknown}")
        examples = tuple(entry.get("examples") or ())
        if not examples:
            raise RuleError(f"{name}: rule {rule_id!r} has no example")
        confidence = float(entry.get("confidence", DEFAULT_CONFIDENCE))
        rules.append(Rule(rule_id, kind, pattern, says, confidence, examples))
    return rules


@functools.cache
def rules() -> tuple[Rule, ...]:
    """Every rule of every data file, in file-name then file order."""
    folder = resources.files("surveyor.core") / "fingerprints"
    loaded: list[Rule] = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            loaded.extend(_load_file(item.name, json.loads(item.read_text("utf-8"))))
    ids = [r.id for r in loaded]
    if len(ids) != len(set(ids)):
        raise RuleError("rule ids must be unique")
    return tuple(loaded)


@functools.cache
def _dispatch() -> dict[Kind, _Dispatch]:
    by_kind: dict[Kind, list[Rule]] = {}
    for rule in rules():
        by_kind.setdefault(rule.kind, []).append(rule)
    return {kind: _Dispatch(found) for kind, found in by_kind.items()}


@functools.lru_cache(maxsize=8192)
def _find(kind: Kind, text: str) -> tuple[str, tuple[tuple[str, str], ...], float] | None:
    dispatch = _dispatch().get(kind)
    hit = dispatch.find(text) if dispatch is not None else None
    if hit is None:
        return None
    rule, found = hit
    return rule.id, tuple(rule.read(found).items()), rule.confidence


def match(kind: Kind | str, text: str) -> Finding | None:
    """The first rule of `kind` that matches `text`, and what it says; None if none does."""
    kind = Kind(kind)
    text = text.strip()
    if kind is Kind.SNMP_SYSOBJECTID:
        text = text.lstrip(".")
    hit = _find(kind, text) if text else None
    if hit is None:
        return None
    rule_id, says, confidence = hit
    return Finding(rule_id, kind, text, dict(says), confidence)


def banner_kinds(banner: str) -> tuple[Kind, ...]:
    """The kinds of evidence a first answer can be, by its shape."""
    if banner.startswith("SSH-"):
        return (Kind.SSH,)
    if banner.startswith("220"):
        return (Kind.SMTP, Kind.FTP, Kind.BANNER)
    if banner.startswith("+OK"):
        return (Kind.POP3,)
    if banner.startswith("* OK") or banner.startswith("* PREAUTH"):
        return (Kind.IMAP,)
    return (Kind.BANNER,)


@functools.lru_cache(maxsize=8192)
def service_evidence(service: Service) -> tuple[Finding, ...]:
    """Every rule matching what one service said: its banner, HTTP header and title, TLS.

    Cached: hosts of one kind answer alike, port for port."""
    findings: list[Finding] = []
    banner = service.banner.strip()
    if banner:
        for kind in banner_kinds(banner):
            found = match(kind, banner)
            if found is not None:
                findings.append(found)
                break
    for kind, text in (
        (Kind.HTTP_SERVER, service.http_server),
        (Kind.HTTP_TITLE, service.http_title),
        (Kind.TLS_SUBJECT, service.tls_subject),
        (Kind.TLS_ISSUER, service.tls_issuer),
    ):
        found = match(kind, text) if text else None
        if found is not None:
            findings.append(found)
    return tuple(
        Finding(f.rule, f.kind, f.text, f.says, f.confidence, service.port, service.proto)
        for f in findings
    )


def identify_service(service: Service) -> ServiceIdentity:
    """The product on one port, from the best finding that names one."""
    return _service_identity(service_evidence(service))


def _service_identity(findings: Iterable[Finding]) -> ServiceIdentity:
    named = [f for f in findings if f.says.get("product")]
    if not named:
        return ServiceIdentity()
    best = max(named, key=lambda f: (f.confidence, "version" in f.says))
    return ServiceIdentity(
        vendor=best.says.get("vendor", ""),
        product=best.says["product"],
        version=best.says.get("version", ""),
        cpe=best.says.get("cpe", ""),
    )


def identify_os(services: tuple[Service, ...]) -> str:
    """The OS name alone, as processing fills an observation's `os` (cached per service set)."""
    return identify_cached(services).os


@functools.lru_cache(maxsize=4096)
def identify_cached(services: tuple[Service, ...], stack: str = "") -> Identification:
    """`identify` of a host's services (and stack hint), cached per service set (many hosts
    look alike)."""
    return identify(services, stack=stack)


def identify(
    services: Iterable[Service],
    snmp: Mapping[str, str] | None = None,
    stack: str = "",
) -> Identification:
    """What a host is, from its services and, when known, its SNMP `sysDescr`/`sysObjectID`
    and its TCP/IP stack hint (`stack_text`).

    Each finding that names an OS votes for it with its confidence; the OS with the most
    weight wins, and its confidence is the weight of agreeing findings combined as
    independent ones (1 - Π(1 - c)) times the share of all OS weight they hold. The version
    comes from the surest agreeing finding that names one. The device type is voted alike;
    with no finding naming one, a host whose OS is a server system and that serves
    something is a `server`, at half the OS confidence.

    The stack hint is weak evidence of a family (`Linux`, `Windows`) and never outvotes
    what the answers say: it only adds to the confidence of an OS of its family, lowers
    that of another, and names the OS itself when nothing else does.
    """
    services = tuple(services)
    findings: list[Finding] = []
    by_port: dict[tuple[str, int], ServiceIdentity] = {}
    for service in services:
        found = service_evidence(service)
        findings.extend(found)
        identity = _service_identity(found)
        if identity.product:
            by_port[service.key] = identity
    for key, kind in (("sysDescr", Kind.SNMP_SYSDESCR), ("sysObjectID", Kind.SNMP_SYSOBJECTID)):
        text = (snmp or {}).get(key, "")
        found_snmp = match(kind, text) if text else None
        if found_snmp is not None:
            findings.append(found_snmp)
    os_name, os_confidence, agreeing = _vote(findings, "os")
    os_version = os_vendor = os_cpe = ""
    for finding in sorted(agreeing, key=lambda f: -f.confidence):
        os_version = os_version or finding.says.get("os_version", "")
        if "product" not in finding.says:  # a finding about the system itself
            os_vendor = os_vendor or finding.says.get("vendor", "")
            os_cpe = os_cpe or finding.says.get("cpe", "")
    if os_name and not os_cpe and os_name in OS_CPE:
        os_cpe = f"{OS_CPE[os_name]}:{os_version}" if os_version else OS_CPE[os_name]
    if not os_name:
        os_name = guess_os(services)
        os_confidence = KEYWORD_CONFIDENCE if os_name else 0.0
    hint = match(Kind.TCP_STACK, stack) if stack else None
    if hint is not None:
        findings.append(hint)
        os_name, os_confidence = _with_hint(os_name, os_confidence, hint)
    device, device_confidence, _ = _vote(findings, "device_type")
    if not device and os_name in SERVER_SYSTEMS and by_port:
        device, device_confidence = "server", round(os_confidence / 2, 2)
    return Identification(
        os=os_name,
        os_version=os_version,
        os_vendor=os_vendor,
        os_cpe=os_cpe,
        os_confidence=os_confidence,
        device_type=device,
        device_confidence=device_confidence,
        services=by_port,
        evidence=tuple(findings),
    )


def os_family(os_name: str) -> str:
    """The family a system belongs to, as stack hints name it: `Linux` for any Linux
    distribution, `Windows` for any Windows; any other system is a family of its own."""
    lowered = os_name.lower()
    if "linux" in lowered:
        return "Linux"
    if lowered.startswith("windows"):
        return "Windows"
    return os_name


def _with_hint(os_name: str, confidence: float, hint: Finding) -> tuple[str, float]:
    """The OS and its confidence once a stack hint is weighed in (never against the OS)."""
    family = hint.says.get("os", "")
    if not family:
        return os_name, confidence
    if not os_name:
        return family, hint.confidence
    if os_family(os_name) == family:  # agreeing evidence: combined as independent
        return os_name, round(1.0 - (1.0 - confidence) * (1.0 - hint.confidence), 2)
    # a contradiction: the OS stays, less sure by the hint's share of the weight
    return os_name, round(confidence * confidence / (confidence + hint.confidence), 2)


def reasons(found: Identification) -> tuple[str, ...]:
    """Why the host is what `found` says, one line per finding that names a system or a
    device type (`reason`); a stack hint of another family than the OS says it was
    outweighed."""
    lines = []
    for finding in found.evidence:
        if not ({"os", "device_type"} & set(finding.says)):
            continue
        line = reason(finding)
        if finding.kind is Kind.TCP_STACK and os_family(found.os) != finding.says.get("os"):
            line += ", outweighed by what the host answered"
        lines.append(line)
    return tuple(lines)


def initial_ttl(ttl: int) -> int:
    """The TTL a packet most likely started with: the next of `INITIAL_TTLS` up from the
    TTL it arrived with (each router on the way took one)."""
    return next((start for start in INITIAL_TTLS if ttl <= start), INITIAL_TTLS[-1])


def stack_text(ttl: int, window: int, options: str) -> str:
    """The evidence text of a SYN-ACK (`tcp_stack` kind): `TTL 64, window 65160, options
    M1460,S,T,N,W7`, its TTL read as the initial one."""
    return f"TTL {initial_ttl(ttl)}, window {window}, options {options or '-'}"


def reason(finding: Finding) -> str:
    """What one finding says, in words, for an asset's "why we think so": `Debian Linux 12
    from 22/tcp: SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6`, `Linux family (TTL 64, window
    65160)`."""
    says = finding.says
    if finding.kind is Kind.TCP_STACK:
        ttl_and_window = ", ".join(finding.text.split(", ")[:2])
        return f"{says.get('os', '?')} family ({ttl_and_window}), from the TCP/IP stack"
    claims = " ".join(
        part
        for part in (
            f"{says.get('product', '')} {says.get('version', '')}".strip(),
            f"{says.get('os', '')} {says.get('os_version', '')}".strip(),
            says.get("device_type", ""),
        )
        if part
    )
    where = f"{finding.port}/{finding.proto}" if finding.port is not None else "SNMP"
    text = finding.text if len(finding.text) <= 80 else f"{finding.text[:79]}…"
    return f"{claims} from {where} {finding.kind.value.replace('_', ' ')}: {text}"


#: The CPE of a system, for findings that name it without one (an SSH version string).
OS_CPE: Final = {
    "Debian Linux": "cpe:/o:debian:debian_linux",
    "Ubuntu Linux": "cpe:/o:canonical:ubuntu_linux",
    "Red Hat Linux": "cpe:/o:redhat:enterprise_linux",
    "FreeBSD": "cpe:/o:freebsd:freebsd",
    "Windows": "cpe:/o:microsoft:windows",
    "MikroTik RouterOS": "cpe:/o:mikrotik:routeros",
    "Cisco IOS": "cpe:/o:cisco:ios",
    "Junos": "cpe:/o:juniper:junos",
}

#: Systems whose hosts serving something are servers unless a rule says otherwise.
SERVER_SYSTEMS: Final = frozenset(
    {
        "Debian Linux",
        "Ubuntu Linux",
        "Red Hat Linux",
        "Linux",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Windows",
    }
)


def _vote(findings: Iterable[Finding], field: str) -> tuple[str, float, list[Finding]]:
    weights: dict[str, list[Finding]] = {}
    for finding in findings:
        value = finding.says.get(field)
        if value:
            weights.setdefault(value, []).append(finding)
    if not weights:
        return "", 0.0, []
    total = sum(f.confidence for found in weights.values() for f in found)

    def weight(value: str) -> float:
        return sum(f.confidence for f in weights[value])

    best = max(weights, key=lambda v: (weight(v), v))
    doubt = 1.0
    for finding in weights[best]:
        doubt *= 1.0 - finding.confidence
    confidence = (1.0 - doubt) * weight(best) / total
    return best, round(confidence, 2), weights[best]


def service_product(banner: str, http_server: str) -> str:
    """The `product` text of a service the record names none for: as `product_from` has it
    (the HTTP Server header, the SSH software and version), else the product a rule reads
    from its first answer (`Postfix`, `vsftpd 3.0.3`)."""
    named = product_from(banner, http_server)
    if named:
        return named
    return identify_answer(banner, http_server).label


@functools.lru_cache(maxsize=8192)
def identify_answer(banner: str, http_server: str) -> ServiceIdentity:
    """`identify_service` of one port's answers alone (its banner and HTTP Server header),
    cached: many hosts answer alike."""
    return identify_service(Service(0, banner=banner, http_server=http_server))
