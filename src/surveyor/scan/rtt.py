"""Adaptive probe timeouts: a host's round-trip time estimated as TCP does (RFC 6298)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimeoutBounds:
    """The timeout before any answer, and the floor and ceiling of an estimated one (s)."""

    initial: float = 1.0
    minimum: float = 0.25
    maximum: float = 3.0


class RttEstimator:
    """Smoothed RTT (SRTT) and its variation (RTTVAR); timeout = SRTT + 4 * RTTVAR, bounded."""

    __slots__ = ("_bounds", "rttvar", "srtt", "timeout")

    def __init__(self, bounds: TimeoutBounds, seed: RttEstimator | None = None) -> None:
        self._bounds = bounds
        self.srtt: float | None = seed.srtt if seed is not None else None
        self.rttvar: float = seed.rttvar if seed is not None else 0.0
        #: how long to wait for an answer to a first attempt
        self.timeout: float = seed.timeout if seed is not None else bounds.initial

    def observe(self, sample: float) -> None:
        """Fold in the RTT of an answered first attempt (retried probes are ambiguous)."""
        sample = max(0.0, sample)
        if self.srtt is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample
        estimate = self.srtt + 4 * self.rttvar
        self.timeout = min(self._bounds.maximum, max(self._bounds.minimum, estimate))

    def retry_timeout(self, attempt: int) -> float:
        """The timeout of attempt `attempt` (0 = first): doubled per retry, up to the ceiling."""
        return min(self._bounds.maximum, self.timeout * (1 << attempt))
