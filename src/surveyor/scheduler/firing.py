"""What the scheduler does with a due template or a waiting task: pure rules, no I/O.

- A template's due occurrences are those from its `recur_next` up to now. If the latest is
  later than the template's grace period, none runs: they are skipped, counted and listed.
- Otherwise, if the previous run has not finished, they are skipped for that reason.
- Otherwise the latest spawns one run; any earlier ones (missed while no scheduler ran) are
  coalesced into it. Nothing is skipped without an event saying so.
- A task that waits to launch past its start time plus its grace period is canceled, with an
  error that names what it was waiting for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from surveyor.core.recurrence import Recurrence, next_occurrences
from surveyor.core.tasks import LAUNCH_FAILURE_TEXT

#: How many occurrences an event lists by time; the rest are counted.
LISTED_OCCURRENCES = 10
#: Occurrences counted one by one before the count jumps to the grace window (a minutely cron
#: after months without a scheduler); the event then says "at least".
COUNT_LIMIT = 10_000
_WALK_BATCH = 64
_JUST_BEFORE = timedelta(microseconds=1)

NO_RUNNER_TEXT = "no explorer picked it up"
_FAILURE_BY_VALUE = {reason.value: text for reason, text in LAUNCH_FAILURE_TEXT.items()}


@dataclass(frozen=True)
class DueOccurrences:
    """A template's occurrences from its `recur_next` up to now, and the one after now."""

    count: int
    count_is_lower_bound: bool
    listed: tuple[datetime, ...]
    latest: datetime
    following: datetime | None


def due_occurrences(
    recurrence: Recurrence,
    first: datetime,
    now: datetime,
    grace: timedelta,
    *,
    known_next: Sequence[datetime] | None = None,
) -> DueOccurrences:
    """Walk from `first` (an occurrence at or before `now`) to the first occurrence after now.

    `known_next` is the occurrence after `first` if it was computed ahead of time ([] when
    the schedule ends at `first`). After COUNT_LIMIT occurrences the walk jumps to the grace
    window, the only part where the latest occurrence can still matter, so a long outage
    costs a bounded amount of work.
    """
    listed = [first]
    count = 1
    latest = first
    lower_bound = False
    window_start = now - grace
    after = first
    # Usually only one occurrence is due: ask for one first, then walk in batches.
    size = 1
    while True:
        if known_next is not None and after == first:
            batch = list(known_next[:1])
        else:
            batch = next_occurrences(recurrence, after, size)
        for moment in batch:
            if moment > now:
                return DueOccurrences(count, lower_bound, tuple(listed), latest, moment)
            count += 1
            latest = moment
            if len(listed) < LISTED_OCCURRENCES:
                listed.append(moment)
        if len(batch) < size:
            return DueOccurrences(count, lower_bound, tuple(listed), latest, None)
        after = batch[-1]
        size = _WALK_BATCH
        if count >= COUNT_LIMIT and not lower_bound and after < window_start:
            lower_bound = True
            after = window_start - _JUST_BEFORE


class Verdict(StrEnum):
    SPAWN = "spawn"
    SKIP_PREVIOUS_RUN_ACTIVE = "previous_run_active"
    SKIP_TOO_LATE = "too_late"


@dataclass(frozen=True)
class Firing:
    """The decision for one due template."""

    verdict: Verdict
    due: DueOccurrences
    lateness: timedelta

    @property
    def occurrence(self) -> datetime:
        """The occurrence a run is spawned for (the latest due one)."""
        return self.due.latest

    @property
    def following(self) -> datetime | None:
        """The template's next `recur_next`: always after now, None once the schedule ends."""
        return self.due.following

    @property
    def not_run(self) -> int:
        """Occurrences that get no run of their own (skipped, or coalesced into the run)."""
        return self.due.count - (1 if self.verdict is Verdict.SPAWN else 0)


