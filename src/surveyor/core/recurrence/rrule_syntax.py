"""RFC 5545 recurrence rules as text: parsed, checked and written back in one canonical form.

Only what the scheduler can honour is accepted. Everything else is refused with a message that
names the rule part at fault, so the API can show it next to the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from surveyor.core.recurrence.wall_clock import to_instant

WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

#: Rule frequencies the scheduler runs, coarsest first; sub-hourly schedules are cron's job.
SUPPORTED_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")

MAX_INTERVAL = 1000
#: A COUNT rule is walked from its start on every evaluation, so it is kept short.
MAX_COUNT = 1000

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class RuleSyntaxError(ValueError):
    """A rule the scheduler cannot honour; the message says what to change."""


@dataclass(frozen=True, slots=True, order=True)
class ByDay:
    """One BYDAY value: a weekday, optionally the n-th (or n-th last) of the month or year."""

    weekday: int
    ordinal: int = 0

    def __str__(self) -> str:
        code = WEEKDAY_CODES[self.weekday]
        return f"{self.ordinal}{code}" if self.ordinal else code


@dataclass(frozen=True, slots=True)
class RuleParts:
    """The parts of one RRULE; empty tuples and None mean the part is absent."""

    freq: str
    interval: int = 1
    count: int | None = None
    until: datetime | None = None
    bymonth: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byday: tuple[ByDay, ...] = ()
    byhour: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    bysecond: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()
    wkst: int | None = None

    def format(self) -> str:
        """The canonical text of the rule, without the "RRULE:" prefix."""
        items = [f"FREQ={self.freq}"]
        if self.interval != 1:
            items.append(f"INTERVAL={self.interval}")
        if self.count is not None:
            items.append(f"COUNT={self.count}")
        if self.until is not None:
            items.append(f"UNTIL={format_stamp(self.until)}Z")
        for name, values in (
            ("BYMONTH", self.bymonth),
            ("BYWEEKNO", self.byweekno),
            ("BYYEARDAY", self.byyearday),
            ("BYMONTHDAY", self.bymonthday),
            ("BYDAY", self.byday),
            ("BYHOUR", self.byhour),
            ("BYMINUTE", self.byminute),
            ("BYSECOND", self.bysecond),
            ("BYSETPOS", self.bysetpos),
        ):
            if values:
                items.append(f"{name}={','.join(str(value) for value in values)}")
        if self.wkst is not None:
            items.append(f"WKST={WEEKDAY_CODES[self.wkst]}")
        return ";".join(items)


@dataclass(frozen=True, slots=True)
class RuleStart:
    """A DTSTART line: a wall time, in a named zone, in UTC, or floating (neither)."""

    wall: datetime
    tzid: str | None = None
    utc: bool = False


def format_stamp(moment: datetime) -> str:
    """An RFC 5545 date-time stamp (YYYYMMDDTHHMMSS), without any zone marker."""
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_DATE_ONLY = re.compile(r"\d{8}")


def _parse_stamp(name: str, text: str) -> tuple[datetime, bool]:
    """A naive datetime and whether it carried the UTC marker "Z"."""
    match = _STAMP.fullmatch(text)
    if match is None:
        if _DATE_ONLY.fullmatch(text):
            raise RuleSyntaxError(
                f"{name} needs a time of day as well as a date, e.g. {text}T235900Z"
            )
        raise RuleSyntaxError(f"{name} {text!r} is not a date-time like 20261231T235900Z")
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise RuleSyntaxError(f"{name} {text} is not a real date and time") from None
    return moment, bool(match.group(7))


def split_rule_text(text: str) -> tuple[RuleStart | None, str]:
    """Split rule text into its optional DTSTART line and its RRULE body (prefix removed)."""
    start: RuleStart | None = None
    body: str | None = None
    for raw_line in text.strip().splitlines():
        line = raw_line.strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("DTSTART"):
            if start is not None:
                raise RuleSyntaxError("the rule has more than one DTSTART line")
            start = _parse_dtstart(line)
        elif upper.startswith("RRULE:") or ":" not in line:
            if body is not None:
                raise RuleSyntaxError("only one RRULE is supported; combine or split the schedule")
            body = line[len("RRULE:") :] if upper.startswith("RRULE:") else line
        else:
            name = re.split(r"[;:]", line, maxsplit=1)[0].upper()
            raise RuleSyntaxError(
                f"{name} is not supported; give one RRULE, optionally preceded by DTSTART"
            )
    if not body:
        raise RuleSyntaxError("the rule is empty; write e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9")
    return start, body


def _parse_dtstart(line: str) -> RuleStart:
    head, separator, value = line.partition(":")
    if not separator:
        raise RuleSyntaxError(f"{line!r} is not a DTSTART line like DTSTART:20260301T090000")
    tzid: str | None = None
    for param in head.split(";")[1:]:
        name, _, param_value = param.partition("=")
        name = name.strip().upper()
        if name == "TZID":
            tzid = param_value.strip()
        elif name == "VALUE" and param_value.strip().upper() == "DATE-TIME":
            continue
        elif name == "VALUE":
            raise RuleSyntaxError("DTSTART needs a time of day as well as a date")
        else:
            raise RuleSyntaxError(f"DTSTART parameter {name} is not supported; use TZID only")
    wall, utc = _parse_stamp("DTSTART", value.strip().upper())
    if utc and tzid:
        raise RuleSyntaxError("DTSTART gives both a TZID and a UTC time; keep one of them")
    if wall.second:
        raise RuleSyntaxError("DTSTART must fall on a whole minute; schedules run to the minute")
    return RuleStart(wall=wall, tzid=tzid, utc=utc)


def _int_values(name: str, text: str, low: int, high: int, *, negative: bool) -> tuple[int, ...]:
    allowed = f"{low} to {high}" + (f" or -{high} to -{max(low, 1)}" if negative else "")
    values: set[int] = set()
    for item in text.split(","):
        if not re.fullmatch(r"[+-]?\d{1,4}", item):
            raise RuleSyntaxError(f"{name} takes whole numbers ({allowed}), not {item!r}")
        value = int(item)
        in_range = low <= value <= high or (negative and -high <= value <= -max(low, 1))
        if not in_range:
            raise RuleSyntaxError(f"{name} values must be {allowed}, not {item}")
        values.add(value)
    return tuple(sorted(values))


_BYDAY_ITEM = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


def _byday_values(text: str) -> tuple[ByDay, ...]:
    values: set[ByDay] = set()
    for item in text.split(","):
        match = _BYDAY_ITEM.fullmatch(item)
        if match is None:
            raise RuleSyntaxError(f"BYDAY values look like MO, 2TU or -1FR, not {item!r}")
        ordinal = int(match.group(1)) if match.group(1) else 0
        if match.group(1) and not 1 <= abs(ordinal) <= 53:
            raise RuleSyntaxError(f"BYDAY position must be 1 to 53 or -53 to -1, not {item!r}")
        values.add(ByDay(WEEKDAY_CODES.index(match.group(2)), ordinal))
    return tuple(sorted(values))


def _positive(name: str, text: str, high: int) -> int:
    if not re.fullmatch(r"\d{1,9}", text) or not 1 <= int(text) <= high:
        raise RuleSyntaxError(f"{name} must be a whole number from 1 to {high}, not {text!r}")
    return int(text)


def _weekday(name: str, text: str) -> int:
    if text not in WEEKDAY_CODES:
        raise RuleSyntaxError(f"{name} must be one of {', '.join(WEEKDAY_CODES)}, not {text!r}")
    return WEEKDAY_CODES.index(text)


_INT_PARTS: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}

_KNOWN_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_INT_PARTS})


def parse_rule_body(text: str, zone: ZoneInfo) -> RuleParts:
    """Parse and check an RRULE body; a floating UNTIL is read as a wall time in `zone`."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    raw: dict[str, str] = {}
    for chunk in body.split(";"):
        if not chunk.strip():
            continue
        name, separator, value = chunk.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not separator or not name or not value:
            raise RuleSyntaxError(f"{chunk.strip()!r} is not NAME=VALUE, e.g. FREQ=WEEKLY")
        if name not in _KNOWN_PARTS:
            raise RuleSyntaxError(f"{name} is not a rule part Surveyor supports")
        if name in raw:
            raise RuleSyntaxError(f"{name} appears more than once")
        raw[name] = value
    if "FREQ" not in raw:
        raise RuleSyntaxError("the rule needs FREQ, e.g. FREQ=WEEKLY;BYDAY=MO")
    ints = {
        name: _int_values(name, raw[name], low, high, negative=negative)
        for name, (low, high, negative) in _INT_PARTS.items()
        if name in raw
    }
    parts = RuleParts(
        freq=_frequency(raw["FREQ"]),
        interval=_positive("INTERVAL", raw["INTERVAL"], MAX_INTERVAL) if "INTERVAL" in raw else 1,
        count=_positive("COUNT", raw["COUNT"], MAX_COUNT) if "COUNT" in raw else None,
        until=_until(raw["UNTIL"], lambda wall: to_instant(wall, zone)) if "UNTIL" in raw else None,
        bymonth=ints.get("BYMONTH", ()),
        byweekno=ints.get("BYWEEKNO", ()),
        byyearday=ints.get("BYYEARDAY", ()),
        bymonthday=ints.get("BYMONTHDAY", ()),
        byday=_byday_values(raw["BYDAY"]) if "BYDAY" in raw else (),
        byhour=ints.get("BYHOUR", ()),
        byminute=ints.get("BYMINUTE", ()),
        bysecond=ints.get("BYSECOND", ()),
        bysetpos=ints.get("BYSETPOS", ()),
        wkst=_weekday("WKST", raw["WKST"]) if "WKST" in raw else None,
    )
    _check_combinations(parts)
    return parts


