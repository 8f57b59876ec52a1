"""Scan progress: hosts done out of the hosts in scope, reported at a bounded rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from surveyor.core.clock import Clock

#: Until every host is done, progress estimated from probes stays below this.
PARTIAL_CAP = 0.99


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Where a scan stands. `hosts_total` is the scope after excludes, so `progress` reaches
    exactly 1.0 when every host in it is done (answered, described, or found down).

    Hosts are scanned many at a time, so hosts done alone can sit at 0 for most of a small
    scan (and for all of a one-host scan of many ports). With `probes_planned` (every host's
    probes without retries), progress is the larger of the hosts done and the probes sent
    out of that plan, the latter kept below `PARTIAL_CAP` until the last host is done: both
    only grow, so progress never goes back."""

    hosts_done: int
    hosts_total: int
    probes_sent: int
    open_ports: int
    hosts_up: int = 0
    probes_planned: int = 0

    @property
    def progress(self) -> float:
        if self.hosts_total <= 0:
            return 1.0
        hosts = self.hosts_done / self.hosts_total
        if self.probes_planned <= 0 or self.hosts_done >= self.hosts_total:
            return hosts
        return max(hosts, min(self.probes_sent / self.probes_planned, PARTIAL_CAP))


class ProgressReporter:
    """Calls `callback` on change, at most once per `interval`, and always for the last word."""

    def __init__(
        self, callback: Callable[[ScanProgress], None] | None, interval: float, clock: Clock
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._clock = clock
        self._last_sent: ScanProgress | None = None
        self._sent_at = float("-inf")

    def update(self, progress: ScanProgress, *, final: bool = False) -> None:
        if self._callback is None or progress == self._last_sent:
            return
        now = self._clock.monotonic()
        if final or now - self._sent_at >= self._interval:
            self._last_sent, self._sent_at = progress, now
            self._callback(progress)