def decide_firing(
    recurrence: Recurrence,
    *,
    recur_next: datetime,
    now: datetime,
    grace: timedelta,
    previous_run_active: bool,
    known_next: Sequence[datetime] | None = None,
) -> Firing:
    """Spawn, skip or coalesce the occurrences of a template that are due at `now`."""
    due = due_occurrences(recurrence, recur_next, now, grace, known_next=known_next)
    lateness = now - due.latest
    if lateness > grace:
        verdict = Verdict.SKIP_TOO_LATE
    elif previous_run_active:
        verdict = Verdict.SKIP_PREVIOUS_RUN_ACTIVE
    else:
        verdict = Verdict.SPAWN
    return Firing(verdict, due, lateness)


def format_moment(moment: datetime) -> str:
    """An occurrence as users read it in events: '2026-03-02 03:00 UTC'."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def describe_duration(span: timedelta | float) -> str:
    """'1 hour', '1 hour 30 minutes', '2 days', '45 seconds': the two largest units."""
    seconds = round(span.total_seconds() if isinstance(span, timedelta) else span)
    parts: list[str] = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}" + ("" if amount == 1 else "s"))
    return " ".join(parts[:2]) if parts else "0 seconds"


def _listing(due: DueOccurrences, moments: tuple[datetime, ...], total: int) -> str:
    shown = ", ".join(format_moment(moment) for moment in moments)
    rest = total - len(moments)
    if rest > 0:
        shown += f" and {'at least ' if due.count_is_lower_bound else ''}{rest} more"
    return shown


def _runs(count: int, due: DueOccurrences) -> str:
    return f"{'at least ' if due.count_is_lower_bound else ''}{count} runs"


def skip_message(firing: Firing, *, grace: timedelta, previous_run_id: int | None) -> str:
    """The template event for skipped occurrences, naming how many, which, and why."""
    due = firing.due
    if due.count == 1:
        what = f"skipped the run of {format_moment(due.latest)}"
    else:
        what = f"skipped {_runs(due.count, due)} ({_listing(due, due.listed, due.count)})"
    if firing.verdict is Verdict.SKIP_TOO_LATE:
        subject = "it was" if due.count == 1 else "the latest was"
        return (
            f"{what}: {subject} {describe_duration(firing.lateness)} late, more than its "
            f"{describe_duration(grace)} grace period"
        )
    previous = (
        f"the previous run (task {previous_run_id})" if previous_run_id else "the previous run"
    )
    return f"{what}: {previous} has not finished"


def coalesce_message(firing: Firing, *, run_id: int) -> str:
    """The template event for occurrences missed while no scheduler ran, folded into one run."""
    due = firing.due
    missed = due.listed[: min(len(due.listed), due.count - 1)]
    return (
        f"{_runs(firing.not_run, due)} missed ({_listing(due, missed, firing.not_run)}) "
        f"were coalesced into run {run_id} of {format_moment(firing.occurrence)}"
    )


def spawn_message(run_id: int, occurrence: datetime) -> str:
    """The template event for a run it spawned."""
    before, after = spawn_message_around_id(occurrence)
    return f"{before}{run_id}{after}"


def spawn_message_around_id(occurrence: datetime) -> tuple[str, str]:
    """`spawn_message` in two parts, for the database to put the run's id between."""
    return "run ", f" spawned for {format_moment(occurrence)}"


def launch_expired(start_time: datetime, grace_seconds: int, now: datetime) -> bool:
    """A task that should have launched at `start_time` has waited past its grace period."""
    return now > start_time + timedelta(seconds=grace_seconds)


def launch_expired_error(grace_seconds: int, wait_reason: str | None) -> str:
    """The error of a task canceled because it could not launch in time, in plain words."""
    reason = _FAILURE_BY_VALUE.get(wait_reason or "", NO_RUNNER_TEXT)
    return f"could not launch within its {describe_duration(grace_seconds)} grace period: {reason}"
