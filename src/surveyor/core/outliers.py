"""Outlier scores: how unusual an asset is among its site's peers, 0-100, with the reasons.

The method (docs/outliers.md) is frequency-based rarity. Each asset is reduced to a few
features (`AssetFeatures`): its OS family and device type, its open ports, its set of open
ports, the products its services report, the issuers of its TLS certificates and the pattern
of its name. The site's assets are read once (`SiteProfiles`): assets with the same features
share one *profile*, the values are counted from the profiles (`FeatureCounts`), and each
profile is scored once against those counts (`score`).

A value's rarity is 0 when it is common and approaches 1 when one asset in many has it: for a
value `f` of `n` assets share, against the `m` assets of the most common alternative,
`log(m / f) / log(n)`, clamped to 0-1. Each rare value is one *finding* weighing
`WEIGHTS[feature] * rarity`; the score is `100 * (1 - product of (1 - finding))`:
one strong finding
alone gives at most its weight, and every further one adds to it. The three strongest findings
are the reasons, in words. Nothing here reads the database: memory is one counter per distinct
value, one entry per distinct profile, and two numbers per asset.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

#: How much one fully rare value of each feature weighs (0-1): the most an asset scores
#: from that feature alone.
WEIGHTS: dict[str, float] = {
    "port": 0.6,
    "product": 0.5,
    "tls_issuer": 0.5,
    "os": 0.4,
    "device_type": 0.4,
    "port_set": 0.3,
    "name_pattern": 0.3,
}
#: Fewer peers than this say nothing about what is usual: their features are not scored.
MIN_PEERS = 5
#: Reasons kept per asset.
MAX_REASONS = 3
#: Findings below this weight are not worth a reason.
_MIN_FINDING = 0.05

UNKNOWN_OS = "unknown"
SELF_SIGNED = "self-signed"

#: Device types read from the OS text when the inventory records none: (type, words).
_DEVICE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("printer", ("printer", "jetdirect", "laserjet", "officejet")),
    (
        "network device",
        ("router", "switch", "junos", "routeros", "cisco", "fortios", "pan-os", "edgeos"),
    ),
    ("phone", ("android", "iphone")),
    ("storage", ("nas", "synology", "qnap", "ontap")),
    ("hypervisor", ("esxi", "vmware", "proxmox", "hyper-v")),
    ("embedded", ("embedded", "busybox", "vxworks", "rtos", "camera")),
)
_OS_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Windows", ("windows",)),
    ("macOS", ("mac os", "macos", "os x", "darwin")),
    ("Linux", ("linux", "ubuntu", "debian", "centos", "red hat", "rhel", "fedora", "alpine")),
    ("FreeBSD", ("freebsd",)),
    ("OpenBSD", ("openbsd",)),
    ("NetBSD", ("netbsd",)),
    ("Solaris", ("solaris", "sunos")),
)
_DEVICE_PATTERNS = tuple(
    (kind, re.compile(r"\b(?:" + "|".join(re.escape(word) for word in words) + r")\b"))
    for kind, words in _DEVICE_WORDS
)
_DIGITS = re.compile(r"[0-9]+")
_HEXISH = re.compile(r"\b[0-9a-f]{8,}\b")


def os_family(os: str) -> str:
    """The OS family an OS text names ("Ubuntu 22.04" → "Linux"); its first word when no
    family is known; `unknown` when empty."""
    text = os.strip().lower()
    if not text:
        return UNKNOWN_OS
    for family, words in _OS_FAMILIES:
        if any(word in text for word in words):
            return family
    return os.strip().split()[0][:40]


def device_type(os: str, recorded: str | None = None) -> str:
    """The device type the inventory records, else one read from the OS text, else
    "computer" (an OS is known) or "unknown"."""
    if recorded:
        return recorded.strip().lower()
    text = os.lower()
    for kind, pattern in _DEVICE_PATTERNS:
        if pattern.search(text):
            return kind
    return "computer" if text.strip() else "unknown"


def name_pattern(hostname: str | None) -> str:
    """A name with its numbers and hex runs replaced ("web-014.lab" → "web-#.lab")."""
    if not hostname:
        return ""
    text = _HEXISH.sub("#", hostname.lower())
    return _DIGITS.sub("#", text)


class ServiceFacts(NamedTuple):
    """What the features read of one open service (a tuple: a site has millions)."""

    proto: str
    port: int
    name: str = ""
    product: str = ""
    tls_subject: str = ""
    tls_issuer: str = ""


@dataclass(frozen=True, slots=True)
class AssetFeatures:
    """The features of one asset that its rarity is measured on."""

    os: str
    device_type: str
    #: Open ports as `tcp/23`, sorted, with the service name a port is known by.
    ports: tuple[str, ...]
    port_names: dict[str, str] = field(hash=False, compare=False)
    products: frozenset[str]
    issuers: frozenset[str]
    name_pattern: str

    @property
    def port_set(self) -> str:
        return " ".join(self.ports)


def features_of(
    os: str,
    hostname: str | None,
    services: Iterable[ServiceFacts],
    *,
    recorded_type: str | None = None,
) -> AssetFeatures:
    """An asset's features from its OS, name and open services."""
    ports: dict[str, str] = {}
    products: set[str] = set()
    issuers: set[str] = set()
    for service in services:
        ports[f"{service.proto}/{service.port}"] = service.name
        if service.product:
            products.add(service.product.strip()[:200])
        if service.tls_issuer:
            same = service.tls_subject and service.tls_subject == service.tls_issuer
            issuers.add(SELF_SIGNED if same else service.tls_issuer.strip()[:300])
    return AssetFeatures(
        os=os_family(os),
        device_type=device_type(os, recorded_type),
        ports=tuple(sorted(ports, key=_port_order)),
        port_names=ports,
        products=frozenset(products),
        issuers=frozenset(issuers),
        name_pattern=name_pattern(hostname),
    )


