"""What a connect worker is given and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from surveyor.scan.rtt import TimeoutBounds


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """What a worker scans every host for, and its share of the limits."""

    ports: tuple[int, ...]
    #: ports probed first to find out whether a host is up; empty: scan every host's ports
    discovery_ports: tuple[int, ...] = ()
    icmp: bool = False
    max_sockets: int = 512
    rate: float = 1000.0
    host_rate: float = 100.0
    #: extra attempts for an unanswered probe; `lossy_retries` once a host is seen dropping
    retries: int = 2
    lossy_retries: int = 6
    timeouts: TimeoutBounds = field(default_factory=TimeoutBounds)
    #: hosts worked on at once, at most
    max_active_hosts: int = 4096
    #: hosts taken on at once, at least (while the scope has more), even when those already
    #: taken have probes to send: their discovery and timeouts then overlap
    host_group: int = 32
    #: report each open port as soon as it is found (so its service probes can start
    #: while the host's other ports are still scanned), not only with the host's scan
    report_open_ports: bool = False


class HostJob(NamedTuple):
    """One address to scan; `key` ties the result to the job."""

    key: int
    address: str


class OpenPort(NamedTuple):
    """A port found open on the host of job `key`, reported before the host is done."""

    key: int
    address: str
    port: int


class HostScan(NamedTuple):
    """The outcome for one host: up or not, its open ports, and what the others did.
    (A tuple: tens of thousands of them cross from worker processes.)"""

    key: int
    address: str
    up: bool
    open_ports: tuple[int, ...] = ()
    closed_ports: int = 0
    filtered_ports: int = 0
    #: smoothed round-trip time in seconds, when any probe was answered
    rtt: float | None = None


class HostSource(Protocol):
    """Where a worker takes its hosts from."""

    def take(self, wait: float) -> HostJob | None:
        """The next host, waiting at most `wait` seconds; None when there is none yet."""
        ...

    @property
    def exhausted(self) -> bool:
        """No host will ever come again."""
        ...


class StopFlag(Protocol):
    def is_set(self) -> bool: ...
