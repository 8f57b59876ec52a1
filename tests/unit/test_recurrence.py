"""The recurrence maths of SPEC §5: every frequency, the DST decisions, storage and validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from surveyor.core.recurrence import (
    PREVIEW_COUNT,
    Frequency,
    Recurrence,
    RecurrenceError,
    Weekday,
    describe,
    next_occurrence,
    next_occurrences,
    parse_recurrence,
    preview,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def parse(frequency: str, **fields: Any) -> Recurrence:
    fields.setdefault("now", NOW)
    return parse_recurrence(frequency, **fields)


def local_times(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    """Occurrences as local ISO times with their offset, the way a user reads a schedule."""
    return [instant.astimezone(zone).isoformat(timespec="minutes") for instant in instants]


# Each frequency


def test_once_runs_at_its_start_and_then_never_again() -> None:
    once = parse("once", start=utc(2026, 4, 1, 9, 0))

    assert next_occurrences(once, NOW, 5) == [utc(2026, 4, 1, 9, 0)]
    assert next_occurrence(once, utc(2026, 4, 1, 9, 0)) is None


def test_hourly_runs_every_hour_at_the_minute_of_its_start() -> None:
    hourly = parse("hourly", start=utc(2026, 3, 2, 10, 15))

    assert next_occurrences(hourly, utc(2026, 3, 2, 11, 15), 3) == [
        utc(2026, 3, 2, 12, 15),
        utc(2026, 3, 2, 13, 15),
        utc(2026, 3, 2, 14, 15),
    ]


def test_hourly_with_an_interval_counts_hours_from_its_start() -> None:
    every_five_hours = parse("hourly", interval=5, start=utc(2026, 3, 2, 10, 15))

    assert next_occurrences(every_five_hours, utc(2026, 3, 3, 0, 0), 3) == [
        utc(2026, 3, 3, 1, 15),
        utc(2026, 3, 3, 6, 15),
        utc(2026, 3, 3, 11, 15),
    ]


def test_daily_runs_at_the_requested_local_time_from_the_start_on() -> None:
    daily = parse("daily", time="09:30", timezone="Europe/Berlin", start=utc(2026, 3, 2, 10, 0))

    assert local_times(next_occurrences(daily, NOW, 3), BERLIN) == [
        "2026-03-03T09:30+01:00",
        "2026-03-04T09:30+01:00",
        "2026-03-05T09:30+01:00",
    ]


def test_daily_without_a_time_runs_at_the_time_of_day_of_its_start() -> None:
    daily = parse("daily", timezone="Europe/Berlin", start=utc(2026, 3, 2, 6, 45))

    assert local_times(next_occurrences(daily, NOW, 2), BERLIN) == [
        "2026-03-02T07:45+01:00",
        "2026-03-03T07:45+01:00",
    ]


def test_daily_with_an_interval_counts_days_from_the_start_day() -> None:
    every_third_day = parse("daily", interval=3, time="06:00", start=utc(2026, 3, 2, 12, 0))

    assert next_occurrences(every_third_day, NOW, 3) == [
        utc(2026, 3, 5, 6, 0),
        utc(2026, 3, 8, 6, 0),
        utc(2026, 3, 11, 6, 0),
    ]


def test_weekly_runs_on_each_requested_weekday() -> None:
    weekly = parse("weekly", weekdays=["mo", "we", "fr"], time="08:00", start=NOW)

    assert next_occurrences(weekly, NOW, 4) == [
        utc(2026, 3, 2, 8, 0),
        utc(2026, 3, 4, 8, 0),
        utc(2026, 3, 6, 8, 0),
        utc(2026, 3, 9, 8, 0),
    ]


def test_weekly_with_an_interval_counts_weeks_from_the_start_week() -> None:
    # Starts on Wednesday 4 March: that week's Monday has passed, so the first run is two weeks
    # later, as docs/scheduling.md promises.
    fortnightly = parse(
        "weekly", interval=2, weekdays=["monday"], time="09:00", start=utc(2026, 3, 4)
    )

    assert next_occurrences(fortnightly, NOW, 3) == [
        utc(2026, 3, 16, 9, 0),
        utc(2026, 3, 30, 9, 0),
        utc(2026, 4, 13, 9, 0),
    ]


def test_weekday_names_may_be_short_three_letter_or_full_in_any_case() -> None:
    weekly = parse("Weekly", weekdays=["FR", "Mon", "wednesday", "mo"], time="08:00", start=NOW)

    assert weekly.weekdays == (Weekday.MO, Weekday.WE, Weekday.FR)


def test_monthly_runs_on_the_requested_day_of_month() -> None:
    monthly = parse("monthly", day_of_month=15, time="22:00", start=NOW)

    assert next_occurrences(monthly, NOW, 3) == [
        utc(2026, 3, 15, 22, 0),
        utc(2026, 4, 15, 22, 0),
        utc(2026, 5, 15, 22, 0),
    ]


def test_monthly_with_an_interval_counts_months_from_the_start_month() -> None:
    quarterly = parse("monthly", interval=3, day_of_month=1, time="00:00", start=NOW)

    assert next_occurrences(quarterly, NOW, 3) == [
        utc(2026, 6, 1, 0, 0),
        utc(2026, 9, 1, 0, 0),
        utc(2026, 12, 1, 0, 0),
    ]


def test_monthly_on_the_31st_runs_on_the_last_day_of_shorter_months() -> None:
    monthly = parse("monthly", day_of_month=31, time="09:00", start=utc(2026, 1, 1))

    assert next_occurrences(monthly, utc(2026, 1, 1), 5) == [
        utc(2026, 1, 31, 9, 0),
        utc(2026, 2, 28, 9, 0),
        utc(2026, 3, 31, 9, 0),
        utc(2026, 4, 30, 9, 0),
        utc(2026, 5, 31, 9, 0),
    ]


def test_monthly_on_the_30th_runs_on_february_29th_in_leap_years() -> None:
    monthly = parse("monthly", day_of_month=30, time="09:00", start=utc(2028, 1, 1))

    assert next_occurrences(monthly, utc(2028, 1, 1), 3) == [
        utc(2028, 1, 30, 9, 0),
        utc(2028, 2, 29, 9, 0),
        utc(2028, 3, 30, 9, 0),
    ]


def test_a_raw_rule_can_pick_the_last_friday_of_each_month() -> None:
    last_friday = parse(
        "rrule", rule="RRULE:FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=18;BYMINUTE=0", start=NOW
    )

    assert next_occurrences(last_friday, NOW, 3) == [
        utc(2026, 3, 27, 18, 0),
        utc(2026, 4, 24, 18, 0),
        utc(2026, 5, 29, 18, 0),
    ]


def test_a_raw_rule_takes_missing_times_and_days_from_its_start() -> None:
    weekly = parse("rrule", rule="freq=weekly", start=utc(2026, 3, 4, 7, 20))

    assert next_occurrences(weekly, NOW, 2) == [utc(2026, 3, 4, 7, 20), utc(2026, 3, 11, 7, 20)]


def test_a_raw_rule_stops_after_its_count() -> None:
    three_days = parse("rrule", rule="FREQ=DAILY;COUNT=3;BYHOUR=6;BYMINUTE=0", start=NOW)

    assert next_occurrences(three_days, NOW, 5) == [
        utc(2026, 3, 2, 6, 0),
        utc(2026, 3, 3, 6, 0),
        utc(2026, 3, 4, 6, 0),
    ]
    assert next_occurrence(three_days, utc(2026, 3, 4, 6, 0)) is None


def test_a_raw_rule_stops_at_its_until_read_in_utc() -> None:
    rule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20260304T080000Z"
    until_the_4th = parse("rrule", rule=rule, timezone="Europe/Berlin", start=NOW)

    assert local_times(next_occurrences(until_the_4th, NOW, 5), BERLIN) == [
        "2026-03-02T09:00+01:00",
        "2026-03-03T09:00+01:00",
        "2026-03-04T09:00+01:00",
    ]


def test_a_floating_until_is_a_local_time_and_is_stored_in_utc() -> None:
    rule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20260303T090000"
    recurrence = parse("rrule", rule=rule, timezone="Europe/Berlin", start=NOW)

    assert recurrence.rule == "FREQ=DAILY;UNTIL=20260303T080000Z;BYHOUR=9;BYMINUTE=0"
    assert next_occurrences(recurrence, NOW, 5) == [utc(2026, 3, 2, 8, 0), utc(2026, 3, 3, 8, 0)]


def test_a_dtstart_line_in_the_rule_sets_the_start_and_the_time_zone() -> None:
    text = "DTSTART;TZID=Europe/Berlin:20260401T090000\nRRULE:FREQ=WEEKLY;BYDAY=WE"
    recurrence = parse("rrule", rule=text)

    assert recurrence.timezone == "Europe/Berlin"
    assert recurrence.anchor == datetime(2026, 4, 1, 9, 0)
    assert local_times(next_occurrences(recurrence, NOW, 2), BERLIN) == [
        "2026-04-01T09:00+02:00",
        "2026-04-08T09:00+02:00",
    ]


def test_a_utc_dtstart_becomes_a_local_start_in_the_schedule_time_zone() -> None:
    text = "DTSTART:20260401T070000Z\nRRULE:FREQ=DAILY"
    recurrence = parse("rrule", rule=text, timezone="Europe/Berlin")

    assert recurrence.anchor == datetime(2026, 4, 1, 9, 0)
    assert next_occurrences(recurrence, NOW, 2) == [utc(2026, 4, 1, 7, 0), utc(2026, 4, 2, 7, 0)]


def test_cron_runs_at_matching_local_times() -> None:
    weekday_mornings = parse("cron", cron="0 9 * * mon-fri", timezone="Europe/Berlin")

    assert local_times(next_occurrences(weekday_mornings, utc(2026, 3, 6, 9, 0), 3), BERLIN) == [
        "2026-03-09T09:00+01:00",
        "2026-03-10T09:00+01:00",
        "2026-03-11T09:00+01:00",
    ]


def test_cron_steps_and_lists_repeat_within_the_hour() -> None:
    quarter_hours = parse("cron", cron="*/15 9-10 * * *")

    assert next_occurrences(quarter_hours, utc(2026, 3, 2, 10, 40), 3) == [
        utc(2026, 3, 2, 10, 45),
        utc(2026, 3, 3, 9, 0),
        utc(2026, 3, 3, 9, 15),
    ]


def test_cron_restricting_both_day_fields_runs_on_days_matching_either() -> None:
    first_or_monday = parse("cron", cron="0 12 1 * mon")

    assert next_occurrences(first_or_monday, utc(2026, 3, 25), 3) == [
        utc(2026, 3, 30, 12, 0),
        utc(2026, 4, 1, 12, 0),
        utc(2026, 4, 6, 12, 0),
    ]


def test_cron_shortcuts_are_stored_as_their_five_fields() -> None:
    assert parse("cron", cron=" @Daily ").cron == "0 0 * * *"
    assert parse("cron", cron="0  9 * *   MON-FRI").cron == "0 9 * * mon-fri"


# The start, previews and queries


def test_the_start_is_rounded_up_to_the_next_whole_minute() -> None:
    once = parse("once", start=datetime(2026, 4, 1, 9, 0, 1, tzinfo=UTC))

    assert next_occurrences(once, NOW, 1) == [utc(2026, 4, 1, 9, 1)]


def test_nothing_runs_before_a_future_start() -> None:
    daily = parse("daily", time="09:00", start=utc(2026, 6, 1, 10, 0))

    assert next_occurrences(daily, NOW, 2) == [utc(2026, 6, 2, 9, 0), utc(2026, 6, 3, 9, 0)]


def test_preview_shows_the_next_five_runs() -> None:
    daily = parse("daily", time="09:00", start=NOW)

    assert PREVIEW_COUNT == 5
    assert preview(daily, NOW) == [utc(2026, 3, day, 9, 0) for day in range(2, 7)]


def test_occurrences_are_strictly_after_the_time_asked_about() -> None:
    daily = parse("daily", time="09:00", start=NOW)

    assert next_occurrence(daily, utc(2026, 3, 2, 9, 0)) == utc(2026, 3, 3, 9, 0)


def test_queries_far_from_the_start_give_the_same_runs() -> None:
    fortnightly = parse(
        "weekly", interval=2, weekdays=["tu"], time="02:30", timezone="Europe/Berlin", start=NOW
    )

    assert local_times(next_occurrences(fortnightly, utc(2301, 1, 1), 2), BERLIN) == [
        "2301-01-08T02:30+01:00",
        "2301-01-22T02:30+01:00",
    ]


def test_next_occurrences_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_occurrences(parse("daily", start=NOW), datetime(2026, 3, 1), 1)


# Daylight saving time

SPRING_FORWARD = [
    pytest.param(
        "America/New_York",
        utc(2026, 3, 6),
        [
            "2026-03-06T02:30-05:00",
            "2026-03-07T02:30-05:00",
            "2026-03-08T03:30-04:00",
            "2026-03-09T02:30-04:00",
        ],
        id="new-york",
    ),
    pytest.param(
        "Europe/Berlin",
        utc(2026, 3, 27),
        [
            "2026-03-27T02:30+01:00",
            "2026-03-28T02:30+01:00",
            "2026-03-29T03:30+02:00",
            "2026-03-30T02:30+02:00",
        ],
        id="berlin",
    ),
]


@pytest.mark.parametrize(("zone", "after", "expected"), SPRING_FORWARD)
def test_a_daily_time_skipped_by_spring_forward_runs_once_an_hour_later(
    zone: str, after: datetime, expected: list[str]
) -> None:
    daily = parse("daily", time="02:30", timezone=zone, start=NOW - timedelta(days=30))

    assert local_times(next_occurrences(daily, after, 4), ZoneInfo(zone)) == expected


@pytest.mark.parametrize(("zone", "after", "expected"), SPRING_FORWARD)
def test_a_cron_time_skipped_by_spring_forward_runs_once_an_hour_later(
    zone: str, after: datetime, expected: list[str]
) -> None:
    nightly = parse("cron", cron="30 2 * * *", timezone=zone)

    assert local_times(next_occurrences(nightly, after, 4), ZoneInfo(zone)) == expected


FALL_BACK = [
    pytest.param(
        "America/New_York",
        "01:30",
        utc(2026, 10, 31),
        ["2026-10-31T01:30-04:00", "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
        id="new-york",
    ),
    pytest.param(
        "Europe/Berlin",
        "02:30",
        utc(2026, 10, 24),
        ["2026-10-24T02:30+02:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"],
        id="berlin",
    ),
]


@pytest.mark.parametrize(("zone", "clock", "after", "expected"), FALL_BACK)
def test_a_daily_time_repeated_by_fall_back_runs_once_at_its_first_occurrence(
    zone: str, clock: str, after: datetime, expected: list[str]
) -> None:
    daily = parse("daily", time=clock, timezone=zone, start=NOW)

    assert local_times(next_occurrences(daily, after, 3), ZoneInfo(zone)) == expected


@pytest.mark.parametrize(("zone", "clock", "after", "expected"), FALL_BACK)
def test_a_cron_time_repeated_by_fall_back_runs_once_at_its_first_occurrence(
    zone: str, clock: str, after: datetime, expected: list[str]
) -> None:
    hour, minute = clock.split(":")
    nightly = parse("cron", cron=f"{int(minute)} {int(hour)} * * *", timezone=zone)

    assert local_times(next_occurrences(nightly, after, 3), ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param(
            "America/New_York",
            utc(2026, 3, 8, 5, 15),
            [
                "2026-03-08T00:15-05:00",
                "2026-03-08T01:15-05:00",
                "2026-03-08T03:15-04:00",
                "2026-03-08T04:15-04:00",
            ],
            id="new-york",
        ),
        pytest.param(
            "Europe/Berlin",
            utc(2026, 3, 28, 23, 15),
            [
                "2026-03-29T00:15+01:00",
                "2026-03-29T01:15+01:00",
                "2026-03-29T03:15+02:00",
                "2026-03-29T04:15+02:00",
            ],
            id="berlin",
        ),
    ],
)
def test_hourly_counts_real_hours_across_spring_forward(
    zone: str, start: datetime, expected: list[str]
) -> None:
    hourly = parse("hourly", timezone=zone, start=start)

    occurrences = next_occurrences(hourly, start - timedelta(minutes=1), 4)

    assert local_times(occurrences, ZoneInfo(zone)) == expected
    assert [b - a for a, b in pairwise(occurrences)] == [timedelta(hours=1)] * 3


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param(
            "America/New_York",
            utc(2026, 11, 1, 4, 15),
            [
                "2026-11-01T00:15-04:00",
                "2026-11-01T01:15-04:00",
                "2026-11-01T01:15-05:00",
                "2026-11-01T02:15-05:00",
            ],
            id="new-york",
        ),
        pytest.param(
            "Europe/Berlin",
            utc(2026, 10, 24, 23, 15),
            [
                "2026-10-25T01:15+02:00",
                "2026-10-25T02:15+02:00",
                "2026-10-25T02:15+01:00",
                "2026-10-25T03:15+01:00",
            ],
            id="berlin",
        ),
    ],
)
def test_hourly_counts_real_hours_across_fall_back(
    zone: str, start: datetime, expected: list[str]
) -> None:
    hourly = parse("hourly", timezone=zone, start=start)

    assert local_times(
        next_occurrences(hourly, start - timedelta(minutes=1), 4), ZoneInfo(zone)
    ) == (expected)


def test_a_rule_with_times_inside_and_after_a_skipped_hour_runs_each_instant_once_in_order() -> (
    None
):
    # 02:00 and 02:30 do not exist on 8 March; they become 03:00 and 03:30, which the rule also
    # names, and 02:30 (=03:30) comes before 03:00 in wall order.
    rule = "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0,30"
    recurrence = parse("rrule", rule=rule, timezone="America/New_York", start=NOW)

    assert local_times(next_occurrences(recurrence, utc(2026, 3, 8, 5, 0), 4), NEW_YORK) == [
        "2026-03-08T03:00-04:00",
        "2026-03-08T03:30-04:00",
        "2026-03-09T02:00-04:00",
        "2026-03-09T02:30-04:00",
    ]


def test_monthly_at_a_skipped_time_runs_an_hour_later_that_day() -> None:
    monthly = parse(
        "monthly", day_of_month=29, time="02:30", timezone="Europe/Berlin", start=utc(2026, 2, 1)
    )

    assert local_times(next_occurrences(monthly, utc(2026, 3, 1), 2), BERLIN) == [
        "2026-03-29T03:30+02:00",
        "2026-04-29T02:30+02:00",
    ]


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1),
            "2026-11-01T02:00-05:00",
            id="new-york",
        ),
        pytest.param(
            "Europe/Berlin",
            datetime(2026, 10, 25, 2, 20, tzinfo=BERLIN, fold=1),
            "2026-10-25T03:00+01:00",
            id="berlin",
        ),
    ],
)
def test_a_start_in_the_second_pass_of_a_repeated_hour_is_never_moved_earlier(
    zone: str, start: datetime, expected: str
) -> None:
    once = parse("once", start=start, timezone=zone)

    assert local_times(next_occurrences(once, NOW, 1), ZoneInfo(zone)) == [expected]


# Storage


ROUND_TRIPS = [
    parse("once", start=utc(2026, 4, 1, 9, 0), timezone="Europe/Berlin"),
    parse("hourly", interval=6, start=utc(2026, 3, 8, 6, 45), timezone="America/New_York"),
    parse("daily", interval=2, time="02:30", start=NOW, timezone="Europe/Berlin"),
    parse("weekly", interval=2, weekdays=["mo", "we"], time="02:30", start=NOW),
    parse("monthly", day_of_month=31, time="23:59", start=NOW, timezone="Australia/Sydney"),
    parse("monthly", day_of_month=7, interval=12, time="00:00", start=NOW),
    parse("rrule", rule="FREQ=YEARLY;BYMONTH=3,11;BYDAY=1SU;BYHOUR=2;BYMINUTE=30", start=NOW),
    parse("rrule", rule="FREQ=DAILY;UNTIL=20270101T000000;WKST=SU", timezone="Asia/Kolkata"),
    parse("cron", cron="@weekly", timezone="Pacific/Auckland"),
]


@pytest.mark.parametrize("recurrence", ROUND_TRIPS, ids=lambda recurrence: describe(recurrence))
def test_a_stored_recurrence_reads_back_exactly(recurrence: Recurrence) -> None:
    stored = recurrence.to_stored()

    assert Recurrence.from_stored(*stored) == recurrence
    assert Recurrence.from_stored(*stored).to_stored() == stored


@pytest.mark.parametrize(
    ("recurrence", "stored"),
    [
        (
            ROUND_TRIPS[0],
            ("once", "DTSTART;TZID=Europe/Berlin:20260401T110000\nRRULE:FREQ=DAILY;COUNT=1"),
        ),
        (
            ROUND_TRIPS[1],
            (
                "hourly",
                "DTSTART;TZID=America/New_York:20260308T014500\nRRULE:FREQ=HOURLY;INTERVAL=6",
            ),
        ),
        (
            ROUND_TRIPS[3],
            (
                "weekly",
                "DTSTART;TZID=UTC:20260301T120000\n"
                "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;BYHOUR=2;BYMINUTE=30",
            ),
        ),
        (
            ROUND_TRIPS[4],
            (
                "monthly",
                "DTSTART;TZID=Australia/Sydney:20260301T230000\n"
                "RRULE:FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYHOUR=23;BYMINUTE=59;BYSETPOS=-1",
            ),
        ),
        (
            ROUND_TRIPS[7],
            (
                "rrule",
                "DTSTART;TZID=Asia/Kolkata:20260301T173000\n"
                "RRULE:FREQ=DAILY;UNTIL=20261231T183000Z;WKST=SU",
            ),
        ),
        (ROUND_TRIPS[8], ("cron", "0 0 * * 0")),
    ],
)
def test_recurrences_are_stored_as_rrules_with_a_local_dtstart_or_as_cron(
    recurrence: Recurrence, stored: tuple[str, str]
) -> None:
    assert recurrence.to_stored() == (*stored, recurrence.timezone)


def test_a_raw_rule_given_in_stored_form_parses_to_the_same_recurrence() -> None:
    original = ROUND_TRIPS[6]
    _, text, timezone = original.to_stored()

    assert parse("rrule", rule=text, timezone=timezone) == original


@pytest.mark.parametrize(
    ("stored", "field", "message"),
    [
        (("fortnightly", "", "UTC"), "recur_frequency", "'fortnightly' is not a recurrence"),
        (("daily", "FREQ=DAILY", "Mars/Olympus"), "timezone", "is not a known time zone"),
        (("daily", "garbage", "UTC"), "recur_rule", "cannot be read"),
        (
            ("daily", "DTSTART;TZID=UTC:20260301T120000\nRRULE:FREQ=DAILY", "UTC"),
            "recur_rule",
            "has no BYHOUR and BYMINUTE",
        ),
        (
            (
                "daily",
                "DTSTART;TZID=Europe/Berlin:20260301T120000\nRRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
                "UTC",
            ),
            "recur_rule",
            "is not a canonical daily rule",
        ),
        (
            (
                "daily",
                "DTSTART;TZID=UTC:20260301T120000\nRRULE:FREQ=DAILY;BYMINUTE=0;BYHOUR=2,3",
                "UTC",
            ),
            "recur_rule",
            "is not a canonical daily rule",
        ),
        (("cron", "0  9 * * *", "UTC"), "recur_rule", "is not a canonical cron rule"),
        (("cron", "0 9 * *", "UTC"), "recur_rule", "needs 5 fields"),
    ],
)
def test_reading_a_stored_recurrence_that_was_not_written_by_to_stored_names_the_column(
    stored: tuple[str, str, str], field: str, message: str
) -> None:
    with pytest.raises(RecurrenceError) as caught:
        Recurrence.from_stored(*stored)

    assert caught.value.field == field
    assert message in caught.value.message


# Validation

INVALID = [
    ({"frequency": "fortnightly"}, "frequency", "'fortnightly' is not a frequency; use once"),
    ({"frequency": "daily", "interval": 0}, "interval", "from 1 to 1000, not 0"),
    ({"frequency": "daily", "interval": 1001}, "interval", "from 1 to 1000, not 1001"),
    ({"frequency": "daily", "interval": True}, "interval", "from 1 to 1000, not True"),
    ({"frequency": "daily", "time": "25:00"}, "time", "'25:00' is not a time of day"),
    ({"frequency": "daily", "time": "noon"}, "time", "use 24-hour HH:MM"),
    ({"frequency": "weekly"}, "weekdays", "weekly needs at least one weekday"),
    ({"frequency": "weekly", "weekdays": []}, "weekdays", "weekly needs at least one weekday"),
    (
        {"frequency": "weekly", "weekdays": ["mo", "funday"]},
        "weekdays",
        "'funday' is not a weekday",
    ),
    ({"frequency": "weekly", "weekdays": "mo"}, "weekdays", "must be a list"),
    ({"frequency": "monthly"}, "day_of_month", "monthly needs a day of month (1-31)"),
    ({"frequency": "monthly", "day_of_month": 32}, "day_of_month", "from 1 to 31, not 32"),
    ({"frequency": "monthly", "day_of_month": 0}, "day_of_month", "from 1 to 31, not 0"),
    ({"frequency": "daily", "weekdays": ["mo"]}, "weekdays", "applies only to weekly schedules"),
    (
        {"frequency": "weekly", "weekdays": ["mo"], "day_of_month": 3},
        "day_of_month",
        "only to monthly",
    ),
    (
        {"frequency": "hourly", "time": "02:00"},
        "time",
        "daily, weekly or monthly schedules, not hourly",
    ),
    ({"frequency": "daily", "cron": "* * * * *"}, "cron", "applies only to cron schedules"),
    (
        {"frequency": "cron", "cron": "0 * * * *", "interval": 2},
        "interval",
        "use a step such as */2",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY", "interval": 2},
        "interval",
        "put INTERVAL in the rule",
    ),
    (
        {"frequency": "daily", "timezone": "Europe/Pariss"},
        "timezone",
        "'Europe/Pariss' is not a known time zone; did you mean 'Europe/Paris'?",
    ),
    (
        {"frequency": "daily", "timezone": "localtime"},
        "timezone",
        "'localtime' is not a known time zone",
    ),
    (
        {"frequency": "daily", "start": datetime(2026, 3, 1, 9, 0)},
        "start",
        "must include a time zone",
    ),
    ({"frequency": "once"}, "start", "a once schedule needs a start date and time"),
    ({"frequency": "once", "start": utc(2026, 2, 1)}, "start", "is in the past"),
    ({"frequency": "rrule"}, "rule", "an rrule schedule needs a rule"),
    ({"frequency": "rrule", "rule": "FREQ=FORTNIGHTLY"}, "rule", "FREQ must be one of YEARLY"),
    ({"frequency": "rrule", "rule": "BYDAY=MO"}, "rule", "the rule needs FREQ"),
    (
        {"frequency": "rrule", "rule": "FREQ=MINUTELY"},
        "rule",
        "use a cron expression such as '*/15 * * * *'",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;FREQ=WEEKLY"},
        "rule",
        "FREQ appears more than once",
    ),
    ({"frequency": "rrule", "rule": "FREQ=DAILY;X-ROOM=7"}, "rule", "X-ROOM is not a rule part"),
    ({"frequency": "rrule", "rule": "FREQ=DAILY;BYHOUR"}, "rule", "'BYHOUR' is not NAME=VALUE"),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;INTERVAL=0"},
        "rule",
        "INTERVAL must be a whole number from 1 to 1000",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;COUNT=5000"},
        "rule",
        "COUNT must be a whole number from 1 to 1000",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;BYHOUR=24"},
        "rule",
        "BYHOUR values must be 0 to 23, not 24",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=MONTHLY;BYMONTHDAY=0"},
        "rule",
        "must be 1 to 31 or -31 to -1, not 0",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=MONTHLY;BYDAY=FUN"},
        "rule",
        "BYDAY values look like MO, 2TU or -1FR",
    ),
    ({"frequency": "rrule", "rule": "FREQ=DAILY;BYSECOND=30"}, "rule", "BYSECOND is not supported"),
    (
        {"frequency": "rrule", "rule": "FREQ=WEEKLY;BYDAY=2MO"},
        "rule",
        "needs FREQ=MONTHLY or FREQ=YEARLY",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=WEEKLY;BYMONTHDAY=3"},
        "rule",
        "BYMONTHDAY cannot be used with FREQ=WEEKLY",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=MONTHLY;BYWEEKNO=3"},
        "rule",
        "BYWEEKNO needs FREQ=YEARLY",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;BYYEARDAY=3"},
        "rule",
        "BYYEARDAY cannot be used with FREQ=DAILY",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;BYSETPOS=1"},
        "rule",
        "BYSETPOS needs another BY part",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"},
        "rule",
        "COUNT and UNTIL cannot both be given",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;UNTIL=20270101"},
        "rule",
        "UNTIL needs a time of day as well as a date",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;UNTIL=20270231T000000Z"},
        "rule",
        "UNTIL 20270231T000000Z is not a real date",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;UNTIL=20250101T000000Z"},
        "rule",
        "has no occurrence after now",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=DAILY;COUNT=2", "start": utc(2026, 1, 1)},
        "rule",
        "has no occurrence after now",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31"},
        "rule",
        "no month in BYMONTH has a day listed in BYMONTHDAY",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6"},
        "rule",
        "has no occurrence after now",
    ),
    (
        {"frequency": "rrule", "rule": "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29"},
        "rule",
        "has no occurrence after now",
    ),
    (
        {"frequency": "rrule", "rule": "RRULE:FREQ=DAILY\nEXDATE:20260305T090000"},
        "rule",
        "EXDATE is not supported",
    ),
    (
        {"frequency": "rrule", "rule": "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY"},
        "rule",
        "only one RRULE is supported",
    ),
    (
        {
            "frequency": "rrule",
            "rule": "DTSTART:20260401T090000Z\nFREQ=DAILY",
            "start": utc(2026, 4, 1),
        },
        "rule",
        "either as DTSTART in the rule or as start, not both",
    ),
    (
        {
            "frequency": "rrule",
            "rule": "DTSTART;TZID=Europe/Paris:20260401T090000\nFREQ=DAILY",
            "timezone": "Europe/Berlin",
        },
        "rule",
        "DTSTART is in 'Europe/Paris' but timezone is 'Europe/Berlin'",
    ),
    (
        {"frequency": "rrule", "rule": "DTSTART;TZID=Mars/Olympus:20260401T090000\nFREQ=DAILY"},
        "rule",
        "'Mars/Olympus' is not a known time zone",
    ),
    (
        {"frequency": "rrule", "rule": "DTSTART;VALUE=DATE:20260401\nFREQ=DAILY"},
        "rule",
        "DTSTART needs a time of day",
    ),
    (
        {"frequency": "rrule", "rule": "DTSTART:20260401T090030\nFREQ=DAILY"},
        "rule",
        "DTSTART must fall on a whole minute",
    ),
    ({"frequency": "cron"}, "cron", "a cron schedule needs an expression"),
    (
        {"frequency": "cron", "cron": "61 * * * *"},
        "cron",
        "'61 * * * *' is not a valid cron expression: minute must be 0-59",
    ),
    ({"frequency": "cron", "cron": "0 24 * * *"}, "cron", "hour must be 0-23"),
    ({"frequency": "cron", "cron": "0 0 0 * *"}, "cron", "day of month must be 1-31"),
    ({"frequency": "cron", "cron": "0 0 * 13 *"}, "cron", "month must be 1-12 or a name (jan-dec)"),
    (
        {"frequency": "cron", "cron": "0 0 * * 8"},
        "cron",
        "day of week must be 0-7 or a name (sun-sat)",
    ),
    ({"frequency": "cron", "cron": "0 5-2 * * *"}, "cron", "the hour range 5-2 runs backwards"),
    (
        {"frequency": "cron", "cron": "*/0 * * * *"},
        "cron",
        "the step in the minute field must be at least 1",
    ),
    (
        {"frequency": "cron", "cron": "5/10 * * * *"},
        "cron",
        "a step needs * or a range in the minute field, e.g. 5-59/10",
    ),
    (
        {"frequency": "cron", "cron": "0 0 * * * 2026"},
        "cron",
        "it needs 5 fields (minute hour day-of-month month day-of-week), not 6",
    ),
    (
        {"frequency": "cron", "cron": "0 0 L * *"},
        "cron",
        "'L' in the day of month field is not supported",
    ),
    ({"frequency": "cron", "cron": "@reboot"}, "cron", "'@reboot' is not a cron shortcut"),
    ({"frequency": "cron", "cron": "0 0 31 2 *"}, "cron", "'0 0 31 2 *' never matches a real date"),
    (
        {"frequency": "cron", "cron": "30 2 * * *", "start": utc(2026, 4, 1)},
        "start",
        "a cron schedule has no start",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), INVALID, ids=lambda value: str(value))
def test_every_validation_error_names_its_field_and_says_what_to_change(
    fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(RecurrenceError) as caught:
        parse(**fields)

    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"


# Descriptions


@pytest.mark.parametrize(
    ("recurrence", "description"),
    [
        (ROUND_TRIPS[0], "once at 2026-04-01 11:00 Europe/Berlin"),
        (parse("hourly", start=utc(2026, 3, 2, 10, 15)), "every hour at minute 15"),
        (ROUND_TRIPS[1], "every 6 hours from 2026-03-08 01:45 America/New_York"),
        (ROUND_TRIPS[2], "every 2 days at 02:30 Europe/Berlin"),
        (
            parse(
                "weekly", interval=2, weekdays=["we", "mo"], time="02:30", timezone="Europe/Berlin"
            ),
            "every 2 weeks on Mon, Wed at 02:30 Europe/Berlin",
        ),
        (
            ROUND_TRIPS[4],
            "every month on day 31 (or the last day of shorter months) at 23:59 Australia/Sydney",
        ),
        (ROUND_TRIPS[5], "every 12 months on day 7 at 00:00 UTC"),
        (
            parse("rrule", rule="FREQ=MONTHLY;BYDAY=-1FR", start=NOW),
            "rule FREQ=MONTHLY;BYDAY=-1FR, from 2026-03-01 12:00 UTC",
        ),
        (ROUND_TRIPS[8], "cron '0 0 * * 0' in Pacific/Auckland"),
    ],
)
def test_describe_says_in_a_few_words_when_a_schedule_runs(
    recurrence: Recurrence, description: str
) -> None:
    assert describe(recurrence) == description


# Properties

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Auckland",
]

starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
clocks = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(
    lambda hm: f"{hm[0]:02d}:{hm[1]:02d}"
)
RAW_RULES = [
    "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=2;BYMINUTE=30",
    "FREQ=YEARLY;BYMONTH=3,4,9,10,11;BYDAY=1SU,-1SU;BYHOUR=0,1,2,3;BYMINUTE=0,30",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SA;BYHOUR=2",
    "FREQ=HOURLY;INTERVAL=5;BYDAY=SU",
    "FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=0,30",
    "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=-1,15;BYSETPOS=1",
]


@st.composite
def recurrences(draw: st.DrawFn) -> Recurrence:
    frequency = draw(st.sampled_from([kind for kind in Frequency if kind is not Frequency.ONCE]))
    fields: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "now": datetime(1990, 1, 1, tzinfo=UTC),
    }
    if frequency is not Frequency.CRON:
        fields["start"] = draw(starts)
    if frequency in (Frequency.HOURLY, Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY):
        fields["interval"] = draw(st.integers(1, 3))
    if frequency in (Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY):
        fields["time"] = draw(clocks)
    if frequency is Frequency.WEEKLY:
        fields["weekdays"] = draw(
            st.lists(st.sampled_from(["mo", "tu", "we", "th", "fr", "sa", "su"]), min_size=1)
        )
    if frequency is Frequency.MONTHLY:
        fields["day_of_month"] = draw(st.integers(1, 31))
    if frequency is Frequency.RRULE:
        fields["rule"] = draw(st.sampled_from(RAW_RULES))
    if frequency is Frequency.CRON:
        fields["cron"] = draw(
            st.sampled_from(["30 2 * * *", "*/20 0-3 * * *", "0 1 1,31 * sun", "15 */5 * 3,10 *"])
        )
    return parse_recurrence(frequency.value, **fields)


@settings(deadline=None, max_examples=200)
@given(recurrences(), starts, st.integers(1, 12))
def test_occurrences_are_ascending_aware_utc_and_strictly_after_the_time_asked_about(
    recurrence: Recurrence, after: datetime, count: int
) -> None:
    occurrences = next_occurrences(recurrence, after, count)

    assert len(occurrences) == count
    assert all(occurrence.tzinfo is UTC for occurrence in occurrences)
    assert occurrences[0] > after
    assert all(a < b for a, b in pairwise(occurrences))
    assert next_occurrence(recurrence, after) == occurrences[0]
    assert next_occurrences(recurrence, occurrences[0], count - 1) == occurrences[1:]


@settings(deadline=None, max_examples=200)
@given(
    st.sampled_from(ZONES),
    clocks,
    st.integers(1, 3),
    starts,
    st.integers(0, 3 * 366),
    st.integers(2, 10),
)
def test_daily_runs_fall_on_the_requested_local_time_except_where_the_clock_skips_it(
    zone_name: str, clock: str, interval: int, start: datetime, days_later: int, count: int
) -> None:
    zone = ZoneInfo(zone_name)
    daily = parse_recurrence(
        "daily", interval=interval, time=clock, timezone=zone_name, start=start, now=start
    )
    hour, minute = (int(part) for part in clock.split(":"))

    occurrences = next_occurrences(daily, start + timedelta(days=days_later), count)

    days = []
    for occurrence in occurrences:
        local = occurrence.astimezone(zone)
        requested = local.replace(hour=hour, minute=minute, tzinfo=None)
        if (local.hour, local.minute) == (hour, minute):
            assert local.fold == 0
        else:
            # Only a skipped time may move, and it moves to the same instant read before the gap.
            assert (
                requested.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
                != requested
            )
            assert occurrence == requested.replace(tzinfo=zone).astimezone(UTC)
        days.append(local.date())
    assert all((b - a).days == interval for a, b in pairwise(days))


def _walk_from_the_start(recurrence: Recurrence, after: datetime, count: int) -> list[datetime]:
    """The slow, obvious answer: every wall time of the stored rule from its start, as instants."""
    _, text, _ = recurrence.to_stored()
    body = text.split("\n")[1]
    zone = ZoneInfo(recurrence.timezone)
    instants: set[datetime] = set()
    limit = after + timedelta(days=5 * 400)
    for wall in rrulestr(body, dtstart=recurrence.anchor):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant > limit:
            break
        instants.add(instant)
    return sorted(instant for instant in instants if instant > after)[:count]


@settings(deadline=None, max_examples=150)
@given(
    recurrences().filter(lambda rec: rec.frequency not in (Frequency.HOURLY, Frequency.CRON)),
    st.integers(0, 2 * 366),
    st.integers(1, 6),
)
def test_jumping_ahead_gives_the_same_runs_as_walking_the_rule_from_its_start(
    recurrence: Recurrence, days_later: int, count: int
) -> None:
    assert recurrence.anchor is not None
    after = recurrence.anchor.replace(tzinfo=UTC) + timedelta(days=days_later, minutes=7)

    assert next_occurrences(recurrence, after, count) == _walk_from_the_start(
        recurrence, after, count
    )
