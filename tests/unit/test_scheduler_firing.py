"""The scheduler's rules without a database: spawn, skip, coalesce, launch grace, wording."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveyor.core.recurrence import Recurrence, next_occurrence, next_occurrences, parse_recurrence
from surveyor.core.tasks import WaitReason
from surveyor.scheduler.firing import (
    COUNT_LIMIT,
    LISTED_OCCURRENCES,
    Verdict,
    coalesce_message,
    decide_firing,
    describe_duration,
    format_moment,
    launch_expired,
    launch_expired_error,
    skip_message,
)

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def schedule(frequency: str, **fields: Any) -> Recurrence:
    return parse_recurrence(frequency, now=CREATED, **fields)


DAILY = schedule("daily", time="03:00")


def decide(now: datetime, *, grace: timedelta = HOUR, previous_run_active: bool = False) -> Any:
    return decide_firing(
        DAILY, recur_next=FIRST, now=now, grace=grace, previous_run_active=previous_run_active
    )


def test_an_occurrence_on_time_spawns_one_run_and_moves_on_to_the_next() -> None:
    firing = decide(FIRST)

    assert firing.verdict is Verdict.SPAWN
    assert firing.occurrence == FIRST
    assert firing.not_run == 0
    assert firing.following == FIRST + DAY


def test_an_occurrence_whose_previous_run_has_not_finished_is_skipped() -> None:
    firing = decide(FIRST + SECOND, previous_run_active=True)

    assert firing.verdict is Verdict.SKIP_PREVIOUS_RUN_ACTIVE
    assert firing.not_run == 1
    assert firing.following == FIRST + DAY


def test_occurrences_missed_within_the_grace_period_are_coalesced_into_one_run_of_the_latest() -> (
    None
):
    firing = decide(FIRST + 2 * DAY + timedelta(minutes=10))

    assert firing.verdict is Verdict.SPAWN
    assert firing.occurrence == FIRST + 2 * DAY
    assert firing.not_run == 2
    assert firing.due.listed == (FIRST, FIRST + DAY, FIRST + 2 * DAY)
    assert firing.following == FIRST + 3 * DAY


def test_occurrences_missed_beyond_the_grace_period_are_all_skipped() -> None:
    firing = decide(FIRST + 2 * DAY + 2 * HOUR)

    assert firing.verdict is Verdict.SKIP_TOO_LATE
    assert firing.not_run == 3
    assert firing.lateness == 2 * HOUR
    assert firing.following == FIRST + 3 * DAY


def test_a_run_exactly_one_grace_period_late_still_spawns() -> None:
    assert decide(FIRST + HOUR).verdict is Verdict.SPAWN
    assert decide(FIRST + HOUR + SECOND).verdict is Verdict.SKIP_TOO_LATE


def test_too_late_wins_over_a_previous_run_that_has_not_finished() -> None:
    firing = decide(FIRST + 3 * HOUR, previous_run_active=True)

    assert firing.verdict is Verdict.SKIP_TOO_LATE


def test_a_schedule_that_runs_once_has_no_following_occurrence() -> None:
    once = schedule("once", start=FIRST)

    firing = decide_firing(once, recur_next=FIRST, now=FIRST, grace=HOUR, previous_run_active=False)

    assert firing.verdict is Verdict.SPAWN
    assert firing.following is None


def test_months_without_a_scheduler_cost_bounded_work_and_still_coalesce_the_latest() -> None:
    every_minute = schedule("cron", cron="* * * * *")
    now = FIRST + 30 * DAY + timedelta(seconds=30)
    started = time.perf_counter()

    firing = decide_firing(
        every_minute, recur_next=FIRST, now=now, grace=HOUR, previous_run_active=False
    )

    assert time.perf_counter() - started < 5
    assert firing.verdict is Verdict.SPAWN
    assert firing.occurrence == FIRST + 30 * DAY
    assert firing.due.count_is_lower_bound
    assert firing.due.count >= COUNT_LIMIT
    assert firing.following == FIRST + 30 * DAY + timedelta(minutes=1)


cadences = st.sampled_from(
    [
        ("hourly", {"start": FIRST}),
        ("hourly", {"start": FIRST, "interval": 3}),
        ("daily", {"time": "03:00", "timezone": "America/New_York"}),
        ("weekly", {"weekdays": ["mo", "fr"], "time": "22:30", "timezone": "Europe/Berlin"}),
        ("monthly", {"day_of_month": 31, "time": "03:00"}),
        ("cron", {"cron": "*/20 9-17 * * 1-5", "timezone": "Europe/Berlin"}),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    cadence=cadences,
    minutes_later=st.integers(0, 60 * 24 * 45),
    grace_minutes=st.integers(1, 60 * 24 * 3),
    previous_run_active=st.booleans(),
)
def test_every_due_occurrence_is_run_or_accounted_for_exactly_once_prepared_or_not(
    cadence: tuple[str, dict[str, Any]],
    minutes_later: int,
    grace_minutes: int,
    previous_run_active: bool,
) -> None:
    frequency, fields = cadence
    recurrence = schedule(frequency, **fields)
    first = next_occurrence(recurrence, CREATED)
    assert first is not None
    now = first + timedelta(minutes=minutes_later, seconds=7)
    grace = timedelta(minutes=grace_minutes)

    firing = decide_firing(
        recurrence,
        recur_next=first,
        now=now,
        grace=grace,
        previous_run_active=previous_run_active,
    )

    following_first = next_occurrence(recurrence, first)
    prepared = decide_firing(
        recurrence,
        recur_next=first,
        now=now,
        grace=grace,
        previous_run_active=previous_run_active,
        known_next=[following_first] if following_first else [],
    )
    assert prepared == firing  # computing the next occurrence ahead changes nothing

    due = [first, *_occurrences_until(recurrence, first, now)]
    assert firing.due.count == len(due)
    assert firing.due.latest == due[-1]
    assert firing.due.listed == tuple(due[:LISTED_OCCURRENCES])
    assert firing.following == next_occurrence(recurrence, now)
    ran = 1 if firing.verdict is Verdict.SPAWN else 0
    assert ran + firing.not_run == len(due)
    if now - due[-1] > grace:
        assert firing.verdict is Verdict.SKIP_TOO_LATE
    elif previous_run_active:
        assert firing.verdict is Verdict.SKIP_PREVIOUS_RUN_ACTIVE
    else:
        assert firing.verdict is Verdict.SPAWN


def _occurrences_until(recurrence: Recurrence, after: datetime, until: datetime) -> list[datetime]:
    found: list[datetime] = []
    while True:
        batch = next_occurrences(recurrence, after, 100)
        for moment in batch:
            if moment > until:
                return found
            found.append(moment)
        if len(batch) < 100:
            return found
        after = batch[-1]


# What the events say


def test_a_skip_for_an_unfinished_run_names_the_occurrence_and_the_run() -> None:
    firing = decide(FIRST + SECOND, previous_run_active=True)

    assert skip_message(firing, grace=HOUR, previous_run_id=41) == (
        "skipped the run of 2026-03-02 03:00 UTC: the previous run (task 41) has not finished"
    )


def test_a_late_skip_says_how_many_which_and_how_late() -> None:
    firing = decide(FIRST + 2 * DAY + 2 * HOUR)

    assert skip_message(firing, grace=HOUR, previous_run_id=None) == (
        "skipped 3 runs (2026-03-02 03:00 UTC, 2026-03-03 03:00 UTC, 2026-03-04 03:00 UTC): "
        "the latest was 2 hours late, more than its 1 hour grace period"
    )


def test_a_single_late_skip_says_how_late_it_was() -> None:
    firing = decide(FIRST + 90 * timedelta(minutes=1))

    assert skip_message(firing, grace=HOUR, previous_run_id=None) == (
        "skipped the run of 2026-03-02 03:00 UTC: it was 1 hour 30 minutes late, "
        "more than its 1 hour grace period"
    )


def test_a_coalesce_lists_the_missed_occurrences_and_names_the_run() -> None:
    firing = decide(FIRST + 2 * DAY + timedelta(minutes=10))

    assert coalesce_message(firing, run_id=7) == (
        "2 runs missed (2026-03-02 03:00 UTC, 2026-03-03 03:00 UTC) were coalesced into "
        "run 7 of 2026-03-04 03:00 UTC"
    )


def test_a_long_list_of_occurrences_is_cut_with_a_count_of_the_rest() -> None:
    firing = decide(FIRST + 29 * DAY + 2 * HOUR)

    message = skip_message(firing, grace=HOUR, previous_run_id=None)

    assert message.startswith("skipped 30 runs (2026-03-02 03:00 UTC, ")
    assert "2026-03-11 03:00 UTC and 20 more): the latest was 2 hours late" in message


def test_a_count_that_stopped_early_says_at_least() -> None:
    every_minute = schedule("cron", cron="* * * * *")
    firing = decide_firing(
        every_minute,
        recur_next=FIRST,
        now=FIRST + 30 * DAY + 2 * HOUR,
        grace=HOUR,
        previous_run_active=False,
    )

    assert skip_message(firing, grace=HOUR, previous_run_id=None).startswith("skipped at least ")


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (3600, "1 hour"),
        (5400, "1 hour 30 minutes"),
        (7200 + 61, "2 hours 1 minute"),
        (86400, "1 day"),
        (2 * 86400 + 3 * 3600 + 59, "2 days 3 hours"),
    ],
)
def test_durations_read_in_their_two_largest_units(seconds: int, words: str) -> None:
    assert describe_duration(seconds) == words
    assert describe_duration(timedelta(seconds=seconds)) == words


def test_occurrences_read_as_utc_minutes() -> None:
    assert format_moment(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)) == "2026-03-02 03:00 UTC"


# Launch grace


def test_a_launch_expires_only_after_its_whole_grace_period() -> None:
    assert not launch_expired(FIRST, 3600, FIRST + HOUR)
    assert launch_expired(FIRST, 3600, FIRST + HOUR + SECOND)


@pytest.mark.parametrize(
    ("wait_reason", "reason"),
    [
        (WaitReason.EXPLORER_OFFLINE, "its explorer was offline"),
        (WaitReason.EXPLORER_BUSY, "its explorer was busy with another scan"),
        (WaitReason.ZONE_FULL, "its hosted zone had no free slot"),
        (WaitReason.PREVIOUS_RUN_ACTIVE, "the previous run was still running"),
        (WaitReason.NOT_DUE, "no explorer picked it up"),
        (None, "no explorer picked it up"),
    ],
)
def test_a_task_that_could_not_launch_is_told_why_in_plain_words(
    wait_reason: WaitReason | None, reason: str
) -> None:
    error = launch_expired_error(3600, wait_reason.value if wait_reason else None)

    assert error == f"could not launch within its 1 hour grace period: {reason}"
