"""What explorers may do and what their reports mean (SPEC §6).

Enrollment trades an organization's enrollment token for the explorer's own secret. Every
report about a task carries the attempt token the launch gave out: a report from any other
attempt, or about a task that no longer runs, is refused, so a late message can never
resurrect or overwrite a newer state. The supervisor cancels the scans of explorers that
went silent and forces stops that were never confirmed.

A stopped scan keeps what it found: the explorer uploads it while the task is `stopping`,
and the upload is the stop's confirmation (`stopping → stopped`, data stored, marked
partial). Data arriving after a forced stop is still stored on the `stopped` task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.core import kinds
from surveyor.core.explorer_protocol import HostInfo
from surveyor.core.resources import Explorer
from surveyor.core.task import Task
from surveyor.core.tasks import (
    COLLECTED_STATUSES,
    COLLECTING_STATUSES,
    EventKind,
    IllegalTransition,
    TaskStatus,
)
from surveyor.service.launch import (
    SYSTEM_ACTOR,
    explorer_actor,
    explorer_cancel,
    explorer_transition,
    is_online,
    reported_progress,
)
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store
from surveyor.store.records import Conflict, audit

#: Explorers are heard from on every report; the check-in time is rewritten at most this often.
CHECKIN_RESOLUTION = timedelta(seconds=2)
_MAX_NAME_SUFFIX = 100


class EnrollmentRefused(Exception):
    """The enrollment token is unknown, revoked or expired."""


class ReportRefused(Exception):
    """A report the console will not apply; `code` tells the explorer what to do."""

    def __init__(self, code: str, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class UploadRefused(Exception):
    """Task data the console will not store (`code`: checksum_mismatch, invalid_data)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unique_name(conn: Connection, organization_id: int, wanted: str) -> str:
    if not explorer_store.name_taken(conn, organization_id, wanted):
        return wanted
    for suffix in range(2, _MAX_NAME_SUFFIX):
        candidate = f"{wanted[:190]}-{suffix}"
        if not explorer_store.name_taken(conn, organization_id, candidate):
            return candidate
    raise Conflict(f"too many explorers are named '{wanted}'; choose another name")


def enroll(
    conn: Connection,
    enrollment_token: str,
    *,
    name: str | None,
    host: HostInfo,
    now: datetime,
) -> tuple[Explorer, str]:
    """Create an explorer from a valid enrollment token; return it and its secret (shown
    once). Without a chosen name the explorer is named after its host, made unique."""
    token = explorer_store.find_enrollment_token(conn, enrollment_token)
    if token is None:
        raise EnrollmentRefused("the enrollment token is unknown")
    if token["revoked_at"] is not None:
        raise EnrollmentRefused(f"the enrollment token '{token['name']}' was revoked")
    if token["expires_at"] is not None and token["expires_at"] <= now:
        raise EnrollmentRefused(f"the enrollment token '{token['name']}' has expired")
    if not explorer_store.count_enrollment(conn, token["id"], now=now):
        raise EnrollmentRefused(
            f"the enrollment token '{token['name']}' is used up: {token['max_uses']} "
            f"explorer{'s' if token['max_uses'] != 1 else ''} enrolled with it, its limit"
        )
    organization_id = token["organization_id"]
    if name is None:
        chosen = _unique_name(conn, organization_id, host.hostname or "explorer")
    elif explorer_store.name_taken(conn, organization_id, name):
        raise Conflict(f"an explorer named '{name}' is already enrolled; choose another name")
    else:
        chosen = name
    explorer, secret = explorer_store.create_explorer(
        conn,
        organization_id,
        {
            "name": chosen,
            "site_id": token["site_id"],
            "hosted_zone_id": token["hosted_zone_id"],
            "enrollment_token_id": token["id"],
            "last_checkin_at": now,
            **host.as_dict(),
        },
        now=now,
    )
    audit(
        conn,
        organization_id=organization_id,
        actor=explorer_actor(explorer),
        action="enroll",
        object_type="explorer",
        object_id=explorer.id,
        details={"enrollment_token": token["name"], "hostname": host.hostname},
        at=now,
    )
    return explorer, secret


def authenticate(conn: Connection, secret: str) -> Explorer | None:
    return explorer_store.explorer_by_secret(conn, secret)


def check_in(conn: Connection, explorer: Explorer, host: HostInfo | None, *, now: datetime) -> None:
    """Record that the explorer is here (and, with `host`, what it runs on). Without host
    info the time is rewritten only when it is getting old (or a dropped poll of it is on
    record), to spare the database."""
    last = explorer.last_checkin_at
    if (
        host is None
        and last is not None
        and now - last < CHECKIN_RESOLUTION
        and explorer.poll_dropped_at is None
    ):
        return
    explorer_store.record_checkin(conn, explorer.id, now=now, host=host.as_dict() if host else None)


