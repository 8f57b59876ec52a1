"""What merging one answer does to an asset, and how a task's changes are counted.

Pure rules, no I/O (docs/inventory.md says the same in prose):

- **Merging** (`merge_state`): the addresses are the ones the host answered on. A value the
  scan did not report never erases a known one (no names this time keeps the names, no MAC
  keeps the MAC); a reported value replaces it. A known service on a port the scan probed but
  that did not answer is gone; services on ports it did not probe stay.
- **Counting** (`compare`): an answer is `new` (no asset matched), `online` (its asset was
  offline), `changed` (any of addresses, MAC, names, operating system or services differ) or
  `unchanged`. Known assets in the scanned scope that did not answer are `offline`; bogus
  answers are `ignored`. `total` counts the answers: new + changed + online + unchanged +
  ignored.

Merging is a projection: merging the same answer twice gives what merging it once gave, so
processing the same data twice leaves the inventory as it was and counts it all `unchanged`.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from surveyor.core.fingerprint import (
    NO_DETAILS,
    SERVICE_DETAILS,
    HostDetails,
    KnownAsset,
    Observation,
    Service,
    sort_addresses,
)


class ChangeKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    OFFLINE = "offline"
    ONLINE = "online"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"


#: The keys of a task's `change_summary`, in the order they are shown (SPEC §4).
SUMMARY_KEYS: Final = ("new", "changed", "offline", "online", "unchanged", "ignored", "total")
#: The kinds an answer can have; `offline` is for assets that did not answer.
ANSWER_KINDS: Final = frozenset(
    {
        ChangeKind.NEW,
        ChangeKind.CHANGED,
        ChangeKind.ONLINE,
        ChangeKind.UNCHANGED,
        ChangeKind.IGNORED,
    }
)
#: Kinds the per-asset change report lists (unchanged assets are only counted).
REPORTED_KINDS: Final = frozenset(
    {ChangeKind.NEW, ChangeKind.CHANGED, ChangeKind.ONLINE, ChangeKind.OFFLINE}
)

ServiceKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class AssetState:
    """The properties of an asset that a scan can change."""

    addresses: tuple[str, ...]
    mac: str | None = None
    hostnames: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    os: str = ""
    details: HostDetails = NO_DETAILS

    @classmethod
    def of(cls, asset: KnownAsset) -> AssetState:
        return cls(
            asset.addresses, asset.mac, asset.hostnames, asset.services, asset.os, asset.details
        )

    @classmethod
    def of_observation(cls, seen: Observation) -> AssetState:
        """What a new asset made from this answer would be."""
        details = seen.details if seen.details is not None else NO_DETAILS
        return cls(seen.addresses, seen.mac, seen.hostnames, seen.services, seen.os, details)


@dataclass(frozen=True, slots=True)
class Change:
    """What one answer (or one silent asset) did, with the details the change report shows."""

    kind: ChangeKind
    details: dict[str, Any] = field(default_factory=dict)


def state_digest(state: AssetState) -> str:
    """A digest of everything `compare` looks at: equal digests mean equal states.

    The inventory stores it, so an answer identical to its asset is recognized as unchanged
    without reading the asset's services. marshal format 0 encodes values alone (no object
    sharing, no interning marks); should a new Python encode differently, stored digests
    simply stop matching once, and the full comparison rewrites them. An asset without
    details is digested without them.
    """
    values: tuple[Any, ...] = (
        state.addresses,
        state.mac,
        state.hostnames,
        state.os,
        tuple(map(tuple, state.services)),
    )
    if state.details != NO_DETAILS:
        values += (_details_tuple(state.details),)
    encoded = marshal.dumps(values, 0)
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _details_tuple(details: HostDetails) -> tuple[Any, ...]:
    return tuple(getattr(details, name) for name in DETAIL_FIELDS)


#: The descriptive fields of a host, in the order the change report lists them.
DETAIL_FIELDS: Final = tuple(HostDetails.__dataclass_fields__)
#: An asset keeps at most this many attributes, however many sources add theirs.
MAX_ATTRIBUTES: Final = 50


def merge_details(known: HostDetails, seen: HostDetails | None, *, os_changed: bool) -> HostDetails:
    """The details after an answer: a reported value replaces the known one, an unreported
    one keeps it. The OS accuracy and version belong to the OS: when an answer names another
    OS, they are the answer's (or none). Attributes merge name by name, the answer's first."""
    if seen is None:
        seen = NO_DETAILS
        if not os_changed or (known.os_accuracy is None and not known.os_version):
            return known
    attributes = dict(seen.attributes)
    for name, value in known.attributes:
        if len(attributes) >= MAX_ATTRIBUTES:
            break
        attributes.setdefault(name, value)
    accuracy, os_version = seen.os_accuracy, seen.os_version
    if not os_changed:
        accuracy = known.os_accuracy if accuracy is None else accuracy
        os_version = os_version or known.os_version
    return HostDetails(
        mac_vendor=seen.mac_vendor or known.mac_vendor,
        os_accuracy=accuracy,
        os_version=os_version,
        device_type=seen.device_type or known.device_type,
        description=seen.description or known.description,
        tags=seen.tags or known.tags,
        attributes=tuple(sorted(attributes.items())),
        seen_by=seen.seen_by or known.seen_by,
    )


def merge_service(known: Service | None, seen: Service) -> Service:
    """A service as last seen; details the scan did not report keep their known value."""
    if known is None or known == seen:
        return seen
    updates = {}
    for name in SERVICE_DETAILS:
        value = getattr(seen, name)
        if value in (None, "", ()):
            updates[name] = getattr(known, name)
    return seen._replace(**updates) if updates else seen


def merge_services(
    known: Iterable[Service],
    seen: Iterable[Service],
    probed: frozenset[ServiceKey] | None,
) -> tuple[Service, ...]:
    """The services after a scan: what answered, plus known ones on ports it did not probe.

    `probed` is None when the task data does not say which ports were probed: the answer is
    then taken as the complete list.
    """
    known_by_key = {service.key: service for service in known}
    merged = {
        service.key: merge_service(known_by_key.get(service.key), service) for service in seen
    }
    if probed is not None:
        for key, service in known_by_key.items():
            if key not in merged and key not in probed:
                merged[key] = service
    return tuple(merged[key] for key in sorted(merged))


def merge_state(
    known: KnownAsset | None, seen: Observation, probed: frozenset[ServiceKey] | None
) -> AssetState:
    """The asset after merging `seen` into `known` (None: a new asset)."""
    if known is None:
        return AssetState.of_observation(seen)
    return AssetState(
        # A host known by its name alone keeps the addresses it was known at.
        addresses=seen.addresses or known.addresses,
        mac=seen.mac if seen.mac is not None else known.mac,
        hostnames=seen.hostnames or known.hostnames,
        services=merge_services(
            known.services, seen.services, probed if seen.lists_services else frozenset()
        ),
        os=seen.os or known.os,
        details=merge_details(
            known.details, seen.details, os_changed=bool(seen.os) and seen.os != known.os
        ),
    )


def compare(known: KnownAsset | None, after: AssetState) -> Change:
    """How an answer changed its asset: new, online, changed or unchanged, with the details."""
    if known is None:
        return Change(ChangeKind.NEW, describe_new(after))
    before = AssetState.of(known)
    details = {} if before == after else describe_difference(before, after)
    if not known.alive:
        return Change(ChangeKind.ONLINE, details)
    return Change(ChangeKind.CHANGED if details else ChangeKind.UNCHANGED, details)


def describe_new(state: AssetState) -> dict[str, Any]:
    details: dict[str, Any] = {"addresses": list(state.addresses)}
    if state.mac:
        details["mac"] = state.mac
    if state.hostnames:
        details["hostnames"] = list(state.hostnames)
    if state.services:
        details["services"] = [service_label(s) for s in state.services]
    for name in DETAIL_FIELDS:
        value = getattr(state.details, name)
        if value not in (None, "", ()):
            details[name] = _plain(value)
    return details


def service_label(service: Service) -> str:
    """`tcp/22 ssh`: how the change report names a service."""
    label = f"{service.proto}/{service.port}"
    return f"{label} {service.name}" if service.name else label


def _set_difference(before: Iterable[str], after: Iterable[str]) -> dict[str, list[str]] | None:
    old, new = set(before), set(after)
    if old == new:
        return None
    return {"added": sorted(new - old), "removed": sorted(old - new)}


def describe_difference(before: AssetState, after: AssetState) -> dict[str, Any]:
    """Every property that differs, as the change report shows it; empty when none does."""
    details: dict[str, Any] = {}
    addresses = _set_difference(before.addresses, after.addresses)
    if addresses is not None:
        details["addresses"] = {
            "added": list(sort_addresses(addresses["added"])),
            "removed": list(sort_addresses(addresses["removed"])),
        }
    hostnames = _set_difference(before.hostnames, after.hostnames)
    if hostnames is not None:
        details["hostnames"] = hostnames
    for name in ("mac", "os"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            details[name] = {"before": old, "after": new}
    if before.details != after.details:
        for name in DETAIL_FIELDS:
            old, new = getattr(before.details, name), getattr(after.details, name)
            if old != new:
                details[name] = {"before": _plain(old), "after": _plain(new)}
    services = describe_services(before.services, after.services)
    if services:
        details["services"] = services
    return details


def describe_services(before: Iterable[Service], after: Iterable[Service]) -> dict[str, Any]:
    old = {s.key: s for s in before}
    new = {s.key: s for s in after}
    added = [service_label(new[key]) for key in sorted(new.keys() - old.keys())]
    removed = [service_label(old[key]) for key in sorted(old.keys() - new.keys())]
    changed = []
    for key in sorted(old.keys() & new.keys()):
        if old[key] == new[key]:
            continue
        differences = service_differences(old[key], new[key])
        if differences:
            changed.append({"service": service_label(new[key]), "fields": differences})
    result: dict[str, Any] = {}
    if added:
        result["added"] = added
    if removed:
        result["removed"] = removed
    if changed:
        result["changed"] = changed
    return result


def service_differences(before: Service, after: Service) -> dict[str, dict[str, Any]]:
    differences: dict[str, dict[str, Any]] = {}
    for name, old, new in zip(Service._fields, before, after, strict=True):
        if old != new:
            differences[name] = {"before": _plain(old), "after": _plain(new)}
    return differences


def _plain(value: object) -> object:
    """A value as JSON shows it (tuples as lists; attributes as an object)."""
    if isinstance(value, tuple):
        if value and isinstance(value[0], tuple):
            return dict(value)
        return list(value)
    return value


def summarize(counts: Mapping[str, int]) -> dict[str, int]:
    """The `change_summary` of a task from its counts per kind; `total` counts the answers."""
    summary = {key: int(counts.get(key, 0)) for key in SUMMARY_KEYS if key != "total"}
    summary["total"] = sum(summary[kind.value] for kind in ANSWER_KINDS)
    return summary
