"""A secret as it is stored (credentials' secret fields, a notification rule's secret):
sealed with the console's key (`security/secretbox.py`), and when it was set. Its column
holds `{"sealed": ..., "set_at": RFC 3339}`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One secret as stored: sealed, and when it was set."""

    sealed: str = field(repr=False)
    set_at: datetime

    @classmethod
    def from_column(cls, stored: Mapping[str, str]) -> StoredSecret:
        return cls(stored["sealed"], datetime.fromisoformat(stored["set_at"]))

    def to_column(self) -> dict[str, str]:
        return {"sealed": self.sealed, "set_at": self.set_at.isoformat()}
