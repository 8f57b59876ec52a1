"""How a scan runs, beyond its params: timeouts, retries, threads and worker processes.

`ScanParams` (core) says what to scan and how hard; `ScanSettings` holds the engine's own
tunables, with defaults a user never needs to change. Tests shorten the timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from surveyor.scan.rtt import TimeoutBounds

#: TCP ports probed to find out whether a host is up before its port scan (`host_ping`).
DISCOVERY_PORTS = (80, 443, 22, 445)


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """Engine tunables; every time is in seconds."""

    #: bounds of the adaptive connect timeout (see `rtt.RttEstimator`)
    timeouts: TimeoutBounds = field(default_factory=TimeoutBounds)
    #: extra attempts for a probe that got no answer, before the port counts as filtered
    retries: int = 2
    #: the same, for a host that has been seen losing probes (an answer came only on a retry)
    lossy_retries: int = 6
    discovery_ports: tuple[int, ...] = DISCOVERY_PORTS
    #: how long a server-first protocol may take to greet us, on a port known for one
    banner_timeout: float = 2.0
    #: how long to listen for a greeting on other ports before asking in HTTP (on the same
    #: connection: a late greeting still answers the request, and names the service)
    greeting_timeout: float = 0.5
    #: connect, TLS handshake and HTTP exchange of one service probe, each
    probe_timeout: float = 3.0
    #: one reverse lookup at most (its query is sent again, sooner, if unanswered)
    rdns_timeout: float = 2.0
    #: the most the scan waits for names once everything else is done
    rdns_budget: float = 10.0
    #: reverse lookups asked at once
    rdns_concurrency: int = 64
    #: name servers for reverse lookups, (address, port); empty: /etc/resolv.conf's
    dns_servers: tuple[tuple[str, int], ...] = ()
    #: threads running service probes (each holds one connection at a time)
    probe_threads: int = 32
    #: threads for name lookups through the system's resolver (hostname targets; reverse
    #: lookups where no name server is configured)
    rdns_threads: int = 4
    #: connect-scan workers; 0 picks one thread, or one process per core for big, fast scans
    workers: int = 0
    #: read the initial TTL, window and options of the SYN-ACKs the connects get, when the
    #: process may open a raw socket (`scan/stack.py`); weak OS evidence
    stack_hints: bool = True
    #: the least time between two progress reports (the last one is always sent)
    progress_interval: float = 0.1
