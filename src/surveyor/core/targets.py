"""Scan targets and excludes (SPEC §7): parsing, scope arithmetic and lazy iteration.

A scope is kept as sorted, merged integer intervals per address family, so its size, membership
and the subtraction of excludes cost the number of entries, never the number of addresses:
127.0.0.0/8 minus a /16 is as cheap as one address. Nothing here resolves names; a hostname counts
as one address of the scope and the scanner resolves it later (see `Scope.is_excluded`).

Decisions:
- A CIDR with host bits set (127.0.0.5/24) means its network (127.0.0.0/24): that is what a user
  who pastes an interface address with its prefix wants, and it is normalised that way.
- Ranges are `first-last` (either family) or the IPv4 short form `127.0.0.1-20`, which replaces
  the last octet. Whitespace around the dash is tolerated (`127.0.0.1 - 127.0.0.20`).
- IPv6 targets (prefixes and ranges) are limited to `ipv6_min_prefix` (default /112, 65,536
  addresses); excludes are not limited, since excluding a large block is always safe.
- The normalised text of a set keeps the entries the user wrote, in order, each in canonical
  spelling, with exact duplicates dropped; overlaps are merged only in the scope arithmetic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Final

IPAddress = IPv4Address | IPv6Address
#: What a scope yields: addresses, then hostnames still to be resolved.
ScopeItem = IPv4Address | IPv6Address | str
#: An inclusive interval of integer addresses, `(first, last)`.
Interval = tuple[int, int]
_FailFn = Callable[[str], "TargetError"]

DEFAULT_IPV6_MIN_PREFIX: Final = 112
_MAX_SHOWN_TOKEN: Final = 80


class TargetError(ValueError):
    """A targets or excludes value that cannot be scanned; names the field and the token."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "targets",
        token: str | None = None,
        index: int | None = None,
    ) -> None:
        self.field = field
        self.message = message
        self.token = token
        #: 0-based position of the offending entry in the input (list item or separated entry).
        self.index = index
        super().__init__(message)


def quote_token(token: str) -> str:
    """Quote a user's token for an error message, shortening pathological lengths."""
    if len(token) > _MAX_SHOWN_TOKEN:
        token = token[: _MAX_SHOWN_TOKEN - 3] + "..."
    return f"'{token}'"


@dataclass(frozen=True, slots=True)
class Entry:
    """One raw entry of a separated list: its text as written and where it starts."""

    text: str
    index: int
    offset: int


def split_entries(text: str) -> list[Entry]:
    """Split a comma-, space- or newline-separated list into entries.

    A dash separated from its neighbours by whitespace joins them (`80 - 90` is one entry), so a
    range typed with spaces stays one range; empty entries (`a,,b`) are ignored.
    """
    spans = [[match.start(), match.end()] for match in re.finditer(r"[^\s,]+", text)]
    merged: list[list[int]] = []
    for span in spans:
        if merged:
            previous = merged[-1]
            gap = text[previous[1] : span[0]]
            joins = text[previous[1] - 1] == "-" or text[span[0]] == "-"
            if joins and not gap.strip():
                previous[1] = span[1]
                continue
        merged.append(span)
    return [
        Entry(text=text[start:end], index=index, offset=start)
        for index, (start, end) in enumerate(merged)
    ]


def _tighten_dashes(token: str) -> str:
    return re.sub(r"\s*-\s*", "-", token)


class TargetKind(StrEnum):
    ADDRESS = "address"
    NETWORK = "network"
    RANGE = "range"
    HOSTNAME = "hostname"


@dataclass(frozen=True, slots=True)
class Target:
    """One parsed entry. `text` is its canonical spelling; hostnames have no interval."""

    kind: TargetKind
    text: str
    version: int | None = None
    first: int = 0
    last: int = 0

    @property
    def size(self) -> int:
        if self.kind is TargetKind.HOSTNAME:
            return 1
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class TargetSet:
    """The parsed entries of one targets or excludes value, in input order."""

    entries: tuple[Target, ...] = ()

    @property
    def text(self) -> str:
        """The normalised value: canonical entries joined by commas."""
        return ",".join(entry.text for entry in self.entries)

    @property
    def hostnames(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.entries if e.kind is TargetKind.HOSTNAME)

    def intervals(self, version: int) -> tuple[Interval, ...]:
        """Sorted, merged intervals of one address family."""
        return _merge((e.first, e.last) for e in self.entries if e.version == version)

    def __str__(self) -> str:
        return self.text

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Target]:
        return iter(self.entries)


EMPTY_TARGETS: Final = TargetSet()


