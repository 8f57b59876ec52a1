"""What the console and its explorers share (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How long a poll for work is held open when nothing is launched, in seconds: the explorer
#: asks for this long and the console holds it at most this long (`SURVEYOR_LONG_POLL`).
LONG_POLL_SECONDS = 25

#: How long the console keeps an idle keep-alive connection before it closes it, in seconds.
KEEP_ALIVE_SECONDS = 5
#: How long an explorer reuses an idle connection: well inside the console's keep-alive, so
#: that it never sends a request on a connection the console is closing at that moment (the
#: request would fail with a dropped connection). A load balancer in between must keep idle
#: connections at least as long.
CLIENT_KEEP_ALIVE_SECONDS = 2.0


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
