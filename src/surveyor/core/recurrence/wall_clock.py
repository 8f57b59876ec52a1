"""Local wall-clock times and the instants they name, under the DST rules of SPEC §5.

A skipped local time (spring forward) is read with the UTC offset in force before the gap, so
02:30 on a day that jumps from 02:00 to 03:00 names the instant also called 03:30. A repeated
local time (fall back) names its first occurrence. These are the rules RFC 5545 §3.3.5 gives for
DATE-TIME values, and what `zoneinfo` does with fold=0.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

#: Zone names that load but mean "whatever this machine is set to"; a schedule must not.
_MACHINE_DEPENDENT_ZONES = frozenset({"localtime", "posixrules"})

#: How far around an instant to look for a UTC offset change when bounding a search.
_OFFSET_CHANGE_WINDOW = timedelta(days=2)


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`; ValueError with a message a user can act on."""
    if name not in _MACHINE_DEPENDENT_ZONES:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    message = f"{name!r} is not a known time zone"
    close = difflib.get_close_matches(name, _known_zone_names(), n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise ValueError(message)


@cache
def _known_zone_names() -> list[str]:
    return sorted(available_timezones() - _MACHINE_DEPENDENT_ZONES)


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive local wall time names in `zone`, under the DST rules above."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an aware instant in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _earliest_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A lower bound for the instant of `wall` and of every later wall time.

    Reading a wall time with both offsets and keeping the earlier one gives the first pass of a
    repeated time and, for a skipped time, an instant just before the gap ends.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return min(first, second)


def ordered_instants(walls: Iterable[datetime], zone: ZoneInfo) -> Iterator[datetime]:
    """The instants named by ascending wall times, in ascending order and each only once.

    Ascending wall times do not always name ascending instants: a skipped 02:30 names 03:30,
    after the 03:00 that follows it in wall order; both a skipped 03:00 and a real one name the
    same instant. Each instant is held back until no later wall time can name an earlier one.
    """
    pending: list[datetime] = []
    last: datetime | None = None
    for wall in walls:
        heapq.heappush(pending, to_instant(wall, zone))
        settled = _earliest_instant(wall, zone)
        while pending and pending[0] <= settled:
            instant = heapq.heappop(pending)
            if last is None or instant > last:
                last = instant
                yield instant
    while pending:
        instant = heapq.heappop(pending)
        if last is None or instant > last:
            last = instant
            yield instant


def search_floor(after: datetime, zone: ZoneInfo) -> datetime:
    """The earliest wall time whose instant can be later than `after`.

    It is `after` read in the smallest offset in force around it, so a skipped wall time just
    before `after` (which names an instant an offset change later) is not missed.
    """
    offsets = []
    for delta in (-_OFFSET_CHANGE_WINDOW, timedelta(0), _OFFSET_CHANGE_WINDOW):
        try:
            offset = (after + delta).astimezone(zone).utcoffset()
        except OverflowError:
            continue
        if offset is not None:
            offsets.append(offset)
    return (after.astimezone(UTC) + min(offsets)).replace(tzinfo=None)
