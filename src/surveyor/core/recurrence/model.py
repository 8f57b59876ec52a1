"""The recurrence of a task: what the user chose, and the canonical text the tasks table stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import time as TimeOfDay
from enum import IntEnum, StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from surveyor.core.recurrence.cron_syntax import normalize_cron
from surveyor.core.recurrence.rrule_syntax import (
    ByDay,
    RuleParts,
    RuleSyntaxError,
    format_stamp,
    parse_rule_body,
    split_rule_text,
)
from surveyor.core.recurrence.wall_clock import load_zone


class Frequency(StrEnum):
    ONCE = "once"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    RRULE = "rrule"
    CRON = "cron"


class Weekday(IntEnum):
    MO = 0
    TU = 1
    WE = 2
    TH = 3
    FR = 4
    SA = 5
    SU = 6

    @property
    def label(self) -> str:
        return ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[self]


#: The first day of month from which a monthly schedule falls back to the month's last day.
FIRST_FALLBACK_DAY = 29


class RecurrenceError(ValueError):
    """A recurrence that cannot be accepted: `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated recurrence; build it with `parse_recurrence` or `Recurrence.from_stored`.

    `anchor` is the first allowed occurrence as a naive local wall time in `timezone`, on a whole
    minute (None for cron, which has no anchor). `rule` is the canonical RRULE body of a raw rule,
    `cron` the normalised expression of a cron schedule.
    """

    frequency: Frequency
    timezone: str = "UTC"
    anchor: datetime | None = None
    interval: int = 1
    time_of_day: TimeOfDay | None = None
    weekdays: tuple[Weekday, ...] = ()
    day_of_month: int | None = None
    rule: str | None = None
    cron: str | None = None

    def rule_parts(self) -> RuleParts:
        """The RRULE this recurrence stands for (every frequency but cron)."""
        match self.frequency:
            case Frequency.ONCE:
                return RuleParts("DAILY", count=1)
            case Frequency.HOURLY:
                return RuleParts("HOURLY", interval=self.interval)
            case Frequency.DAILY | Frequency.WEEKLY | Frequency.MONTHLY:
                assert self.time_of_day is not None
                month_days = _month_days(self.day_of_month)
                return RuleParts(
                    self.frequency.value.upper(),
                    self.interval,
                    bymonthday=month_days,
                    byday=tuple(ByDay(day) for day in self.weekdays),
                    byhour=(self.time_of_day.hour,),
                    byminute=(self.time_of_day.minute,),
                    bysetpos=(-1,) if len(month_days) > 1 else (),
                )
            case Frequency.RRULE:
                assert self.rule is not None
                return _parse_canonical_body(self.rule)
            case Frequency.CRON:
                raise ValueError("a cron schedule is not an RRULE")

    def to_stored(self) -> tuple[str, str, str]:
        """(recur_frequency, recur_rule, timezone) as the tasks table stores them.

        The rule is the cron expression for cron, otherwise "DTSTART;TZID=<zone>:<anchor>" and
        "RRULE:<rule>" on two lines.
        """
        if self.frequency is Frequency.CRON:
            assert self.cron is not None
            return (self.frequency.value, self.cron, self.timezone)
        assert self.anchor is not None
        text = (
            f"DTSTART;TZID={self.timezone}:{format_stamp(self.anchor)}\n"
            f"RRULE:{self.rule_parts().format()}"
        )
        return (self.frequency.value, text, self.timezone)

    @classmethod
    def from_stored(cls, frequency: str, rule: str, timezone: str) -> Recurrence:
        """The recurrence `to_stored` wrote; RecurrenceError naming the column if it is not one."""
        return _from_stored(frequency, rule, timezone)


def _month_days(day: int | None) -> tuple[int, ...]:
    """BYMONTHDAY for a day of month; from the 29th on, 28..day with BYSETPOS=-1 (the latest)."""
    if day is None:
        return ()
    if day < FIRST_FALLBACK_DAY:
        return (day,)
    return tuple(range(FIRST_FALLBACK_DAY - 1, day + 1))


@lru_cache(maxsize=4096)
def _parse_canonical_body(body: str) -> RuleParts:
    # A canonical body has a UTC UNTIL if any, so the zone never matters here.
    return parse_rule_body(body, ZoneInfo("UTC"))


@lru_cache(maxsize=16384)
def _from_stored(frequency: str, rule: str, timezone: str) -> Recurrence:
    try:
        kind = Frequency(frequency)
    except ValueError:
        raise RecurrenceError(
            "recur_frequency", f"{frequency!r} is not a recurrence frequency"
        ) from None
    try:
        load_zone(timezone)
    except ValueError as error:
        raise RecurrenceError("timezone", str(error)) from None
    try:
        recurrence = _rebuild(kind, rule, timezone)
    except ValueError as error:
        raise RecurrenceError("recur_rule", f"{rule!r} cannot be read: {error}") from None
    if recurrence.to_stored() != (frequency, rule, timezone):
        raise RecurrenceError("recur_rule", f"{rule!r} is not a canonical {frequency} rule")
    return recurrence


def _rebuild(kind: Frequency, rule: str, timezone: str) -> Recurrence:
    if kind is Frequency.CRON:
        return Recurrence(kind, timezone, cron=normalize_cron(rule))
    start, body = split_rule_text(rule)
    if start is None:
        raise RuleSyntaxError(f"it must start with DTSTART;TZID={timezone}:<local time>")
    parts = _parse_canonical_body(body)
    anchor = start.wall
    if kind is Frequency.RRULE:
        return Recurrence(kind, timezone, anchor, rule=parts.format())
    if kind in (Frequency.ONCE, Frequency.HOURLY):
        return Recurrence(kind, timezone, anchor, parts.interval)
    if not (parts.byhour and parts.byminute):
        raise RuleSyntaxError("it has no BYHOUR and BYMINUTE for the time of day")
    if kind is Frequency.MONTHLY and not parts.bymonthday:
        raise RuleSyntaxError("it has no BYMONTHDAY for the day of month")
    return Recurrence(
        kind,
        timezone,
        anchor,
        parts.interval,
        TimeOfDay(parts.byhour[0], parts.byminute[0]),
        weekdays=tuple(Weekday(day.weekday) for day in parts.byday),
        day_of_month=max(parts.bymonthday) if kind is Frequency.MONTHLY else None,
    )
