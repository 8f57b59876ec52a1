"""One-line, human descriptions of recurrences for the UI, the CLI and events."""

from __future__ import annotations

from datetime import datetime

from surveyor.core.recurrence.model import FIRST_FALLBACK_DAY, Frequency, Recurrence


def describe(recurrence: Recurrence) -> str:
    """E.g. "every 2 weeks on Mon, Wed at 02:30 Europe/Berlin"."""
    zone = recurrence.timezone
    match recurrence.frequency:
        case Frequency.ONCE:
            return f"once at {_moment(recurrence.anchor)} {zone}"
        case Frequency.HOURLY:
            assert recurrence.anchor is not None
            if recurrence.interval == 1:
                return f"every hour at minute {recurrence.anchor.minute}"
            return f"every {recurrence.interval} hours from {_moment(recurrence.anchor)} {zone}"
        case Frequency.DAILY | Frequency.WEEKLY | Frequency.MONTHLY:
            assert recurrence.time_of_day is not None
            clock = f"at {recurrence.time_of_day:%H:%M} {zone}"
            return f"{_every(recurrence)} {_which_days(recurrence)}{clock}"
        case Frequency.RRULE:
            return f"rule {recurrence.rule}, from {_moment(recurrence.anchor)} {zone}"
        case Frequency.CRON:
            return f"cron '{recurrence.cron}' in {zone}"


def _every(recurrence: Recurrence) -> str:
    unit = {Frequency.DAILY: "day", Frequency.WEEKLY: "week", Frequency.MONTHLY: "month"}[
        recurrence.frequency
    ]
    if recurrence.interval == 1:
        return f"every {unit}"
    return f"every {recurrence.interval} {unit}s"


def _which_days(recurrence: Recurrence) -> str:
    if recurrence.frequency is Frequency.WEEKLY:
        return f"on {', '.join(day.label for day in recurrence.weekdays)} "
    if recurrence.frequency is Frequency.MONTHLY:
        day = recurrence.day_of_month
        assert day is not None
        if day >= FIRST_FALLBACK_DAY:
            return f"on day {day} (or the last day of shorter months) "
        return f"on day {day} "
    return ""


def _moment(wall: datetime | None) -> str:
    assert wall is not None
    return f"{wall:%Y-%m-%d %H:%M}"
