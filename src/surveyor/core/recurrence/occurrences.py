"""When a recurrence runs next: aware UTC instants, computed without walking from the anchor.

Rules are expanded in naive local wall time (dateutil for RRULEs, croniter for cron) and the
wall times are then turned into instants under the DST rules of `wall_clock`. Hourly schedules
count real elapsed hours instead, so they neither repeat nor skip an hour when clocks change.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from croniter import CroniterError, croniter
from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, weekday

from surveyor.core.recurrence.model import Frequency, Recurrence
from surveyor.core.recurrence.rrule_syntax import ByDay, RuleParts
from surveyor.core.recurrence.wall_clock import (
    load_zone,
    ordered_instants,
    search_floor,
    to_instant,
)

#: How many occurrences the UI and API show before a schedule is saved.
PREVIEW_COUNT = 5

#: A rule with no occurrence within this many years (at least) counts as exhausted.
HORIZON_YEARS = 100

#: The Gregorian calendar repeats exactly every 400 years (146097 days, a whole number of weeks).
_CALENDAR_CYCLE_YEARS = 400
_LAST_YEAR = 9999

_DATEUTIL_FREQ = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
}


def next_occurrences(recurrence: Recurrence, after: datetime, count: int) -> list[datetime]:
    """Up to `count` occurrences strictly after `after`, as ascending aware UTC datetimes."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be an aware datetime")
    if count < 1:
        return []
    after = after.astimezone(UTC)
    zone = load_zone(recurrence.timezone)
    if recurrence.frequency is Frequency.HOURLY:
        return _elapsed_hours(recurrence, after, count)
    if recurrence.frequency is Frequency.ONCE:
        assert recurrence.anchor is not None
        instant = to_instant(recurrence.anchor, zone)
        return [instant] if instant > after else []
    floor = search_floor(after, zone)
    if recurrence.frequency is Frequency.CRON:
        assert recurrence.cron is not None
        walls = _cron_walls(recurrence.cron, floor)
        until = None
    else:
        plan = _plan(recurrence)
        walls = plan.walls(floor)
        until = plan.until
    found: list[datetime] = []
    for instant in ordered_instants(walls, zone):
        if until is not None and instant > until:
            break
        if instant > after:
            found.append(instant)
            if len(found) == count:
                break
    return found


