"""Recurrence maths for scheduling (SPEC §5): validate, store, preview and compute next runs.

Pure functions and frozen dataclasses, no I/O. The API calls `parse_recurrence` and `preview`;
the scheduler calls `Recurrence.from_stored` and `next_occurrence`.

Decisions, also explained to users in docs/scheduling.md:

- Times of day are local wall-clock times in the schedule's IANA time zone.
- A local time skipped when clocks spring forward runs at the same instant shifted by the gap:
  02:30 on a day that jumps from 02:00 to 03:00 runs at 03:30, once; the day is never skipped.
- A local time repeated when clocks fall back runs once, at its first occurrence.
  (Both are the RFC 5545 §3.3.5 rules for DATE-TIME values.)
- Monthly on the 29th, 30th or 31st runs on the last day of months that are shorter; no month is
  skipped.
- Hourly counts real elapsed hours from the start, so no hour is repeated or lost across DST.
- Cron expressions and raw RRULEs are matched against local wall time with the same two rules.
- Every occurrence is at or after the start; the start is moved forward to a whole minute.
- Results are aware UTC datetimes, strictly after the time asked about, ascending, no repeats.
"""

from surveyor.core.recurrence.describe import describe
from surveyor.core.recurrence.model import Frequency, Recurrence, RecurrenceError, Weekday
from surveyor.core.recurrence.occurrences import (
    PREVIEW_COUNT,
    next_occurrence,
    next_occurrences,
    preview,
)
from surveyor.core.recurrence.parse import parse_recurrence

__all__ = [
    "PREVIEW_COUNT",
    "Frequency",
    "Recurrence",
    "RecurrenceError",
    "Weekday",
    "describe",
    "next_occurrence",
    "next_occurrences",
    "parse_recurrence",
    "preview",
]