def poll_dropped(
    conn: Connection, explorer: Explorer, *, checked_in_at: datetime, now: datetime
) -> bool:
    """The explorer's held poll (begun with the check-in at `checked_in_at`) lost its
    connection: unless it polls again within `POLL_RETURN_GRACE`, it counts as offline.
    Returns whether that was noted (not when the explorer has checked in since)."""
    return explorer_store.record_poll_dropped(
        conn, explorer.id, checked_in_at=checked_in_at, now=now
    )


#: Statuses in which an explorer collects a task (`active`, `connecting`), or is asked to stop.
_COLLECTING_OR_STOPPING = (*sorted(COLLECTING_STATUSES), TaskStatus.STOPPING)


def _noun(task: Task) -> str:
    """What the task's run is called in messages: "scan", "connector run"."""
    return kinds.label_of(task.type).lower()


def _reported_task(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    allowed: Sequence[TaskStatus],
) -> Task:
    """The task a report is about, if the report comes from its current attempt and the
    task is in a status where such a report means something."""
    task = task_store.get_task(conn, explorer.organization_id, task_id)
    if task is None or task.explorer_id != explorer.id:
        raise ReportRefused("unknown_task", f"task {task_id} is not assigned to this explorer")
    if task.attempt_token != attempt_token:
        raise ReportRefused(
            "stale_attempt",
            f"this report belongs to an earlier attempt of task {task_id}; "
            f"attempt {task.attempt} superseded it",
            status=task.status.value,
        )
    status = task.status
    if status not in allowed:
        raise ReportRefused(
            "not_running",
            f"task {task_id} is {status.label.lower()}; the report was ignored",
            status=status.value,
        )
    return task


