"""How the words of a query become numbers, booleans, instants and ages.

Times are either absolute or an age:
- A date (`2026-11-01`) stands for that whole UTC day; a date-time stands for its minute,
  second or microsecond, whichever precision it was written with. Without an offset
  (`Z`, `+02:00`) it is UTC. A `T`, `t` or (quoted) space separates date and time.
- An age is a whole number and a unit, an optional space between: s, sec, second(s);
  m, min, minute(s); h, hr, hour(s); d, day(s); w, wk, week(s); mo, month(s) = 30 days;
  y, yr, year(s) = 365 days. Units are case-insensitive; `m` is minutes, `mo` months.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from surveyor.core.search.errors import SearchError

#: Signed 64-bit range: what every database integer column and driver accepts.
MIN_NUMBER = -(2**63)
MAX_NUMBER = 2**63 - 1

_NUMBER = re.compile(r"-?[0-9]+")
_BOOLEANS = {"t": True, "true": True, "f": False, "false": False}

_AGE = re.compile(r"([0-9]{1,12}) ?([a-z]+)", re.IGNORECASE | re.ASCII)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_AGE_UNITS: dict[str, timedelta] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), _SECOND),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), _DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), timedelta(weeks=1)),
    **dict.fromkeys(("mo", "month", "months"), 30 * _DAY),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * _DAY),
}

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Interval:
    """The instants an absolute time stands for: `start <= t < end`, in UTC."""

    start: datetime
    end: datetime


def parse_number(word: str, position: int) -> int:
    """A whole number within the signed 64-bit range."""
    if not _NUMBER.fullmatch(word):
        raise SearchError(f"'{word}' is not a number (at position {position})", position)
    number = int(word)
    if not MIN_NUMBER <= number <= MAX_NUMBER:
        raise SearchError(f"'{word}' is too large a number (at position {position})", position)
    return number


def parse_bool(word: str, position: int) -> bool:
    """`t`, `true`, `f` or `false`, in any case."""
    try:
        return _BOOLEANS[word.lower()]
    except KeyError:
        raise SearchError(
            f"'{word}' is not a boolean; use true or false (at position {position})", position
        ) from None


def parse_age(word: str, position: int) -> timedelta | None:
    """The age a word like `30m` or `3days` stands for, or None if it is not an age."""
    match = _AGE.fullmatch(word)
    if match is None:
        return None
    unit = _AGE_UNITS.get(match.group(2).lower())
    if unit is None:
        raise SearchError(
            f"unknown time unit '{match.group(2)}' in '{word}' (at position {position});"
            " use s, m, h, d, w, mo or y",
            position,
        )
    try:
        return int(match.group(1)) * unit
    except OverflowError:
        raise SearchError(f"age '{word}' is too long (at position {position})", position) from None


def before_now(now: datetime, age: timedelta, word: str, position: int) -> datetime:
    """The instant `age` before `now`."""
    try:
        return now - age
    except OverflowError:
        raise SearchError(f"age '{word}' is too long (at position {position})", position) from None


def parse_instant(word: str, position: int) -> Interval | None:
    """The UTC interval a date or date-time stands for, or None if the word is neither."""
    try:
        if date_match := _DATE.fullmatch(word):
            year, month, day = (int(part) for part in date_match.groups())
            start = datetime(year, month, day, tzinfo=UTC)
            return Interval(start, _later(start, _DAY))
        if time_match := _DATE_TIME.fullmatch(word):
            return _date_time_interval(time_match)
    except ValueError:
        raise SearchError(
            f"'{word}' is not a valid date (at position {position})", position
        ) from None
    except OverflowError:
        raise SearchError(f"'{word}' is out of range (at position {position})", position) from None
    return None


def _date_time_interval(match: re.Match[str]) -> Interval:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    zone = UTC if offset is None or offset in "Zz" else _offset_zone(offset)
    start = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        int((fraction or "0").ljust(6, "0")[:6]),
        tzinfo=zone,
    ).astimezone(UTC)
    if fraction is not None:
        precision = timedelta(microseconds=1)
    elif second is not None:
        precision = _SECOND
    else:
        precision = timedelta(minutes=1)
    return Interval(start, _later(start, precision))


def _offset_zone(offset: str) -> timezone:
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if minutes >= 60:
        raise ValueError("offset minutes out of range")
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _later(start: datetime, step: timedelta) -> datetime:
    try:
        return start + step
    except OverflowError:
        return _LATEST
