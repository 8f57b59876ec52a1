"""The userspace wire delays and drops like `netem delay 50ms loss 5%` (no namespaces needed)."""

from __future__ import annotations

import random

import pytest

from surveyor.testing.labwire import DelayLine


def test_frames_leave_after_the_delay_in_the_order_they_came() -> None:
    line = DelayLine(delay_seconds=0.05, loss=0.0, rng=random.Random(1))
    for index in range(3):
        line.push(bytes([index]), now=10.0 + index * 0.01)
    assert line.due(now=10.049) == []
    assert line.wait_seconds(now=10.049) == pytest.approx(0.001, abs=1e-6)
    assert line.due(now=10.07) == [b"\x00", b"\x01", b"\x02"]
    assert line.wait_seconds(now=10.07) is None


def test_about_the_configured_share_of_frames_is_lost() -> None:
    line = DelayLine(delay_seconds=0.0, loss=0.05, rng=random.Random(7))
    delivered = 0
    for second in range(20):
        for _ in range(1000):
            line.push(b"frame", now=float(second))
        delivered += len(line.due(now=second + 0.5))
    assert 0.04 < 1 - delivered / 20_000 < 0.06
