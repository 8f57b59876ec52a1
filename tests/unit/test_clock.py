"""The one clock: the machine's, a shifted one for benchmarks, and the fake tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from surveyor.core.clock import SYSTEM_CLOCK, Clock, FakeClock, OffsetClock, SystemClock

FIRST = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def test_a_fake_clock_stands_still_until_set_or_advanced() -> None:
    clock = FakeClock(FIRST)

    assert clock.now() == FIRST
    assert clock.advance(HOUR) == FIRST + HOUR
    clock.set(FIRST + DAY)
    assert clock.now() == FIRST + DAY


def test_a_fake_clock_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 3, 2, 3, 0))


def test_a_fake_clock_keeps_its_time_in_utc() -> None:
    east = datetime(2026, 3, 2, 5, 0, tzinfo=ZoneInfo("Europe/Athens"))

    assert FakeClock(east).now().tzinfo is UTC
    assert FakeClock(east).now() == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def test_a_fake_clocks_monotonic_time_moves_with_its_wall_time() -> None:
    clock = FakeClock(FIRST)
    began = clock.monotonic()

    clock.advance(90 * SECOND)

    assert clock.monotonic() - began == 90.0


def test_moving_a_fake_clock_wakes_its_sleepers_until_they_unsubscribe() -> None:
    clock = FakeClock(FIRST)
    woken: list[datetime] = []
    unsubscribe = clock.on_jump(lambda: woken.append(clock.now()))

    clock.advance(HOUR)
    clock.set(FIRST + DAY)
    unsubscribe()
    clock.advance(HOUR)

    assert woken == [FIRST + HOUR, FIRST + DAY]


def test_the_machines_clock_is_aware_utc_and_never_jumps() -> None:
    called: list[None] = []
    before = datetime.now(UTC)

    now = SYSTEM_CLOCK.now()
    SYSTEM_CLOCK.on_jump(lambda: called.append(None))()

    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)
    assert SYSTEM_CLOCK.monotonic() <= SystemClock().monotonic()
    assert called == []


def test_an_offset_clock_keeps_real_time_shifted() -> None:
    shifted = OffsetClock(DAY).now() - SystemClock().now()

    assert DAY - SECOND < shifted <= DAY


@pytest.mark.parametrize("clock", [SystemClock(), OffsetClock(HOUR), FakeClock(FIRST)])
def test_every_clock_is_a_clock(clock: Clock) -> None:
    assert isinstance(clock.now(), datetime)
    assert isinstance(clock.monotonic(), float)
    assert callable(clock.on_jump(lambda: None))