def parse_targets(
    value: object,
    *,
    field: str = "targets",
    ipv6_min_prefix: int | None = DEFAULT_IPV6_MIN_PREFIX,
) -> TargetSet:
    """Parse a targets or excludes value: a separated string, or a list of single entries.

    Raises `TargetError` naming the first bad entry and its 0-based index. `ipv6_min_prefix`
    bounds IPv6 prefixes and ranges (None: no bound, as for excludes).
    """
    entries: list[Entry]
    if isinstance(value, str):
        entries = split_entries(value)
    elif isinstance(value, list | tuple):
        entries = _list_entries(value, field)
    else:
        raise TargetError(
            f"'{field}' must be a string or a list of strings, got {type(value).__name__}",
            field=field,
        )
    targets: list[Target] = []
    seen: set[str] = set()
    for entry in entries:
        target = _parse_entry(entry, field, ipv6_min_prefix)
        if target.text not in seen:
            seen.add(target.text)
            targets.append(target)
    return TargetSet(tuple(targets))


def _list_entries(items: Sequence[object], field: str) -> list[Entry]:
    entries: list[Entry] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TargetError(
                f"entry {index + 1} of '{field}' must be a string, got {type(item).__name__}",
                field=field,
                index=index,
            )
        text = _tighten_dashes(item.strip())
        if not text:
            continue
        if re.search(r"[\s,]", text):
            raise TargetError(
                f"{quote_token(item.strip())} holds several entries; give one per list item "
                f"(entry {index + 1})",
                field=field,
                token=item.strip(),
                index=index,
            )
        entries.append(Entry(text=item.strip(), index=index, offset=0))
    return entries


def _parse_entry(entry: Entry, field: str, ipv6_min_prefix: int | None) -> Target:
    token = entry.text
    text = _tighten_dashes(token)

    def fail(reason: str) -> TargetError:
        return TargetError(
            f"{quote_token(token)} {reason} (entry {entry.index + 1})",
            field=field,
            token=token,
            index=entry.index,
        )

    if "%" in text:
        raise fail("has an IPv6 zone index; give the address without it")
    address = _address_or_none(text)
    if address is not None:
        number = int(address)
        return Target(TargetKind.ADDRESS, str(address), address.version, number, number)
    left, dash, right = text.partition("-")
    start = _address_or_none(left) if dash else None
    if start is not None:
        target = _parse_range(start, right, fail)
    elif "/" in text:
        target = _parse_network(text, fail)
    elif _is_hostname(text):
        return Target(TargetKind.HOSTNAME, text.rstrip(".").lower())
    else:
        raise fail("is not a valid address, range, network or hostname")
    if target.version == 6 and ipv6_min_prefix is not None:
        limit = 2 ** (128 - ipv6_min_prefix)
        if target.size > limit:
            raise fail(
                f"is too large: IPv6 targets may span at most {limit:,} addresses "
                f"(a /{ipv6_min_prefix})"
            )
    return target


def _address_or_none(text: str) -> IPAddress | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _parse_range(start: IPAddress, right: str, fail: _FailFn) -> Target:
    end = _address_or_none(right)
    if end is None and isinstance(start, IPv4Address) and re.fullmatch(r"[0-9]{1,3}", right):
        octet = int(right)
        if octet > 255:
            raise fail("is not a valid range: the last octet must be 0-255")
        end = IPv4Address((int(start) & ~0xFF) | octet)
        text = f"{start}-{octet}"
    elif end is None:
        raise fail("is not a valid range: the end is not an address")
    else:
        text = f"{start}-{end}"
    if end.version != start.version:
        raise fail("is not a valid range: it mixes IPv4 and IPv6")
    if int(end) < int(start):
        raise fail("is a reversed range: it ends before it starts")
    return Target(TargetKind.RANGE, text, start.version, int(start), int(end))


def _parse_network(text: str, fail: _FailFn) -> Target:
    try:
        network: IPv4Network | IPv6Network = ip_network(text, strict=False)
    except ValueError:
        raise fail("is not a valid network") from None
    first = int(network.network_address)
    return Target(
        TargetKind.NETWORK,
        network.with_prefixlen,
        network.version,
        first,
        first + network.num_addresses - 1,
    )