def report_progress(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    collect: float,
    stats: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Store the scan's progress; return whether the explorer must stop the scan."""
    check_in(conn, explorer, None, now=now)
    for _ in range(5):
        task = _reported_task(conn, explorer, task_id, attempt_token, _COLLECTING_OR_STOPPING)
        try:
            task_store.write_task(conn, task, reported_progress(collect, stats, now), now=now)
        except task_store.StaleTask:
            continue
        return task.status is TaskStatus.STOPPING
    raise task_store.StaleTask(task_id)


def confirm_stop(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    now: datetime,
) -> Task:
    """The explorer halted the scan it was asked to stop: the task becomes `stopped`."""
    check_in(conn, explorer, None, now=now)
    task = _reported_task(conn, explorer, task_id, attempt_token, (TaskStatus.STOPPING,))
    return explorer_transition(
        conn,
        explorer,
        task_id,
        TaskStatus.STOPPING,
        TaskStatus.STOPPED,
        message=f"the explorer '{explorer.name}' stopped the {_noun(task)}",
        changes={"last_report_at": now},
        now=now,
    )


def report_failure(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    error: str,
    now: datetime,
) -> Task:
    """The scan could not finish: canceled with the explorer's reason (a scan that was
    being stopped anyway just becomes `stopped`)."""
    check_in(conn, explorer, None, now=now)
    task = _reported_task(conn, explorer, task_id, attempt_token, _COLLECTING_OR_STOPPING)
    return _end_failed(
        conn,
        explorer,
        task,
        stopped=f"stopped; the explorer '{explorer.name}' reported: {error}",
        canceled="the explorer reported an error",
        error=f"the {_noun(task)} failed on explorer '{explorer.name}': {error}",
        now=now,
    )


def _end_failed(
    conn: Connection,
    explorer: Explorer,
    task: Task,
    *,
    stopped: str,
    canceled: str,
    error: str,
    now: datetime,
) -> Task:
    """End a task whose scan or data failed: one being stopped becomes `stopped` (the event
    says `stopped`); any other is canceled from its status (`canceled`), with `error`."""
    if task.status is TaskStatus.STOPPING:
        return explorer_transition(
            conn,
            explorer,
            task.id,
            TaskStatus.STOPPING,
            TaskStatus.STOPPED,
            message=stopped,
            now=now,
        )
    return explorer_cancel(conn, explorer, task, message=canceled, error=error, now=now)


@dataclass(frozen=True)
class UploadStart:
    """Whether to receive the upload, or answer that this data is already stored."""

    task: Task
    already_stored: bool


#: After the upload, a task's data is in the processing pipeline (or kept on the stopped
#: task); uploading the same data again is answered as a success without storing anything.
_STORED_STATUSES = frozenset(
    {
        TaskStatus.PROCESSING_QUEUED,
        TaskStatus.PROCESSING,
        TaskStatus.PROCESSED,
        TaskStatus.STOPPED,
    }
)
#: Statuses in which the current attempt may upload: scanning or uploading, and being
#: stopped (what the scan found so far), or stopped by force before its data arrived.
_UPLOADING = (
    *sorted(COLLECTING_STATUSES),
    *sorted(COLLECTED_STATUSES),
    TaskStatus.STOPPING,
    TaskStatus.STOPPED,
)


def begin_upload(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    sha256: str,
    now: datetime,
) -> UploadStart:
    """Accept an upload of the current attempt's data: a scanning task becomes `scanned`
    (the explorer is uploading); a stopping one stays `stopping` until the data is stored.
    A repeat of a stored upload is recognized, not stored again."""
    check_in(conn, explorer, None, now=now)
    try:
        task = _reported_task(conn, explorer, task_id, attempt_token, _UPLOADING)
        if task.status is TaskStatus.STOPPED and task.data_sha256 is not None:
            raise ReportRefused(
                "not_running",
                f"task {task_id} is stopped and its data is stored; the upload was ignored",
                status=task.status.value,
            )
    except ReportRefused as refused:
        stored = task_store.get_task(conn, explorer.organization_id, task_id)
        if (
            refused.code == "not_running"
            and stored is not None
            and stored.status in _STORED_STATUSES
            and stored.data_sha256 == sha256
        ):
            return UploadStart(stored, already_stored=True)
        raise
    collected = kinds.kind_of(task.type).collected
    if task.status in COLLECTING_STATUSES and collected is not None:
        task = explorer_transition(
            conn,
            explorer,
            task_id,
            task.status,
            collected,
            message=f"the explorer '{explorer.name}' finished scanning and is uploading",
            changes={"progress_collect": 1.0, "last_report_at": now},
            now=now,
        )
    else:
        task = task_store.write_task(conn, task, {"last_report_at": now}, now=now)
    return UploadStart(task, already_stored=False)


def finish_upload(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    size: int,
    sha256: str,
    store: Callable[[], Path],
    now: datetime,
    partial: bool = False,
) -> UploadStart:
    """Put verified data in place (`store`) and queue the task for processing; the data of
    a scan being stopped is kept on the task, which becomes `stopped`. Runs in the
    transaction that checks the attempt once more, so the data of a superseded attempt is
    never stored; a concurrent identical upload that won the race is answered as stored.

    Data is partial when the explorer says so or the task is being stopped: processing it
    never marks anything offline."""
    start = begin_upload(conn, explorer, task_id, attempt_token, sha256=sha256, now=now)
    if start.already_stored:
        return start
    status = start.task.status
    stopped = status in (TaskStatus.STOPPING, TaskStatus.STOPPED)
    data = {
        "size_data": size,
        "data_sha256": sha256,
        "data_partial": partial or stopped,
        "last_report_at": now,
    }
    store()
    name = explorer.name
    if status is TaskStatus.STOPPED:
        kept = task_store.write_task(
            conn,
            start.task,
            data,
            now=now,
            event=task_store.TaskEvent(
                EventKind.DATA,
                explorer_actor(explorer),
                f"what the {_noun(start.task)} found before it was stopped arrived from explorer "
                f"'{name}' ({size} bytes); process the task to merge it",
            ),
        )
        return UploadStart(kept, already_stored=False)
    if status is TaskStatus.STOPPING:
        kept = explorer_transition(
            conn,
            explorer,
            task_id,
            TaskStatus.STOPPING,
            TaskStatus.STOPPED,
            message=f"the explorer '{name}' stopped the {_noun(start.task)} and uploaded what it "
            "had found "
            f"({size} bytes); process the task to merge it",
            changes=data,
            now=now,
        )
        return UploadStart(kept, already_stored=False)
    queued = explorer_transition(
        conn,
        explorer,
        task_id,
        status,
        TaskStatus.PROCESSING_QUEUED,
        message=f"task data received from explorer '{name}' ({size} bytes)"
        + (", partial" if partial else ""),
        changes=data,
        now=now,
    )
    return UploadStart(queued, already_stored=False)


def refuse_invalid_data(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    attempt_token: str,
    *,
    problem: str,
    now: datetime,
) -> None:
    """Data that is not task data cannot become valid by retrying: cancel the task (a scan
    being stopped just becomes `stopped`, without data)."""
    said = f"the explorer '{explorer.name}' uploaded data that is not Surveyor task data"
    try:
        task = _reported_task(
            conn, explorer, task_id, attempt_token, (*COLLECTED_STATUSES, TaskStatus.STOPPING)
        )
        _end_failed(
            conn,
            explorer,
            task,
            stopped=f"stopped; {said} ({problem}), so nothing was kept",
            canceled="invalid task data",
            error=f"{said}: {problem}",
            now=now,
        )
    except (ReportRefused, IllegalTransition):
        return


def _seconds(value: float) -> str:
    return f"{value:g} s"


@dataclass(frozen=True)
class Timeouts:
    """How long a running scan may go unheard, and a stop unconfirmed; `watching_since` is
    when the supervisor started: a console that was down does not blame explorers for the
    time it could not hear them."""

    silence_seconds: float
    stop_seconds: float
    watching_since: datetime


@dataclass(frozen=True)
class Intervention:
    """What the supervisor does to one running task, and what it tells the user."""

    task: Task
    target: TaskStatus
    message: str
    error: str | None = None


def _doing(task: Task) -> str:
    """What an explorer does for a task occupying it, in the supervisor's words."""
    if task.status is TaskStatus.ACTIVE:
        return "scanning"
    if task.status is TaskStatus.CONNECTING:
        return f"reading {(task.params or {}).get('server', 'its server')}"
    return "uploading the task data"


def _interventions(
    conn: Connection,
    *,
    now: datetime,
    timeouts: Timeouts,
) -> list[Intervention]:
    found = []
    silence_seconds, stop_seconds = timeouts.silence_seconds, timeouts.stop_seconds
    watching_since = timeouts.watching_since
    for task in explorer_store.running_scans(conn):
        status = task.status
        explorer = (
            explorer_store.get_explorer(conn, task.explorer_id)
            if task.explorer_id is not None
            else None
        )
        name = explorer.name if explorer is not None else f"#{task.explorer_id}"
        if status is TaskStatus.STOPPING:
            asked = explorer_store.stop_requested_at(conn, task) or task.updated_at
            if now - max(asked, watching_since) > timedelta(seconds=stop_seconds):
                found.append(
                    Intervention(
                        task,
                        TaskStatus.STOPPED,
                        f"force-stopped: the explorer '{name}' did not confirm the stop "
                        f"within {_seconds(stop_seconds)}",
                    )
                )
            continue
        heard = task.last_report_at or task.data_acquisition_started_at or now
        if now - max(heard, watching_since) <= timedelta(seconds=silence_seconds):
            continue
        doing = _doing(task)
        found.append(
            Intervention(
                task,
                TaskStatus.CANCELED,
                "the explorer went silent",
                f"the explorer '{name}' stopped reporting for {_seconds(silence_seconds)} "
                f"while {doing}; the {_noun(task)} was canceled",
            )
        )
    return found


def supervision_due(
    conn: Connection,
    *,
    now: datetime,
    timeouts: Timeouts,
) -> bool:
    """Whether `supervise` has anything to do (checked in a read transaction first)."""
    return bool(_interventions(conn, now=now, timeouts=timeouts))


def supervise(
    conn: Connection,
    *,
    now: datetime,
    timeouts: Timeouts,
) -> list[Task]:
    """Cancel the scans of explorers that stopped reporting, and force the stops nobody
    confirmed. Returns the tasks it changed."""
    changed = []
    for step in _interventions(conn, now=now, timeouts=timeouts):
        task = step.task
        try:
            changed.append(
                task_store.transition(
                    conn,
                    task.organization_id,
                    task.id,
                    step.target,
                    actor=SYSTEM_ACTOR,
                    message=step.message,
                    expected=[task.status],
                    changes={"error": step.error} if step.error else None,
                    now=now,
                )
            )
        except (IllegalTransition, task_store.StaleTask):
            continue
    return changed


def current_tasks(conn: Connection, organization_id: int) -> dict[int, int]:
    """The task occupying each explorer of an organization (explorer id -> task id)."""
    return explorer_store.current_tasks_of(conn, [organization_id])


def current_tasks_of(conn: Connection, organization_ids: Iterable[int]) -> dict[int, int]:
    """The task occupying each explorer of these organizations (explorer id -> task id)."""
    return explorer_store.current_tasks_of(conn, organization_ids)


@dataclass(frozen=True, slots=True)
class ExplorerView:
    """An explorer as the API and the pages show it: online or not, and its current task."""

    explorer: Explorer
    online: bool
    current_task_id: int | None


def explorer_view(
    explorer: Explorer, current: Mapping[int, int], *, now: datetime, window: float
) -> ExplorerView:
    online = is_online(
        explorer.last_checkin_at, now=now, window=window, poll_dropped_at=explorer.poll_dropped_at
    )
    return ExplorerView(explorer, online, current.get(explorer.id))
