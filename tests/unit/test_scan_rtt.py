"""Adaptive connect timeouts: round-trip time estimated as TCP does (RFC 6298)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.rtt import RttEstimator, TimeoutBounds

BOUNDS = TimeoutBounds(initial=1.0, minimum=0.25, maximum=3.0)


def test_before_any_answer_the_timeout_is_the_initial_one() -> None:
    estimator = RttEstimator(BOUNDS)
    assert estimator.srtt is None
    assert estimator.timeout == 1.0


def test_a_steady_round_trip_brings_the_timeout_down_to_the_floor() -> None:
    estimator = RttEstimator(BOUNDS)
    for _ in range(50):
        estimator.observe(0.001)
    assert estimator.srtt == pytest.approx(0.001)
    assert estimator.timeout == 0.25


def test_a_slow_jittery_path_gets_a_timeout_above_its_round_trip() -> None:
    estimator = RttEstimator(BOUNDS)
    for sample in [0.4, 0.6, 0.5, 0.7, 0.4, 0.6] * 5:
        estimator.observe(sample)
    assert estimator.srtt is not None
    assert estimator.timeout > 0.7
    assert estimator.timeout <= 3.0


def test_retries_double_the_timeout_up_to_the_ceiling() -> None:
    estimator = RttEstimator(BOUNDS)
    assert [estimator.retry_timeout(n) for n in range(4)] == [1.0, 2.0, 3.0, 3.0]


def test_retries_on_a_fast_path_stay_at_the_floor() -> None:
    # the floor stands for the scanning machine's own delays: a retry does not lengthen it
    estimator = RttEstimator(BOUNDS)
    for _ in range(20):
        estimator.observe(0.001)
    assert [estimator.retry_timeout(n) for n in range(4)] == [0.25] * 4


def test_retries_on_a_slow_path_grow_at_most_four_times() -> None:
    wide = TimeoutBounds(initial=1.0, minimum=0.1, maximum=60.0)
    estimator = RttEstimator(wide)
    for _ in range(50):
        estimator.observe(0.5)
    assert estimator.timeout == pytest.approx(0.5, rel=0.01)
    timeouts = [estimator.retry_timeout(n) for n in range(6)]
    assert timeouts == pytest.approx([0.5, 1.0, 2.0, 2.0, 2.0, 2.0], rel=0.01)


def test_a_host_adopts_the_networks_estimate_once_the_network_has_one() -> None:
    network = RttEstimator(BOUNDS)
    host = RttEstimator(BOUNDS, seed=network)  # taken on before any answer
    assert host.timeout == 1.0
    network.observe(0.002)
    host.adopt(network)
    assert (host.srtt, host.timeout) == (network.srtt, 0.25)
    assert host.retry_timeout(0) == network.retry_timeout(0)


def test_a_host_that_has_not_answered_backs_off_towards_the_initial_timeout() -> None:
    # the network's estimate says nothing of this host's path: a host much slower than
    # the others (or than the scanning machine under load) must still be heard
    network = RttEstimator(BOUNDS)
    for _ in range(20):
        network.observe(0.001)
    silent = RttEstimator(BOUNDS, seed=network)
    assert [silent.retry_timeout(n) for n in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert [network.retry_timeout(n) for n in range(5)] == [0.25] * 5
    silent.observe(0.002)  # its first answer: from now on its own estimate rules
    assert [silent.retry_timeout(n) for n in range(3)] == [0.25] * 3


def test_the_last_attempt_on_a_host_that_has_not_answered_waits_the_initial_timeout() -> None:
    # a lost ARP answer is asked for again only after a second: the last chance must outlast it
    network = RttEstimator(BOUNDS)
    for _ in range(20):
        network.observe(0.001)
    silent = RttEstimator(BOUNDS, seed=network)
    assert [silent.retry_timeout(n, last=True) for n in range(3)] == [1.0] * 3
    assert network.retry_timeout(2, last=True) == network.retry_timeout(2) == 0.25
    silent.observe(0.002)
    assert silent.retry_timeout(2, last=True) == 0.25


def test_a_new_host_starts_from_what_the_network_has_shown() -> None:
    network = RttEstimator(BOUNDS)
    for _ in range(20):
        network.observe(0.3)
    host = RttEstimator(BOUNDS, seed=network)
    assert host.timeout == network.timeout
    assert host.srtt == network.srtt


@given(st.lists(st.floats(min_value=-1, max_value=100, allow_nan=False), max_size=100))
def test_the_timeout_always_stays_within_its_bounds(samples: list[float]) -> None:
    estimator = RttEstimator(BOUNDS)
    for sample in samples:
        estimator.observe(sample)
        assert BOUNDS.minimum <= estimator.timeout <= BOUNDS.maximum
