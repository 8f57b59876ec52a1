"""Retention rules (SPEC §10): an organization's settings, what they keep, and how a run
says what it removed. Pure: the store applies them, the `retention` processor runs them.

- Task data files of finished tasks older than `task_data_days` are deleted; the task rows,
  their events and change summaries stay, whatever their age.
- Assets not seen for `stale_after_days` are marked stale: the Assets list and the API's
  default search leave them out (`stale:true` shows them). An asset seen again is no longer
  stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from surveyor.core.field_error import FieldError

DEFAULT_TASK_DATA_DAYS = 90
DEFAULT_STALE_AFTER_DAYS = 30
#: Bounds of both settings, in days (about ten years at most).
MIN_DAYS = 1
MAX_DAYS = 3650

#: The daily Retention task of every organization (a recurring template, created by the system).
TASK_NAME = "Retention"
TASK_DESCRIPTION = (
    "deletes task data files past the organization's retention and marks assets not seen "
    "for a while stale; task history and change summaries are kept"
)
RECURRENCE = {"frequency": "daily", "time": "03:00", "timezone": "UTC"}
#: A run still starts if the console comes back within this long of 03:00.
GRACE_PERIOD_SECONDS = 12 * 3600

#: The search key that shows stale assets (SPEC §11): without it, searches leave them out.
STALE_KEY = "stale"
#: How many task ids one event of a Retention run lists.
IDS_PER_EVENT = 200


class RetentionSettingError(FieldError):
    """A setting out of bounds: the setting's name and a message a user can act on."""


@dataclass(frozen=True)
class RetentionSettings:
    """One organization's retention, in days."""

    task_data_days: int = DEFAULT_TASK_DATA_DAYS
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS

    def __post_init__(self) -> None:
        for name in ("task_data_days", "stale_after_days"):
            value = getattr(self, name)
            if type(value) is not int or not MIN_DAYS <= value <= MAX_DAYS:
                raise RetentionSettingError(
                    name, f"{name} must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}"
                )

    def data_cutoff(self, now: datetime) -> datetime:
        """Data of tasks that finished before this moment is deleted."""
        return now - timedelta(days=self.task_data_days)

    def stale_cutoff(self, now: datetime) -> datetime:
        """Assets last seen before this moment are stale."""
        return now - timedelta(days=self.stale_after_days)


@dataclass(frozen=True)
class RetentionOutcome:
    """What one Retention run did."""

    deleted_task_ids: tuple[int, ...] = ()
    bytes_freed: int = 0
    marked_stale: int = 0
    no_longer_stale: int = 0

    def stats(self) -> dict[str, int]:
        """The run's `stats` (its counts; the task ids are in its events)."""
        return {
            "data_files_deleted": len(self.deleted_task_ids),
            "bytes_freed": self.bytes_freed,
            "assets_marked_stale": self.marked_stale,
            "assets_no_longer_stale": self.no_longer_stale,
        }


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def deletion_messages(
    task_ids: Sequence[int], settings: RetentionSettings, *, per_event: int = IDS_PER_EVENT
) -> list[str]:
    """The events of a run that name the tasks whose data files it deleted, in groups."""
    messages = []
    for start in range(0, len(task_ids), per_event):
        chunk = task_ids[start : start + per_event]
        messages.append(
            f"deleted the data files of {_plural(len(chunk), 'task', 'tasks')} finished more "
            f"than {settings.task_data_days} days ago: " + ", ".join(str(i) for i in chunk)
        )
    return messages


def stale_message(outcome: RetentionOutcome, settings: RetentionSettings) -> str:
    """The event of a run about the assets it marked stale (or no longer stale)."""
    message = (
        f"marked {_plural(outcome.marked_stale, 'asset', 'assets')} not seen for "
        f"{settings.stale_after_days} days stale"
    )
    if outcome.no_longer_stale:
        message += (
            f"; {_plural(outcome.no_longer_stale, 'asset is', 'assets are')} no longer stale "
            "(seen within the period)"
        )
    return message


def summary_message(outcome: RetentionOutcome) -> str:
    """How a run ends, in one line (its `processed` event)."""
    return (
        f"deleted {_plural(len(outcome.deleted_task_ids), 'task data file', 'task data files')} "
        f"({outcome.bytes_freed} bytes); marked "
        f"{_plural(outcome.marked_stale, 'asset', 'assets')} stale; "
        "task history and change summaries kept"
    )


def outcome_brief(stats: dict[str, int]) -> str:
    """A finished run in lists and on its card; "" before it ran."""
    if "data_files_deleted" not in stats:
        return ""
    return (
        f"{_plural(stats['data_files_deleted'], 'data file', 'data files')} deleted · "
        f"{_plural(stats.get('assets_marked_stale', 0), 'asset', 'assets')} marked stale"
    )