def _frequency(text: str) -> str:
    if text in SUPPORTED_FREQS:
        return text
    if text in ("MINUTELY", "SECONDLY"):
        raise RuleSyntaxError(
            f"FREQ={text} is not supported; a rule repeats at most hourly, "
            "use a cron expression such as '*/15 * * * *' for more frequent runs"
        )
    raise RuleSyntaxError(f"FREQ must be one of {', '.join(SUPPORTED_FREQS)}, not {text!r}")


def _until(text: str, read_wall: Callable[[datetime], datetime]) -> datetime:
    moment, utc = _parse_stamp("UNTIL", text)
    return moment.replace(tzinfo=UTC) if utc else read_wall(moment)


def _check_combinations(parts: RuleParts) -> None:
    """The RFC 5545 §3.3.10 restrictions, and Surveyor's own."""
    freq = parts.freq
    if parts.count is not None and parts.until is not None:
        raise RuleSyntaxError("COUNT and UNTIL cannot both be given; keep one of them")
    if any(second != 0 for second in parts.bysecond):
        raise RuleSyntaxError("BYSECOND is not supported; schedules run on whole minutes")
    if any(day.ordinal for day in parts.byday):
        if freq not in ("MONTHLY", "YEARLY"):
            raise RuleSyntaxError(
                "a numbered BYDAY such as 2MO or -1FR needs FREQ=MONTHLY or FREQ=YEARLY"
            )
        if parts.byweekno:
            raise RuleSyntaxError("a numbered BYDAY cannot be combined with BYWEEKNO")
    if parts.bymonthday and freq == "WEEKLY":
        raise RuleSyntaxError("BYMONTHDAY cannot be used with FREQ=WEEKLY")
    if parts.byyearday and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        raise RuleSyntaxError(f"BYYEARDAY cannot be used with FREQ={freq}")
    if parts.byweekno and freq != "YEARLY":
        raise RuleSyntaxError("BYWEEKNO needs FREQ=YEARLY")
    selectors = (
        parts.bymonth,
        parts.byweekno,
        parts.byyearday,
        parts.bymonthday,
        parts.byday,
        parts.byhour,
        parts.byminute,
    )
    if parts.bysetpos and not any(selectors):
        raise RuleSyntaxError("BYSETPOS needs another BY part (e.g. BYDAY) to pick from")
    if parts.bymonth and parts.bymonthday and not parts.byyearday and not parts.byweekno:
        longest = max(_DAYS_IN_MONTH[month - 1] for month in parts.bymonth)
        if all(abs(day) > longest for day in parts.bymonthday):
            raise RuleSyntaxError(
                "no month in BYMONTH has a day listed in BYMONTHDAY, so the rule never runs"
            )