def _port_order(label: str) -> tuple[int, str]:
    proto, _, port = label.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


@dataclass
class FeatureCounts:
    """How many assets of a site share each feature value."""

    assets: int = 0
    os: Counter[str] = field(default_factory=Counter)
    device_type: Counter[str] = field(default_factory=Counter)
    #: (OS family, port) → assets of that family with the port open.
    os_port: Counter[tuple[str, str]] = field(default_factory=Counter)
    port: Counter[str] = field(default_factory=Counter)
    port_set: Counter[str] = field(default_factory=Counter)
    product: Counter[str] = field(default_factory=Counter)
    tls_issuer: Counter[str] = field(default_factory=Counter)
    name_pattern: Counter[str] = field(default_factory=Counter)
    #: Each counter's two most common values, by id(counter), while nothing is added.
    _leaders: dict[int, list[tuple[str, int]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def leaders(self, counter: Counter[str]) -> list[tuple[str, int]]:
        """`counter.most_common(2)`, worked out once per counter for all the scoring
        (it walks every distinct value)."""
        found = self._leaders.get(id(counter))
        if found is None:
            found = self._leaders[id(counter)] = counter.most_common(2)
        return found

    def add(self, features: AssetFeatures, times: int = 1) -> None:
        """Count the features of `times` assets that all have them."""
        if self._leaders:
            self._leaders.clear()
        self.assets += times
        self.os[features.os] += times
        self.device_type[features.device_type] += times
        for port in features.ports:
            self.os_port[(features.os, port)] += times
            self.port[port] += times
        self.port_set[features.port_set] += times
        for product in features.products:
            self.product[product] += times
        for issuer in features.issuers:
            self.tls_issuer[issuer] += times
        self.name_pattern[features.name_pattern] += times


def rarity(share: int, alternative: int, population: int) -> float:
    """How rare a value `share` assets of `population` have is, against the `alternative`
    assets of the most common other choice: 0 (common) to 1 (one in very many)."""
    if population < MIN_PEERS or share <= 0 or alternative <= share:
        return 0.0
    return min(1.0, math.log(alternative / share) / math.log(population))


def _mode_other_than(leaders: list[tuple[str, int]], value: str) -> int:
    for other, count in leaders:
        if other != value:
            return count
    return 0


@dataclass(frozen=True, slots=True)
class Finding:
    """One rare value of an asset: its feature, its weight in the score, in words."""

    feature: str
    weight: float
    reason: str


@dataclass(frozen=True, slots=True)
class OutlierScore:
    score: int
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...]


def _of(share: int, population: int, what: str) -> str:
    if share == 1:
        return f"the only one of {population} {what}"
    return f"one of {share} of {population} {what}"


def _hosts(family: str, population: int) -> str:
    noun = "host" if population == 1 else "hosts"
    if family == UNKNOWN_OS:
        return f"{noun} with no known OS"
    return f"{family} {noun}"


def _port_words(port: str, name: str) -> str:
    proto, _, number = port.partition("/")
    shown = number if proto == "tcp" else port
    return f"{name} ({shown})" if name else f"port {shown}"


def findings_of(features: AssetFeatures, counts: FeatureCounts) -> list[Finding]:
    """Every rare value of an asset, weighed."""
    found: list[Finding] = []
    total = counts.assets

    def categorical(feature: str, value: str, counter: Counter[str], words: str) -> None:
        share = counter[value]
        alternative = _mode_other_than(counts.leaders(counter), value)
        weight = WEIGHTS[feature] * rarity(share, alternative, total)
        if weight >= _MIN_FINDING:
            found.append(Finding(feature, weight, f"{words} seen on {share} of {total} assets"))

    def present(feature: str, value: str, counter: Counter[str], words: str) -> None:
        share = counter[value]
        weight = WEIGHTS[feature] * rarity(share, total - share, total)
        if weight >= _MIN_FINDING:
            found.append(Finding(feature, weight, f"{words} seen on {share} of {total} assets"))

    categorical("os", features.os, counts.os, f"OS {features.os}")
    categorical(
        "device_type",
        features.device_type,
        counts.device_type,
        f"device type {features.device_type}",
    )
    peers = counts.os[features.os]
    by_family = peers >= MIN_PEERS
    for port in features.ports:
        share = counts.os_port[(features.os, port)] if by_family else counts.port[port]
        population = peers if by_family else total
        weight = WEIGHTS["port"] * rarity(share, population - share, population)
        if weight >= _MIN_FINDING:
            label = _port_words(port, features.port_names.get(port, ""))
            group = _hosts(features.os, population) if by_family else "assets"
            found.append(
                Finding("port", weight, f"{_of(share, population, group)} with {label} open")
            )
    if features.ports:
        set_words = ", ".join(
            _port_words(port, "").removeprefix("port ") for port in features.ports[:8]
        )
        if len(features.ports) > 8:
            set_words += f" and {len(features.ports) - 8} more"
        categorical("port_set", features.port_set, counts.port_set, f"open ports {set_words}")
    for product in sorted(features.products):
        present("product", product, counts.product, f"product {product!r}")
    for issuer in sorted(features.issuers):
        present("tls_issuer", issuer, counts.tls_issuer, f"TLS issuer {issuer!r}")
    if features.name_pattern:
        categorical(
            "name_pattern",
            features.name_pattern,
            counts.name_pattern,
            f"name pattern {features.name_pattern!r}",
        )
    return found


def combine(findings: Sequence[Finding]) -> OutlierScore:
    """The score of an asset's findings, 0-100, and its strongest reasons."""
    remaining = 1.0
    for finding in findings:
        remaining *= 1.0 - finding.weight
    ranked = sorted(findings, key=lambda finding: (-finding.weight, finding.reason))
    return OutlierScore(
        score=round(100 * (1.0 - remaining)),
        reasons=tuple(finding.reason for finding in ranked[:MAX_REASONS]),
        findings=tuple(ranked),
    )


def score(features: AssetFeatures, counts: FeatureCounts) -> OutlierScore:
    """How unusual an asset is among the site `counts` were made of."""
    return combine(findings_of(features, counts))


def _service_key(service: ServiceFacts) -> tuple[str, int, str, str, bool, str]:
    """All that `features_of` reads of a service: a certificate's subject only tells whether
    it is self-signed (the subject alone differs on nearly every asset)."""
    own = bool(service.tls_subject) and service.tls_subject == service.tls_issuer
    return (
        service.proto,
        service.port,
        service.name,
        service.product,
        own,
        "" if own else service.tls_issuer,
    )


class SiteProfiles:
    """The features of every asset of a site, kept compactly: assets whose features are the
    same share one profile (`AssetFeatures`, made once), and each asset is its id and the
    number of its profile. A site's assets fall into few profiles, so counting and scoring
    work per profile, while the scores and reasons are exactly those of `score` per asset."""

    def __init__(self) -> None:
        self.profiles: list[AssetFeatures] = []
        #: How many assets have each profile.
        self.sizes: list[int] = []
        self.asset_ids = array("q")
        self.profile_of = array("l")
        self._numbers: dict[tuple[object, ...], int] = {}
        self._families: dict[str, str] = {}
        self._types: dict[tuple[str, str | None], str] = {}

    def __len__(self) -> int:
        return len(self.asset_ids)

    def add(
        self,
        asset_id: int,
        os: str,
        hostname: str | None,
        services: Sequence[ServiceFacts],
        *,
        recorded_type: str | None = None,
    ) -> None:
        """One asset, from what `features_of` reads of it."""
        family = self._families.get(os)
        if family is None:
            family = self._families[os] = os_family(os)
        kind = self._types.get((os, recorded_type))
        if kind is None:
            kind = self._types[(os, recorded_type)] = device_type(os, recorded_type)
        # Each part of the key determines part of the features; equal keys, equal features.
        key = (family, kind, name_pattern(hostname), tuple(map(_service_key, services)))
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self.profiles)
            self.profiles.append(features_of(os, hostname, services, recorded_type=recorded_type))
            self.sizes.append(0)
        self.sizes[number] += 1
        self.asset_ids.append(asset_id)
        self.profile_of.append(number)

    def counts(self) -> FeatureCounts:
        """How many assets share each feature value."""
        counts = FeatureCounts()
        for features, size in zip(self.profiles, self.sizes, strict=True):
            counts.add(features, size)
        return counts

    def scores(self, counts: FeatureCounts) -> list[OutlierScore]:
        """Each profile's score, by profile number."""
        return [score(features, counts) for features in self.profiles]

    def groups(self, start: int, stop: int) -> Iterator[tuple[int, list[int]]]:
        """The assets `start` to `stop` (in the order added) by profile: (profile number,
        asset ids), profiles in the order first met."""
        found: dict[int, list[int]] = {}
        for asset_id, number in zip(
            self.asset_ids[start:stop], self.profile_of[start:stop], strict=True
        ):
            listed = found.get(number)
            if listed is None:
                found[number] = [asset_id]
            else:
                listed.append(asset_id)
        yield from found.items()
