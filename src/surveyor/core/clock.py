"""The one sense of time: every "now" of the console, the scheduler, processing and scans.

The console state owns one clock (`ConsoleState.clock`, the machine's by default) and hands
its time to everything it runs; tests give it a `FakeClock` and move time by hand. A clock
has two faces: `now()`, the wall time that is stored and compared with stored times, and
`monotonic()`, seconds for measuring durations (a scan's probe timing).

Loops that sleep until a moment (the scheduler, the explorer supervisor) also ask the clock
to wake them when time jumps (`on_jump`): the real clocks never jump, a `FakeClock` does
whenever a test sets or advances it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: Stops a callback given to `Clock.on_jump` from being called.
Unsubscribe = Callable[[], None]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back: for durations."""
        ...

    def on_jump(self, callback: Callable[[], None]) -> Unsubscribe:
        """Call `callback` (from the thread that moved the clock) whenever the time is set
        or advanced by hand, so that a sleeper computes its sleep again."""
        ...


def _never(_callback: Callable[[], None]) -> Unsubscribe:
    return lambda: None


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def on_jump(self, callback: Callable[[], None]) -> Unsubscribe:
        return _never(callback)


#: The machine's clock, for what runs outside a console (the CLI, scans, separate workers).
SYSTEM_CLOCK = SystemClock()


class OffsetClock:
    """The machine's clock shifted by a fixed offset: time moves at its real pace, elsewhere.

    Benchmarks use it to reach a chosen instant (a whole minute) without waiting for it.
    """

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def on_jump(self, callback: Callable[[], None]) -> Unsubscribe:
        return _never(callback)


class FakeClock:
    """A clock that stands still until a test sets or advances it; every move wakes the
    callbacks given to `on_jump`. Its monotonic time moves with its wall time."""

    def __init__(self, start: datetime) -> None:
        self._start = _aware(start)
        self._now = self._start
        self._lock = threading.Lock()
        self._listeners: dict[int, Callable[[], None]] = {}
        self._next_listener = 0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - self._start).total_seconds()

    def set(self, moment: datetime) -> datetime:
        """Move to `moment` (back in time too, to test a clock that was wrong)."""
        with self._lock:
            self._now = _aware(moment)
            now = self._now
        self._wake()
        return now

    def advance(self, by: timedelta) -> datetime:
        with self._lock:
            self._now += by
            now = self._now
        self._wake()
        return now

    def on_jump(self, callback: Callable[[], None]) -> Unsubscribe:
        with self._lock:
            key = self._next_listener
            self._next_listener += 1
            self._listeners[key] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return unsubscribe

    def _wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for callback in listeners:
            callback()


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the clock takes aware datetimes")
    return moment.astimezone(UTC)
