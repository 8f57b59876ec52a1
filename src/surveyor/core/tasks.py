"""Task statuses, types, transitions, tabs, wait reasons and event kinds: declared once, used
everywhere.

The transition rules are SPEC §2 written as data: `standard_transitions` turns a kind's status
path into its table (each kind declares its path in `core.kinds`), and every status change in
the product goes through `core.kinds.check_transition`, so the API, the scheduler, explorers
and workers all obey it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from enum import StrEnum


class TaskStatus(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    SCANNED = "scanned"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    PROCESSING_QUEUED = "processing_queued"
    PROCESSING = "processing"
    PROCESSED = "processed"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CANCELED = "canceled"
    PAUSED = "paused"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS: dict[TaskStatus, str] = {
    TaskStatus.NEW: "New",
    TaskStatus.ACTIVE: "Active",
    TaskStatus.SCANNED: "Scanned",
    TaskStatus.CONNECTING: "Connecting",
    TaskStatus.CONNECTED: "Connected",
    TaskStatus.PROCESSING_QUEUED: "Processing, queued",
    TaskStatus.PROCESSING: "Processing",
    TaskStatus.PROCESSED: "Processed",
    TaskStatus.STOPPING: "Stopping",
    TaskStatus.STOPPED: "Stopped",
    TaskStatus.CANCELED: "Canceled",
    TaskStatus.PAUSED: "Paused",
}

TERMINAL_STATUSES = frozenset({TaskStatus.PROCESSED, TaskStatus.STOPPED, TaskStatus.CANCELED})

#: The statuses in which a task holds the explorer it runs on (SPEC §2, §6): from its
#: launch until its data is in the console, that is scanning or connecting, stopping, and
#: uploading its data (`scanned`, `connected`). Such a task is the explorer's current task,
#: keeps the launch rule from giving the explorer another one, takes one of its hosted
#: zone's slots, and keeps the explorer, its zone and its site from being deleted.
EXPLORER_OCCUPYING_STATUSES = frozenset(
    {
        TaskStatus.ACTIVE,
        TaskStatus.CONNECTING,
        TaskStatus.STOPPING,
        TaskStatus.SCANNED,
        TaskStatus.CONNECTED,
    }
)


class TaskType(StrEnum):
    """The task types of SPEC §4; what each one is and does is its kind (`core.kinds`)."""

    SCAN = "scan"
    CONNECTOR = "connector"
    IMPORT = "import"
    REPORT = "report"
    OUTLIER = "outlier"
    QUERY = "query"
    RETENTION = "retention"


#: How long a due task may wait to launch before it is canceled, unless it says otherwise.
DEFAULT_GRACE_PERIOD_SECONDS = 3600
#: The shortest grace period a task can have (the API refuses less).
MIN_GRACE_PERIOD_SECONDS = 60


class TransitionKind(StrEnum):
    """Why a transition exists; used to pick the default event message."""

    PROGRESS = "progress"
    STOP = "stop"
    ERROR = "error"
    LEASE_LOSS = "lease_loss"
    REPROCESS = "reprocess"
    PAUSE = "pause"
    RESUME = "resume"


S = TaskStatus
_T = TransitionKind

#: Statuses in which a collector (an explorer, a connector runner) works on a task: a kind's
#: path holds at most one of them, right after `new`, and only such a task can be stopped
#: while it runs.
COLLECTING_STATUSES = frozenset({S.ACTIVE, S.CONNECTING})
#: The statuses that follow them: collected, the data on its way to the console.
COLLECTED_STATUSES = frozenset({S.SCANNED, S.CONNECTED})
#: The path every kind ends with: its data waits for a worker, which merges it.
PROCESSING_PATH = (S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED)

_CANCELABLE = (
    S.NEW,
    S.ACTIVE,
    S.SCANNED,
    S.CONNECTING,
    S.CONNECTED,
    S.PROCESSING_QUEUED,
    S.PROCESSING,
)


@functools.cache
def standard_transitions(
    path: tuple[TaskStatus, ...],
) -> dict[tuple[TaskStatus, TaskStatus], TransitionKind]:
    """The transition table of a standard task (not a template) whose kind follows `path`
    (SPEC §2: its pipeline, plus stop, errors, lease loss and reprocess). Treat as read-only."""
    table: dict[tuple[TaskStatus, TaskStatus], TransitionKind] = {}
    for before, after in itertools.pairwise(path):
        table[(before, after)] = _T.PROGRESS
    collects = any(status in COLLECTING_STATUSES for status in path)
    for running in COLLECTING_STATUSES:
        if running in path:
            table[(running, S.STOPPING)] = _T.STOP
    if collects:
        table[(S.STOPPING, S.STOPPED)] = _T.STOP
    table[(S.NEW, S.STOPPED)] = _T.STOP
    for status in _CANCELABLE:
        if status in path:
            table[(status, S.CANCELED)] = _T.ERROR
    table[(S.PROCESSING, S.PROCESSING_QUEUED)] = _T.LEASE_LOSS
    table[(S.PROCESSED, S.PROCESSING_QUEUED)] = _T.REPROCESS
    table[(S.CANCELED, S.PROCESSING_QUEUED)] = _T.REPROCESS
    if collects:
        # A stopped scan or connector run keeps what it collected; processing it is the
        # same explicit action (the service checks that there is stored data).
        table[(S.STOPPED, S.PROCESSING_QUEUED)] = _T.REPROCESS
    return table


#: Recurring templates never run themselves; they only pause and resume.
TEMPLATE_TRANSITIONS: dict[tuple[TaskStatus, TaskStatus], TransitionKind] = {
    (S.NEW, S.PAUSED): _T.PAUSE,
    (S.PAUSED, S.NEW): _T.RESUME,
}


class IllegalTransition(Exception):
    """A transition the table does not allow; carries the current status for the 409 answer."""

    def __init__(self, current: TaskStatus, requested: TaskStatus, *, reason: str = "") -> None:
        self.current = current
        self.requested = requested
        message = reason or f"a task in status '{current}' cannot become '{requested}'"
        super().__init__(message)


class Tab(StrEnum):
    ACTIVE = "active"
    PROCESSING = "processing"
    SCHEDULED = "scheduled"
    FAILED = "failed"
    COMPLETED = "completed"
    RECURRING = "recurring"


#: The `all` view is not a tab of its own: it searches the complete history.
ALL_VIEW = "all"


class SortField(StrEnum):
    """The time a tab orders by; the store keeps it denormalized as `tab_sort`."""

    STARTED = "started"
    QUEUED = "queued"
    START_TIME = "start_time"
    FINISHED = "finished"
    PROCESSING_FINISHED = "processing_finished"
    NEXT_RUN = "next_run"
    CREATED = "created"


@dataclass(frozen=True)
class TabSpec:
    tab: Tab
    label: str
    statuses: frozenset[TaskStatus]
    templates: bool
    sort: SortField
    newest_first: bool


TAB_SPECS: dict[Tab, TabSpec] = {
    Tab.ACTIVE: TabSpec(
        Tab.ACTIVE,
        "Active",
        frozenset({S.ACTIVE, S.CONNECTING, S.STOPPING}),
        False,
        SortField.STARTED,
        True,
    ),
    Tab.PROCESSING: TabSpec(
        Tab.PROCESSING,
        "Processing",
        frozenset({S.SCANNED, S.CONNECTED, S.PROCESSING_QUEUED, S.PROCESSING}),
        False,
        SortField.QUEUED,
        False,
    ),
    Tab.SCHEDULED: TabSpec(
        Tab.SCHEDULED,
        "Scheduled",
        frozenset({S.NEW}),
        False,
        SortField.START_TIME,
        False,
    ),
    Tab.FAILED: TabSpec(
        Tab.FAILED,
        "Failed",
        frozenset({S.CANCELED, S.STOPPED}),
        False,
        SortField.FINISHED,
        True,
    ),
    Tab.COMPLETED: TabSpec(
        Tab.COMPLETED,
        "Completed",
        frozenset({S.PROCESSED}),
        False,
        SortField.PROCESSING_FINISHED,
        True,
    ),
    Tab.RECURRING: TabSpec(
        Tab.RECURRING,
        "Recurring",
        frozenset({S.NEW, S.PAUSED}),
        True,
        SortField.NEXT_RUN,
        False,
    ),
}

#: The `all` view orders by creation, newest first.
ALL_VIEW_NEWEST_FIRST = True


def tab_of(status: TaskStatus, *, template: bool) -> Tab | None:
    """The one tab a task belongs to, or None (a template in an impossible status)."""
    for spec in TAB_SPECS.values():
        if spec.templates == template and status in spec.statuses:
            return spec.tab
    return None


class WaitReason(StrEnum):
    """Why a due task has not launched (SPEC §4); shown beside a task in `new`."""

    EXPLORER_OFFLINE = "explorer_offline"
    EXPLORER_BUSY = "explorer_busy"
    ZONE_FULL = "zone_full"
    ZONE_EMPTY = "zone_empty"
    PREVIOUS_RUN_ACTIVE = "previous_run_active"
    NOT_DUE = "not_due"


WAIT_REASON_TEXT: dict[WaitReason, str] = {
    WaitReason.EXPLORER_OFFLINE: "waiting for its explorer to come online",
    WaitReason.EXPLORER_BUSY: "waiting for its explorer to finish another scan",
    WaitReason.ZONE_FULL: "waiting for a free slot in its hosted zone",
    WaitReason.ZONE_EMPTY: "waiting for an explorer to join its hosted zone (it has none)",
    WaitReason.PREVIOUS_RUN_ACTIVE: "waiting for the previous run to finish",
    WaitReason.NOT_DUE: "waiting for its start time",
}

#: Why a task could not launch within its grace period, in words for its error (the past
#: tense of WAIT_REASON_TEXT; a task waiting for its start time is never late).
LAUNCH_FAILURE_TEXT: dict[WaitReason, str] = {
    WaitReason.EXPLORER_OFFLINE: "its explorer was offline",
    WaitReason.EXPLORER_BUSY: "its explorer was busy with another scan",
    WaitReason.ZONE_FULL: "its hosted zone had no free slot",
    WaitReason.ZONE_EMPTY: "its hosted zone had no explorer",
    WaitReason.PREVIOUS_RUN_ACTIVE: "the previous run was still running",
}


class EventKind(StrEnum):
    """What a task event records (the `kind` column of `task_events`)."""

    #: The task was created (a run spawned by its template too).
    CREATED = "created"
    #: Its status changed; `from_status` and `to_status` say how.
    TRANSITION = "transition"
    #: Fields other than the status were edited.
    EDITED = "edited"
    #: A template spawned a run (the event of the template).
    SPAWNED = "spawned"
    #: A template's due occurrences were skipped (too late, or its previous run still runs).
    SKIPPED = "skipped"
    #: Occurrences missed while no scheduler ran were folded into one run.
    COALESCED = "coalesced"
    #: A template's schedule has no further runs.
    ENDED = "ended"
    #: A one-off task's start time has come.
    DUE = "due"
    #: A due scan waits for its explorer or hosted zone (the wait reason says why).
    WAITING = "waiting"
    #: The explorer lost the scan (it restarted) and it was launched again.
    RELAUNCHED = "relaunched"
    #: Data of a stopped scan arrived after the stop.
    DATA = "data"
    #: The task was hidden from the tabs, or shown again.
    HIDDEN = "hidden"
    SHOWN = "shown"
    #: The task was removed (its row stays for the audit trail).
    REMOVED = "removed"
    #: Retention deleted its data file; on a Retention run, what the run removed or marked.
    RETENTION = "retention"
