"""Adaptive probe timeouts: a host's round-trip time estimated as TCP does (RFC 6298)."""

from __future__ import annotations

from dataclasses import dataclass

#: A retry waits at most this many times the estimate: growth covers a path slower than
#: estimated, while a lossy path (loss is random, not congestion) is served by more
#: attempts, not by ever longer waits.
RETRY_GROWTH_LIMIT = 4


@dataclass(frozen=True, slots=True)
class TimeoutBounds:
    """The timeout before any answer, and the floor and ceiling of an estimated one (s)."""

    initial: float = 1.0
    minimum: float = 0.1
    maximum: float = 3.0


class RttEstimator:
    """Smoothed RTT (SRTT) and its variation (RTTVAR); timeout = SRTT + 4 * RTTVAR, bounded."""

    __slots__ = ("_answered", "_bounds", "_estimate", "rttvar", "srtt", "timeout")

    def __init__(self, bounds: TimeoutBounds, seed: RttEstimator | None = None) -> None:
        self._bounds = bounds
        self.srtt: float | None = None
        self.rttvar: float = 0.0
        #: how long to wait for an answer to a first attempt
        self.timeout: float = bounds.initial
        #: SRTT + 4 * RTTVAR, before the bounds (the initial timeout before any answer)
        self._estimate = bounds.initial
        #: an answer of this host's own was observed (not only the network's estimate)
        self._answered = False
        if seed is not None:
            self.adopt(seed)

    def adopt(self, seed: RttEstimator) -> None:
        """Start from what `seed` (the network's estimate) has seen."""
        self.srtt, self.rttvar, self.timeout = seed.srtt, seed.rttvar, seed.timeout
        self._estimate = seed._estimate

    def observe(self, sample: float) -> None:
        """Fold in the RTT of an answer that can only belong to the attempt it came on."""
        sample = max(0.0, sample)
        self._answered = True
        if self.srtt is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample
        self._estimate = self.srtt + 4 * self.rttvar
        self.timeout = min(self._bounds.maximum, max(self._bounds.minimum, self._estimate))

    def retry_timeout(self, attempt: int, *, last: bool = False) -> float:
        """The timeout of attempt `attempt` (0 = first): the estimate doubled per retry, up
        to `RETRY_GROWTH_LIMIT` times, within the bounds. The floor itself does not grow: it
        stands for the scanning machine's own delays, which a retry does not lengthen, and
        a fast path keeps its quick retries.

        A host that has not answered yet waits on an estimate borrowed from the others,
        which says nothing of its own path: its retries back off from the floor towards
        the initial timeout (doubling, as TCP backs off an unanswered SYN), so a host far
        slower than its network is still heard on a later attempt. Its `last` attempt waits
        the whole initial timeout: when the answer to the scanner's first ARP request (or
        neighbour solicitation) is lost, the kernel asks again only a second later
        (`retrans_time`), holding the probes' SYNs meanwhile; quicker attempts alone would
        all be over by then and call a live host down."""
        doubled = 1 << min(attempt, 8)
        timeout = max(self.timeout, self._estimate * min(doubled, RETRY_GROWTH_LIMIT))
        if not self._answered:
            backoff = min(self._bounds.initial, self._bounds.minimum * doubled)
            timeout = max(timeout, self._bounds.initial if last else backoff)
        return min(self._bounds.maximum, timeout)
