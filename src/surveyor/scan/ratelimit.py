"""Token buckets: the global probes/s limit and the per-host rate (SPEC §7).

Time is passed in, never read, so the arithmetic is testable without a clock.
"""

from __future__ import annotations

#: How much of one second's worth of tokens a bucket may hold: small bursts, a steady rate.
BURST_SECONDS = 0.02


def burst_for(rate: float, seconds: float = BURST_SECONDS) -> float:
    """The bucket size for a rate: `seconds` worth of tokens, and at least one token."""
    return max(1.0, rate * seconds)


class TokenBucket:
    """At most `burst + rate * t` events over any `t` seconds; it starts full."""

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and room for one token")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def take(self, now: float) -> bool:
        """Take one token if there is one."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def take_up_to(self, wanted: int, now: float) -> int:
        """Take as many whole tokens as there are, up to `wanted`; how many were taken."""
        self._refill(now)
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def delay(self, now: float) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)
