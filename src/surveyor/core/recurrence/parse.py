"""Turn what the API receives into a validated Recurrence, or a RecurrenceError naming the field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as TimeOfDay
from zoneinfo import ZoneInfo

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.recurrence.cron_syntax import CronSyntaxError, normalize_cron
from surveyor.core.recurrence.model import Frequency, Recurrence, RecurrenceError, Weekday
from surveyor.core.recurrence.occurrences import next_occurrence
from surveyor.core.recurrence.rrule_syntax import (
    MAX_INTERVAL,
    RuleStart,
    RuleSyntaxError,
    parse_rule_body,
    split_rule_text,
)
from surveyor.core.recurrence.wall_clock import load_zone, to_instant, to_wall

_WEEKDAY_NAMES = {
    name: day
    for day in Weekday
    for name in (
        day.name.lower(),
        day.label.lower(),
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[day],
    )
}

_FIELDS_BY_FREQUENCY = {
    "interval": {Frequency.HOURLY, Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY},
    "time": {Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY},
    "weekdays": {Frequency.WEEKLY},
    "day_of_month": {Frequency.MONTHLY},
    "rule": {Frequency.RRULE},
    "cron": {Frequency.CRON},
}

_ONE_MINUTE = timedelta(minutes=1)


def parse_recurrence(
    frequency: str,
    *,
    interval: int | None = None,
    time: str | None = None,
    weekdays: Sequence[str] | None = None,
    day_of_month: int | None = None,
    rule: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    start: datetime | None = None,
    now: datetime | None = None,
) -> Recurrence:
    """Validate a recurrence as the API receives it; RecurrenceError names the field at fault.

    `start` is the anchor and first allowed occurrence (default `now`, which defaults to the
    current time); it is moved forward to a whole minute. `time` defaults to the start's local
    time of day. A recurrence with no occurrence after `now` is refused.
    """
    if now is None:
        now = SYSTEM_CLOCK.now()
    kind = _frequency(frequency)
    given = {
        "interval": interval not in (None, 1),
        "time": time is not None,
        "weekdays": bool(weekdays),
        "day_of_month": day_of_month is not None,
        "rule": bool(rule),
        "cron": bool(cron),
    }
    for field, is_given in given.items():
        if is_given and kind not in _FIELDS_BY_FREQUENCY[field]:
            raise RecurrenceError(field, _not_applicable(field, kind))
    if start is not None and (start.tzinfo is None or start.utcoffset() is None):
        raise RecurrenceError("start", "must include a time zone or UTC offset")

    if kind is Frequency.RRULE:
        recurrence = _raw_rule(rule, timezone, start, now)
    elif kind is Frequency.CRON:
        recurrence = _cron(cron, timezone, start)
    else:
        zone_name = _zone_name(timezone)
        zone = load_zone(zone_name)
        if kind is Frequency.ONCE and start is None:
            raise RecurrenceError("start", "a once schedule needs a start date and time")
        anchor = _anchor_for(start or now, zone)
        recurrence = Recurrence(
            kind,
            zone_name,
            anchor,
            _interval(interval),
            _time_of_day(time, anchor) if kind in _FIELDS_BY_FREQUENCY["time"] else None,
            _weekdays(weekdays) if kind is Frequency.WEEKLY else (),
            _day_of_month(day_of_month) if kind is Frequency.MONTHLY else None,
        )
    _require_future(recurrence, now)
    return recurrence


def _anchor_for(start: datetime, zone: ZoneInfo) -> datetime:
    """The local wall time of `start` moved forward to a whole minute, never naming an earlier
    instant (a start in the second pass of a repeated hour moves to the hour's end)."""
    wall = to_wall(start, zone)
    if wall.second or wall.microsecond:
        wall = wall.replace(second=0, microsecond=0) + _ONE_MINUTE
    for _ in range(24 * 60):
        if to_instant(wall, zone) >= start:
            break
        wall += _ONE_MINUTE
    return wall


def _frequency(text: str) -> Frequency:
    try:
        return Frequency(text.strip().lower() if isinstance(text, str) else text)
    except ValueError:
        known = ", ".join(kind.value for kind in Frequency)
        raise RecurrenceError("frequency", f"{text!r} is not a frequency; use {known}") from None


def _not_applicable(field: str, kind: Frequency) -> str:
    if field == "interval" and kind is Frequency.RRULE:
        return "does not apply to a raw rule; put INTERVAL in the rule"
    if field == "interval" and kind is Frequency.CRON:
        return "does not apply to cron; use a step such as */2 in the expression"
    allowed = [other.value for other in Frequency if other in _FIELDS_BY_FREQUENCY[field]]
    names = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
    return f"applies only to {names} schedules, not {kind.value}"


def _zone_name(timezone: str | None) -> str:
    name = "UTC" if timezone is None else timezone.strip()
    try:
        load_zone(name)
    except ValueError as error:
        raise RecurrenceError("timezone", str(error)) from None
    return name


def _interval(value: int | None) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERVAL:
        raise RecurrenceError(
            "interval", f"must be a whole number from 1 to {MAX_INTERVAL}, not {value!r}"
        )
    return value


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def _time_of_day(text: str | None, anchor: datetime) -> TimeOfDay:
    if text is None:
        return anchor.time()
    match = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise RecurrenceError(
            "time", f"{text!r} is not a time of day; use 24-hour HH:MM, e.g. 02:30"
        )
    return TimeOfDay(int(match.group(1)), int(match.group(2)))


def _weekdays(names: Sequence[str] | None) -> tuple[Weekday, ...]:
    if isinstance(names, str):
        raise RecurrenceError("weekdays", 'must be a list such as ["mo", "we", "fr"]')
    if not names:
        raise RecurrenceError("weekdays", "weekly needs at least one weekday")
    days: set[Weekday] = set()
    for name in names:
        day = _WEEKDAY_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
        if day is None:
            raise RecurrenceError(
                "weekdays", f"{name!r} is not a weekday; use mo, tu, we, th, fr, sa, su"
            )
        days.add(day)
    return tuple(sorted(days))


def _day_of_month(value: int | None) -> int:
    if value is None:
        raise RecurrenceError("day_of_month", "monthly needs a day of month (1-31)")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise RecurrenceError("day_of_month", f"must be a day from 1 to 31, not {value!r}")
    return value


def _raw_rule(
    text: str | None, timezone: str | None, start: datetime | None, now: datetime
) -> Recurrence:
    if not text or not text.strip():
        raise RecurrenceError("rule", "an rrule schedule needs a rule, e.g. FREQ=WEEKLY;BYDAY=MO")
    try:
        rule_start, body = split_rule_text(text)
    except RuleSyntaxError as error:
        raise RecurrenceError("rule", str(error)) from None
    if rule_start is not None and rule_start.tzid is not None:
        if timezone is not None and timezone.strip() != rule_start.tzid:
            raise RecurrenceError(
                "rule", f"DTSTART is in {rule_start.tzid!r} but timezone is {timezone!r}"
            )
        try:
            load_zone(rule_start.tzid)
        except ValueError as error:
            raise RecurrenceError("rule", f"DTSTART TZID: {error}") from None
        timezone = rule_start.tzid
    zone_name = _zone_name(timezone)
    zone = load_zone(zone_name)
    if rule_start is not None and start is not None:
        raise RecurrenceError(
            "rule", "give the first occurrence either as DTSTART in the rule or as start, not both"
        )
    anchor = _rule_anchor(rule_start, zone) if rule_start else _anchor_for(start or now, zone)
    try:
        parts = parse_rule_body(body, zone)
    except RuleSyntaxError as error:
        raise RecurrenceError("rule", str(error)) from None
    return Recurrence(Frequency.RRULE, zone_name, anchor, rule=parts.format())


def _rule_anchor(rule_start: RuleStart, zone: ZoneInfo) -> datetime:
    if rule_start.utc:
        return _anchor_for(rule_start.wall.replace(tzinfo=UTC), zone)
    return rule_start.wall


def _cron(text: str | None, timezone: str | None, start: datetime | None) -> Recurrence:
    if not text or not text.strip():
        raise RecurrenceError("cron", "a cron schedule needs an expression, e.g. '30 2 * * 1-5'")
    if start is not None:
        raise RecurrenceError(
            "start", "a cron schedule has no start; delay the first run with the task's start_time"
        )
    try:
        expression = normalize_cron(text)
    except CronSyntaxError as error:
        raise RecurrenceError("cron", str(error)) from None
    return Recurrence(Frequency.CRON, _zone_name(timezone), cron=expression)


def _require_future(recurrence: Recurrence, now: datetime) -> None:
    if next_occurrence(recurrence, now) is not None:
        return
    match recurrence.frequency:
        case Frequency.RRULE:
            raise RecurrenceError(
                "rule",
                f"{recurrence.rule!r} has no occurrence after now; check COUNT, UNTIL and start",
            )
        case Frequency.CRON:
            raise RecurrenceError("cron", f"{recurrence.cron!r} never matches a real date")
        case Frequency.ONCE:
            raise RecurrenceError("start", "is in the past; a once schedule needs a future start")
        case _:
            raise RecurrenceError("start", "leaves no occurrence after now")
