"""Token buckets of the scanner: the global probes/s and the per-host rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.ratelimit import TokenBucket, burst_for


def test_a_bucket_starts_full_and_then_allows_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1)
    assert not bucket.take(0.1)


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=5, now=0.0)
    assert bucket.take_up_to(100, now=60.0) == 5
    assert bucket.take_up_to(100, now=60.0) == 0
    assert bucket.take_up_to(3, now=60.05) == 3


def test_the_burst_is_a_fiftieth_of_a_second_and_at_least_one_token() -> None:
    assert burst_for(1000) == 20
    assert burst_for(10) == 1
    assert burst_for(100, seconds=0.1) == 10


def test_a_bucket_needs_a_rate_and_room_for_a_token() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=0, burst=1, now=0)


@given(
    rate=st.floats(min_value=0.5, max_value=1e6),
    burst=st.floats(min_value=1, max_value=1000),
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.5), st.integers(0, 5000)), max_size=50
    ),
)
def test_no_interval_ever_gets_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: float, steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, taken = 0.0, 0
    for pause, wanted in steps:
        now += pause
        taken += bucket.take_up_to(wanted, now)
        assert taken <= burst + rate * now + 1e-6
