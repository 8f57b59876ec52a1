"""The inventory as the rest of the code reads it: assets and their services. Frozen rows,
built by the store (`from_row`); the rules and the pages read their attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from surveyor.core.fingerprint import HostDetails
from surveyor.core.rows import ColumnRow, Row, from_columns


def split_lines(text: str) -> tuple[str, ...]:
    """Values stored one per line (a certificate's names), without empty lines."""
    return tuple(line for line in text.split("\n") if line) if text else ()


@dataclass(frozen=True, slots=True)
class Asset(ColumnRow):
    """One host of a site, as the inventory knows it (docs/inventory.md)."""

    id: int
    organization_id: int
    site_id: int
    #: The address it is listed by (lowest IPv4, else lowest IPv6) and its sortable key.
    address: str
    address_key: str
    addresses: tuple[str, ...]
    mac: str | None
    #: The name it is listed by (the first in sort order), and all its names.
    hostname: str | None
    hostnames: tuple[str, ...]
    os: str
    #: False once a scan of its scope went unanswered.
    alive: bool
    service_count: int
    state_hash: str
    outlier: int | None
    #: The outlier score's strongest reasons, in words (core/outliers.py).
    outlier_reasons: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    changed_at: datetime
    last_task_id: int | None
    last_run_id: int | None
    #: What some sources tell besides (SPEC §7): see `core.fingerprint.HostDetails`.
    mac_vendor: str
    os_accuracy: int | None
    os_version: str
    device_type: str
    description: str
    tags: tuple[str, ...]
    attributes: dict[str, str]
    seen_by: str
    #: As last reported (never compared): seconds since boot, and hops away.
    uptime_seconds: int | None
    distance: int | None
    #: When a Retention run found it unseen for its organization's period (core/retention.py).
    stale_since: datetime | None

    @property
    def stale(self) -> bool:
        """Marked stale and not seen since: default asset views leave it out."""
        return self.stale_since is not None and self.last_seen < self.stale_since

    @classmethod
    def from_row(cls, row: Row) -> Asset:
        return from_columns(
            cls,
            row,
            addresses=tuple(row["addresses"] or ()),
            hostnames=tuple(row["hostnames"] or ()),
            tags=tuple(row["tags"] or ()),
            attributes=dict(row["attributes"] or {}),
            outlier_reasons=tuple(row["outlier_reasons"] or ()),
        )


def details_from_row(row: Row) -> HostDetails:
    """The descriptive fields of an asset row, as matching and merging compare them."""
    return from_columns(
        HostDetails,
        row,
        tags=tuple(row["tags"] or ()),
        attributes=tuple(sorted((row["attributes"] or {}).items())),
    )


def details_columns(details: HostDetails) -> dict[str, object]:
    """The descriptive fields as the columns of an asset row."""
    return {
        "mac_vendor": details.mac_vendor,
        "os_accuracy": details.os_accuracy,
        "os_version": details.os_version,
        "device_type": details.device_type,
        "description": details.description,
        "tags": list(details.tags),
        "attributes": dict(details.attributes),
        "seen_by": details.seen_by,
    }


@dataclass(frozen=True, slots=True)
class AssetSource(ColumnRow):
    """A source that saw an asset (`scan`, `ldap`, `import:nmap`, ...): first and last."""

    source: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class AssetService(ColumnRow):
    """One open port of an asset, with what the probes learned about it."""

    id: int
    asset_id: int
    proto: str
    port: int
    state: str
    name: str
    banner: str
    product: str
    http_status: int | None
    http_server: str
    http_title: str
    tls_subject: str
    tls_issuer: str
    tls_sans: tuple[str, ...]
    tls_not_before: str
    tls_not_after: str
    tls_sha256: str
    version: str
    extrainfo: str
    tunnel: str
    cpe: tuple[str, ...]
    first_seen: datetime
    changed_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> AssetService:
        return from_columns(
            cls, row, tls_sans=split_lines(row["tls_sans"]), cpe=split_lines(row["cpe"])
        )

    @property
    def label(self) -> str:
        """`tcp/22 ssh`: how lists name it."""
        label = f"{self.proto}/{self.port}"
        return f"{label} {self.name}" if self.name else label


@dataclass(frozen=True, slots=True)
class CandidateAsset(ColumnRow):
    """What matching and merging read of every asset an answer may belong to; its address
    and name lists and its services are read only when an answer is not plainly identical."""

    id: int
    address: str
    mac: str | None
    hostname: str | None
    os: str
    alive: bool
    state_hash: str
    first_seen: datetime
    last_seen: datetime
    last_run_id: int | None


@dataclass(frozen=True, slots=True)
class OfflineAsset:
    """An asset just marked offline, with what its change report row names."""

    id: int
    address: str
    hostname: str | None
    last_seen: datetime
