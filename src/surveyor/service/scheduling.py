"""Scheduling rules shared by the API and the scheduler.

What a run copies from its template (so that editing a template changes future runs only), and
the signal that wakes this process's scheduler when a schedule changes, so that it need not wait
for its next look at the database.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.pool import Pool

#: What a run copies from its template when it is spawned: what the template does now.
COPIED_FROM_TEMPLATE = (
    "organization_id",
    "site_id",
    "name",
    "description",
    "type",
    "params",
    "targets",
    "explorer_id",
    "hosted_zone_id",
    "grace_period",
    "created_by",
    "created_by_user_id",
)


def run_values(template: Mapping[str, Any], occurrence: datetime) -> dict[str, Any]:
    """The task values of a template's run for `occurrence`: a snapshot of the template's
    COPIED_FROM_TEMPLATE columns, the template as parent, the occurrence as start time."""
    values = {column: template[column] for column in COPIED_FROM_TEMPLATE}
    values["params"] = copy.deepcopy(dict(template["params"]))
    values.update(parent_id=template["id"], start_time=occurrence, occurrence_at=occurrence)
    return values


Listener = Callable[[], None]


class ScheduleChanges:
    """Listeners called when a schedule changes (a template created, edited or resumed, or a
    start time set). It is a hint: schedulers look at the database again within a second anyway,
    and on another console the change is found that way."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every change until the returned function is called."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


#: The schedule changes of this process.
schedule_changes = ScheduleChanges()

_CHANGED = "surveyor_schedule_changed"


def notify_after_commit(conn: Connection) -> None:
    """Tell this process's schedulers about a change once `conn`'s transaction is over, so
    that what they read when they wake includes it."""
    conn.info[_CHANGED] = True


@event.listens_for(Pool, "checkin")
def _notify_when_done(_dbapi_connection: Any, record: Any) -> None:
    # A connection goes back to its pool after its transaction committed (or rolled back:
    # then the hint is merely spare).
    if record is not None and record.info.pop(_CHANGED, False):
        schedule_changes.notify()