_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _is_hostname(text: str) -> bool:
    """RFC 1123 names; an all-numeric last label is refused so `127.0.0.300` is not a name."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return tuple(merged)


def _subtract(keep: Sequence[Interval], remove: Sequence[Interval]) -> tuple[Interval, ...]:
    """`keep` minus `remove`, both sorted and merged; one sweep over both."""
    result: list[Interval] = []
    j = 0
    for first, last in keep:
        while j < len(remove) and remove[j][1] < first:
            j += 1
        cursor = first
        k = j
        while k < len(remove) and remove[k][0] <= last:
            if remove[k][0] > cursor:
                result.append((cursor, remove[k][0] - 1))
            cursor = max(cursor, remove[k][1] + 1)
            k += 1
        if cursor <= last:
            result.append((cursor, last))
    return tuple(result)


def _covers(intervals: Sequence[Interval], number: int) -> bool:
    position = bisect_right(intervals, number, key=lambda interval: interval[0])
    return position > 0 and intervals[position - 1][1] >= number


def _normalise_name(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Scope:
    """What a scan may touch: targets minus excludes, as merged intervals plus hostnames."""

    ipv4: tuple[Interval, ...] = ()
    ipv6: tuple[Interval, ...] = ()
    hostnames: tuple[str, ...] = ()
    excluded_ipv4: tuple[Interval, ...] = ()
    excluded_ipv6: tuple[Interval, ...] = ()
    excluded_hostnames: frozenset[str] = frozenset()

    @property
    def size(self) -> int:
        """Addresses in scope, each counted once; a hostname counts as one."""
        spans = self.ipv4 + self.ipv6
        return sum(last - first + 1 for first, last in spans) + len(self.hostnames)

    def iter_addresses(self) -> Iterator[ScopeItem]:
        """IPv4 addresses ascending, then IPv6 ascending, then hostnames; lazily."""
        for first, last in self.ipv4:
            for number in range(first, last + 1):
                yield IPv4Address(number)
        for first, last in self.ipv6:
            for number in range(first, last + 1):
                yield IPv6Address(number)
        yield from self.hostnames

    def contains(self, item: ScopeItem) -> bool:
        """Whether an address or a hostname is in scope (a malformed string is not)."""
        return _matches(item, self.ipv4, self.ipv6, self.hostnames)

    def is_excluded(self, item: ScopeItem) -> bool:
        """Whether excludes forbid an address or name; the scanner checks resolved addresses."""
        return _matches(item, self.excluded_ipv4, self.excluded_ipv6, self.excluded_hostnames)


def _as_address(item: ScopeItem) -> IPAddress | None:
    if isinstance(item, IPv4Address | IPv6Address):
        return item
    return _address_or_none(item)


def _matches(
    item: ScopeItem,
    ipv4: Sequence[Interval],
    ipv6: Sequence[Interval],
    hostnames: Collection[str],
) -> bool:
    """Whether an address falls in the intervals of its version, or a name is among
    `hostnames` (a malformed string matches nothing)."""
    address = _as_address(item)
    if address is None:
        return isinstance(item, str) and _normalise_name(item) in hostnames
    return _covers(ipv4 if address.version == 4 else ipv6, int(address))


def build_scope(targets: TargetSet, excludes: TargetSet = EMPTY_TARGETS) -> Scope:
    """Subtract excludes from targets; an empty result is a `TargetError`."""
    if not targets:
        raise TargetError("no targets given", field="targets")
    excluded_names = frozenset(excludes.hostnames)
    scope = Scope(
        ipv4=_subtract(targets.intervals(4), excludes.intervals(4)),
        ipv6=_subtract(targets.intervals(6), excludes.intervals(6)),
        hostnames=tuple(
            name for name in dict.fromkeys(targets.hostnames) if name not in excluded_names
        ),
        excluded_ipv4=excludes.intervals(4),
        excluded_ipv6=excludes.intervals(6),
        excluded_hostnames=excluded_names,
    )
    if not scope.size:
        raise TargetError("nothing left to scan after excludes", field="excludes")
    return scope


def check_scope_cap(scope: Scope, cap: int) -> None:
    """Refuse a scope larger than the per-task cap (SPEC §7), saying how to proceed."""
    if scope.size > cap:
        raise TargetError(
            f"the targets cover {scope.size:,} addresses, more than the cap of {cap:,} per "
            "task; narrow the targets, add excludes, or ask an admin to raise the cap",
            field="targets",
        )


@dataclass(frozen=True, slots=True)
class OutsideScope:
    """A target entry with addresses outside an allowed scope, and the first of them (or
    the hostname itself, which the allowed scope does not name)."""

    target: Target
    first_outside: str


def first_outside(
    targets: TargetSet, excludes: TargetSet, allowed: TargetSet
) -> OutsideScope | None:
    """The first target (in input order) that reaches outside `allowed` once `excludes` are
    taken away, or None when every address and name to be scanned is allowed. A hostname is
    allowed only when `allowed` names it: where it resolves is not known yet."""
    allowed_names = frozenset(allowed.hostnames)
    excluded_names = frozenset(excludes.hostnames)
    for target in targets:
        if target.kind is TargetKind.HOSTNAME:
            if target.text not in allowed_names and target.text not in excluded_names:
                return OutsideScope(target, target.text)
            continue
        assert target.version is not None
        remaining = _subtract(((target.first, target.last),), excludes.intervals(target.version))
        outside = _subtract(remaining, allowed.intervals(target.version))
        if outside:
            make = IPv4Address if target.version == 4 else IPv6Address
            return OutsideScope(target, str(make(outside[0][0])))
    return None
