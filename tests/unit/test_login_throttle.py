"""The login throttle: which source waits, for how long, and who is never made to wait."""

from __future__ import annotations

from surveyor.service.login import LoginLimits, LoginThrottle

LIMITS = LoginLimits(
    window_seconds=300.0,
    per_source_and_account=10,
    per_source=30,
    account_alarm=30,
    global_alarm=100,
    backoff_seconds=1.0,
)
VICTIM = "ana@example.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle() -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    return LoginThrottle(LIMITS, clock=clock), clock


def fail(limiter: LoginThrottle, source: str, account: str, times: int = 1) -> None:
    for _ in range(times):
        assert limiter.admit(source, account) is None


def test_a_source_guessing_one_accounts_password_waits_after_ten_failures() -> None:
    limiter, clock = throttle()
    fail(limiter, "203.0.113.9", VICTIM, 10)
    assert limiter.admit("203.0.113.9", VICTIM) == 300
    assert limiter.admit("203.0.113.9", VICTIM.upper()) == 300
    clock.now += 120
    assert limiter.admit("203.0.113.9", VICTIM) == 180
    # until its oldest failure leaves the window
    clock.now += 180
    assert limiter.admit("203.0.113.9", VICTIM) is None


def test_the_account_owner_elsewhere_is_not_made_to_wait_for_the_attacker() -> None:
    limiter, _ = throttle()
    fail(limiter, "203.0.113.9", VICTIM, 10)
    assert limiter.admit("203.0.113.9", VICTIM) is not None
    assert limiter.admit("198.51.100.1", VICTIM) is None
    limiter.succeeded("198.51.100.1", VICTIM)
    assert limiter.admit("198.51.100.1", VICTIM) is None


def test_a_source_spraying_many_accounts_waits_after_thirty_failures() -> None:
    limiter, _ = throttle()
    for n in range(30):
        fail(limiter, "203.0.113.9", f"user{n}@example.test")
    assert limiter.admit("203.0.113.9", "someone-new@example.test") == 300
    assert limiter.admit("198.51.100.1", "someone-new@example.test") is None


def test_an_account_attacked_from_many_sources_slows_each_source_that_failed_on_it() -> None:
    limiter, clock = throttle()
    attackers = [f"203.0.113.{n}" for n in range(30)]
    for source in attackers:
        fail(limiter, source, VICTIM)
    # every attacker now waits before its next guess: one second after one failure ...
    assert {limiter.admit(source, VICTIM) for source in attackers} == {1}
    clock.now += 1
    fail(limiter, attackers[0], VICTIM)
    # ... two after two, four after three: it doubles
    assert limiter.admit(attackers[0], VICTIM) == 2
    clock.now += 2
    fail(limiter, attackers[0], VICTIM)
    assert limiter.admit(attackers[0], VICTIM) == 4
    # while the owner, from a source that has not failed, is let in at once
    assert limiter.admit("198.51.100.1", VICTIM) is None
    limiter.succeeded("198.51.100.1", VICTIM)
    # and attackers trying another account are not slowed by this account's alarm
    assert limiter.admit(attackers[1], "other@example.test") is None


def test_the_back_off_never_exceeds_the_window() -> None:
    clock = Clock()
    limiter = LoginThrottle(LoginLimits(window_seconds=1000.0, backoff_seconds=300.0), clock=clock)
    waits = []
    for step in range(3):
        for n in range(30):
            fail(limiter, f"198.18.{step}.{n}", VICTIM)  # the account stays under attack
        fail(limiter, "203.0.113.9", VICTIM)
        wait = limiter.admit("203.0.113.9", VICTIM)
        assert wait is not None
        waits.append(wait)
        clock.now += wait
    assert waits == [300, 600, 1000]


def test_spraying_from_many_sources_slows_every_source_that_failed() -> None:
    limiter, _ = throttle()
    sprayers = [f"198.18.{n // 250}.{n % 250}" for n in range(100)]
    for n, source in enumerate(sprayers):
        fail(limiter, source, f"user{n}@example.test")
    # the console is under attack: a source that failed anywhere waits before trying again
    assert limiter.admit(sprayers[0], "user500@example.test") == 1
    # one that never failed does not
    assert limiter.admit("192.0.2.10", VICTIM) is None


def test_an_attempt_counts_as_failed_until_its_password_proves_right() -> None:
    limiter, _ = throttle()
    # ten guesses sent at once are all counted before any answer is known
    fail(limiter, "203.0.113.9", VICTIM, 10)
    assert limiter.admit("203.0.113.9", VICTIM) is not None


def test_a_right_password_forgives_the_sources_failures_on_that_account() -> None:
    limiter, _ = throttle()
    fail(limiter, "192.0.2.10", VICTIM, 9)
    assert limiter.admit("192.0.2.10", VICTIM) is None
    limiter.succeeded("192.0.2.10", VICTIM)
    fail(limiter, "192.0.2.10", VICTIM, 10)
    assert limiter.admit("192.0.2.10", VICTIM) == 300


def test_a_right_password_does_not_forgive_the_sources_failures_elsewhere() -> None:
    limiter, _ = throttle()
    for n in range(29):
        fail(limiter, "192.0.2.10", f"user{n}@example.test")
    assert limiter.admit("192.0.2.10", VICTIM) is None
    limiter.succeeded("192.0.2.10", VICTIM)
    fail(limiter, "192.0.2.10", "user29@example.test")
    assert limiter.admit("192.0.2.10", VICTIM) == 300
