"""The organization's resources as the rest of the code sees them: sites, hosted zones and
explorers. Frozen rows, built by the store from its tables (`from_row`); the rules read
their attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from surveyor.core.rows import ColumnRow, Row, from_columns
from surveyor.core.targets import TargetError, build_scope, parse_targets


@dataclass(frozen=True, slots=True)
class Site(ColumnRow):
    """A part of the network with its own scan scope and its own assets."""

    id: int
    organization_id: int
    name: str
    description: str
    scope: str
    excludes: str
    #: Where operators may scan; empty: the site's scope.
    allowed_scope: str
    created_at: datetime
    updated_at: datetime

    @property
    def scope_size(self) -> int:
        """How many addresses its scope holds after its excludes (0 if it does not parse)."""
        try:
            return build_scope(parse_targets(self.scope), parse_targets(self.excludes)).size
        except TargetError:
            return 0


@dataclass(frozen=True, slots=True)
class HostedZone(ColumnRow):
    """Explorers that share a limit on how many scans they run at once."""

    id: int
    organization_id: int
    name: str
    description: str
    max_concurrent: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Explorer(ColumnRow):
    """An enrolled agent that scans, with what it last said about its host."""

    id: int
    organization_id: int
    name: str
    #: The site it scans for; None: any site.
    site_id: int | None
    hosted_zone_id: int | None
    version: str
    hostname: str
    os: str
    addresses: tuple[str, ...]
    last_checkin_at: datetime | None
    #: When a held poll of it was dropped and it has not checked in since.
    poll_dropped_at: datetime | None
    created_at: datetime
    updated_at: datetime
    enrollment_token_id: int | None
    #: The public half of its secret, and the digest of the secret (never the secret).
    secret_lookup: str | None = field(repr=False)
    secret_hash: str | None = field(repr=False)

    @classmethod
    def from_row(cls, row: Row) -> Explorer:
        return from_columns(cls, row, addresses=tuple(row["addresses"] or ()))