def next_occurrence(recurrence: Recurrence, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after`, or None once the recurrence is exhausted."""
    found = next_occurrences(recurrence, after, 1)
    return found[0] if found else None


def preview(recurrence: Recurrence, now: datetime) -> list[datetime]:
    """The occurrences shown before a schedule is saved."""
    return next_occurrences(recurrence, now, PREVIEW_COUNT)


def _elapsed_hours(recurrence: Recurrence, after: datetime, count: int) -> list[datetime]:
    assert recurrence.anchor is not None
    first = to_instant(recurrence.anchor, load_zone(recurrence.timezone))
    step = timedelta(hours=recurrence.interval)
    skipped = 0 if after < first else (after - first) // step + 1
    return [first + (skipped + index) * step for index in range(count)]


@dataclass(frozen=True, slots=True)
class _RulePlan:
    """An RRULE ready for dateutil: every default it would take from DTSTART made explicit, so
    the start can move forward by whole periods without changing what the rule means."""

    parts: RuleParts
    anchor: datetime
    arguments: dict[str, Any]

    @property
    def until(self) -> datetime | None:
        return self.parts.until

    def walls(self, floor: datetime) -> Iterator[datetime]:
        """The rule's wall times from `floor` on (some earlier ones may come too)."""
        start = _period_start(self.parts, self.anchor, floor)
        # dateutil walks period by period until it finds a match or passes year 9999. Moving the
        # search into the last centuries by whole 400-year cycles (same calendar, same weekdays)
        # lets year 9999 bound a rule that never matches.
        base_year = max(start.year, floor.year) + HORIZON_YEARS
        shift = max(0, (_LAST_YEAR - base_year) // _CALENDAR_CYCLE_YEARS) * _CALENDAR_CYCLE_YEARS
        try:
            for shifted in rrule(dtstart=start.replace(year=start.year + shift), **self.arguments):
                wall: datetime = shifted.replace(year=shifted.year - shift)
                if wall >= floor:
                    yield wall
        except (ValueError, OverflowError):
            return


@lru_cache(maxsize=16384)
def _plan(recurrence: Recurrence) -> _RulePlan:
    assert recurrence.anchor is not None
    parts = recurrence.rule_parts()
    anchor = recurrence.anchor
    freq = parts.freq
    byhour = parts.byhour or ((anchor.hour,) if freq != "HOURLY" else ())
    byminute = parts.byminute or (anchor.minute,)
    bymonth, bymonthday, byday = parts.bymonth, parts.bymonthday, parts.byday
    if not (parts.byweekno or parts.byyearday or bymonthday or byday):
        if freq == "YEARLY":
            bymonth = bymonth or (anchor.month,)
            bymonthday = (anchor.day,)
        elif freq == "MONTHLY":
            bymonthday = (anchor.day,)
        elif freq == "WEEKLY":
            byday = (ByDay(anchor.weekday()),)
    arguments: dict[str, Any] = {
        "freq": _DATEUTIL_FREQ[freq],
        "interval": parts.interval,
        "wkst": parts.wkst or 0,
        "count": parts.count,
        "bysetpos": parts.bysetpos or None,
        "bymonth": bymonth or None,
        "bymonthday": bymonthday or None,
        "byyearday": parts.byyearday or None,
        "byweekno": parts.byweekno or None,
        "byweekday": tuple(weekday(day.weekday, day.ordinal or None) for day in byday) or None,
        "byhour": byhour or None,
        "byminute": byminute,
        "bysecond": (0,),
        "cache": False,
    }
    return _RulePlan(parts, anchor, arguments)


def _period_start(parts: RuleParts, anchor: datetime, floor: datetime) -> datetime:
    """The latest start of one of the rule's periods (counted from the anchor) before `floor`.

    The anchor itself if `floor` is still in the anchor's period, or if the rule has a COUNT
    (which counts occurrences from the anchor, so the walk must start there).
    """
    if parts.count is not None or floor <= anchor:
        return anchor
    interval = parts.interval
    match parts.freq:
        case "YEARLY":
            periods = (floor.year - anchor.year) // interval
            start = datetime(anchor.year + periods * interval, 1, 1) if periods else anchor
        case "MONTHLY":
            months = (floor.year - anchor.year) * 12 + floor.month - anchor.month
            periods = months // interval
            index = anchor.year * 12 + anchor.month - 1 + periods * interval
            start = datetime(index // 12, index % 12 + 1, 1) if periods else anchor
        case "WEEKLY":
            week_start = datetime.combine(anchor.date(), datetime.min.time()) - timedelta(
                days=(anchor.weekday() - (parts.wkst or 0)) % 7
            )
            periods = (floor - week_start).days // 7 // interval
            start = week_start + timedelta(weeks=periods * interval) if periods else anchor
        case "DAILY":
            day_start = datetime.combine(anchor.date(), datetime.min.time())
            periods = (floor - day_start).days // interval
            start = day_start + timedelta(days=periods * interval) if periods else anchor
        case _:
            hour_start = anchor.replace(minute=0, second=0, microsecond=0)
            periods = (floor - hour_start) // timedelta(hours=interval)
            start = hour_start + timedelta(hours=periods * interval) if periods else anchor
    return start


@lru_cache(maxsize=4096)
def _cron_prototype(expression: str) -> Any:
    return croniter(expression, datetime(2000, 1, 1), ret_type=datetime)


def _cron_walls(expression: str, floor: datetime) -> Iterator[datetime]:
    """The expression's matching wall times from `floor` on; croniter gives up after 50 years."""
    matcher = copy.copy(_cron_prototype(expression))
    matcher.set_current(floor - timedelta(seconds=1), force=True)
    while True:
        try:
            wall: datetime = matcher.get_next(datetime)
        except (CroniterError, ValueError, OverflowError):
            return
        yield wall
