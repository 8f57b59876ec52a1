"""What the console and its explorers share (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How long a poll for work is held open when nothing is launched, in seconds: the explorer
#: asks for this long and the console holds it at most this long (`SURVEYOR_LONG_POLL`).
LONG_POLL_SECONDS = 25


@dataclass(frozen=True)
class HostInfo:
    """What an explorer says about the machine it runs on (with its enrollment and every
    check-in); the console keeps it on the explorer's row."""

    version: str
    hostname: str
    os: str
    addresses: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "hostname": self.hostname,
            "os": self.os,
            "addresses": list(self.addresses),
        }
