"""Probe timeouts, kept in a wheel of 10 ms slots."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class TimeoutWheel(Generic[T]):
    """Probes filed by the 10 ms slot their timeout ends in: constant time to add one (a
    heap entry per probe would cost more than the probe's own bookkeeping), expired slot by
    slot. A timeout is rounded up to its slot's end, never down."""

    SLOTS_PER_SECOND = 100

    def __init__(self) -> None:
        self._slots: dict[int, list[T]] = {}
        self._order: list[int] = []

    def add(self, deadline: float, probe: T) -> None:
        slot = int(deadline * self.SLOTS_PER_SECOND) + 1
        probes = self._slots.get(slot)
        if probes is None:
            self._slots[slot] = [probe]
            heapq.heappush(self._order, slot)
        else:
            probes.append(probe)

    def next_deadline(self) -> float | None:
        return self._order[0] / self.SLOTS_PER_SECOND if self._order else None

    def due(self, now: float) -> bool:
        """Whether some timeout has passed."""
        return bool(self._order) and self._order[0] <= now * self.SLOTS_PER_SECOND

    def expired(self, now: float) -> Iterator[T]:
        """The probes whose timeout has passed (some may have been answered meanwhile)."""
        limit = now * self.SLOTS_PER_SECOND
        while self._order and self._order[0] <= limit:
            yield from self._slots.pop(heapq.heappop(self._order))
