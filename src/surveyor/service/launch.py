"""The launch rule (SPEC §5): which due scan goes to which explorer, and why a scan waits.

A due scan launches only on an explorer that is online and runs no other scan:

- a scan pinned to an explorer runs on that explorer;
- a scan for a hosted zone runs on any idle online member while the zone has a free slot
  (fewer than `max_concurrent` of the zone's scans occupy an explorer);
- a scan with neither runs on any idle online explorer of its organization whose site is
  the scan's site, or that has no site (an explorer without a site serves every site).

Explorers ask for work (a long poll), so a launch happens inside the asking explorer's
request, in one transaction that locks the explorer, the zone and the candidate task: two
consoles never hand out one task twice, and a zone never exceeds its slots. A due scan that
cannot launch shows its `wait_reason` (the scheduler cancels it, naming that reason, if it
still cannot launch when its grace period is over).

Which tasks are "scans" here is their kind's business: the kinds explorers collect
(`core.kinds`). A due task of a kind nobody collects needs no runner at all: it goes straight
to the processing queue (`queue_due_tasks`, which the scheduler calls).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from surveyor.connectors.base import ConnectorError, connector_named
from surveyor.core import kinds
from surveyor.core.resources import Explorer
from surveyor.core.task import Task
from surveyor.core.tasks import (
    COLLECTED_STATUSES,
    WAIT_REASON_TEXT,
    EventKind,
    IllegalTransition,
    TaskStatus,
    WaitReason,
)
from surveyor.security.secretbox import SecretBox
from surveyor.service.credentials import CredentialUnusable, open_for_run
from surveyor.store import accounts
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store
from surveyor.store.changes import ChangeKind, TaskChange

#: A scan whose explorer lost it this many times (it restarted mid-scan) is canceled.
MAX_ATTEMPTS = 3
#: How many due scans one claim considers (scans of a full zone are passed over).
MAX_CANDIDATES = 20
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Runner:
    """An explorer as the launch rule sees it."""

    id: int
    name: str
    organization_id: int
    site_id: int | None
    hosted_zone_id: int | None
    online: bool
    busy: bool


@dataclass(frozen=True)
class ZoneLoad:
    id: int
    max_concurrent: int
    running: int

    @property
    def full(self) -> bool:
        return self.running >= self.max_concurrent


#: Task columns whose edit may let a waiting scan launch.
LAUNCH_FIELDS = frozenset({"start_time", "wait_reason", "explorer_id", "hosted_zone_id"})


def may_let_a_scan_launch(change: TaskChange) -> bool:
    """Whether explorers' held polls should look for work again after `change`: a task
    created or moved to another status (a new scan, or an explorer set free), or a scan's
    start, wait or runner changed. Templates never run themselves."""
    if change.template:
        return False
    return change.kind is not ChangeKind.EDITED or bool(change.fields & LAUNCH_FIELDS)


def may_run(task: Task, runner: Runner) -> bool:
    """Whether the scan may go to this explorer, ignoring presence and load."""
    if runner.organization_id != task.organization_id:
        return False
    if task.explorer_id is not None:
        return task.explorer_id == runner.id
    if task.hosted_zone_id is not None:
        return bool(runner.hosted_zone_id == task.hosted_zone_id)
    return runner.site_id is None or runner.site_id == task.site_id


def wait_reason(task: Task, runners: Iterable[Runner], zone: ZoneLoad | None) -> WaitReason | None:
    """Why a due scan cannot launch now, or None when an explorer could take it."""
    allowed = [runner for runner in runners if may_run(task, runner)]
    zone_task = task.hosted_zone_id is not None and task.explorer_id is None
    if zone_task and not allowed:
        return WaitReason.ZONE_EMPTY
    if zone_task and (zone is None or zone.full):
        return WaitReason.ZONE_FULL
    online = [runner for runner in allowed if runner.online]
    if not online:
        return WaitReason.EXPLORER_OFFLINE
    if all(runner.busy for runner in online):
        return WaitReason.EXPLORER_BUSY
    return None


#: An idle explorer always holds a poll open. One whose held poll was dropped (the process
#: died, its network went away) and that has not polled again within this grace is offline
#: at once, without waiting for the online window to pass.
POLL_RETURN_GRACE = timedelta(seconds=3)


def is_online(
    last_checkin_at: datetime | None,
    *,
    now: datetime,
    window: float,
    poll_dropped_at: datetime | None = None,
) -> bool:
    """Online: checked in within the window, and not gone since its held poll dropped."""
    if poll_dropped_at is not None and now - poll_dropped_at >= POLL_RETURN_GRACE:
        return False
    return last_checkin_at is not None and now - last_checkin_at <= timedelta(seconds=window)


def new_attempt_token() -> str:
    return secrets.token_hex(16)


def new_attempt(attempt: int, now: datetime) -> dict[str, Any]:
    """A task's columns as attempt number `attempt` starts: a fresh attempt token, and no
    progress or report yet but this one."""
    return {
        "attempt": attempt,
        "attempt_token": new_attempt_token(),
        "last_report_at": now,
        "progress_collect": 0.0,
        "stats": {},
    }


def launched(attempt: int, now: datetime) -> dict[str, Any]:
    """A task's columns as it leaves `new` for its collecting status: a new attempt, with no
    stop asked for and no error left from an earlier run."""
    return {**new_attempt(attempt, now), "stop_requested_at": None, "error": None}


def reported_progress(collect: float, stats: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A task's columns as its collector reports progress (`collect` clamped to 0..1)."""
    return {
        "progress_collect": min(1.0, max(0.0, collect)),
        "stats": dict(stats),
        "last_report_at": now,
    }


def explorer_actor(explorer: Explorer) -> str:
    return f"explorer:{explorer.name}"


def explorer_transition(
    conn: Connection,
    explorer: Explorer,
    task_id: int,
    expected: TaskStatus,
    target: TaskStatus,
    *,
    message: str,
    changes: Mapping[str, Any] | None = None,
    now: datetime,
) -> Task:
    """Move a task of the explorer's from `expected` to `target`, as the explorer."""
    return task_store.transition(
        conn,
        explorer.organization_id,
        task_id,
        target,
        actor=explorer_actor(explorer),
        message=message,
        expected=[expected],
        changes=changes,
        now=now,
    )


def explorer_cancel(
    conn: Connection, explorer: Explorer, task: Task, *, message: str, error: str, now: datetime
) -> Task:
    """Cancel a task of the explorer's from its status, as the explorer: `message` is the
    event's, `error` the task's."""
    return explorer_transition(
        conn,
        explorer,
        task.id,
        task.status,
        TaskStatus.CANCELED,
        message=message,
        changes={"error": error},
        now=now,
    )


def launch(conn: Connection, task: Task, explorer: Explorer, *, now: datetime) -> Task:
    """Move a due scan to its kind's collecting status (`active`) on the explorer, as a new
    attempt with a fresh token."""
    attempt = task.attempt + 1
    collecting = kinds.kind_of(task.type).collecting
    assert collecting is not None, "a kind explorers collect has a collecting status"
    return task_store.transition(
        conn,
        task.organization_id,
        task.id,
        collecting,
        actor=explorer_actor(explorer),
        message=f"launched on explorer '{explorer.name}' (attempt {attempt})",
        expected=[TaskStatus.NEW],
        changes={"explorer_id": explorer.id, **launched(attempt, now)},
        now=now,
    )


def claim_task(conn: Connection, explorer_id: int, *, now: datetime) -> Task | None:
    """Launch the next due scan on this explorer, if it is idle and one may go to it."""
    explorer = explorer_store.lock_explorer(conn, explorer_id)
    if explorer is None or explorer_store.tasks_on_explorer(conn, explorer_id):
        return None
    passed: list[int] = []
    for _ in range(MAX_CANDIDATES):
        task = explorer_store.next_launch_candidate(conn, explorer, now=now, passed=passed)
        if task is None:
            return None
        passed.append(task.id)
        if task.explorer_id is None and task.hosted_zone_id is not None:
            zone = explorer_store.lock_zone(conn, task.hosted_zone_id)
            if zone is None:
                continue
            if explorer_store.count_running_in_zone(conn, zone.id) >= zone.max_concurrent:
                continue
        try:
            return launch(conn, task, explorer, now=now)
        except (IllegalTransition, task_store.StaleTask):
            continue
    return None


def settle_lost_tasks(conn: Connection, explorer: Explorer, *, now: datetime) -> Task | None:
    """An explorer asking for work runs nothing, whatever the console believed: a scan it
    lost (it restarted) is launched again as a new attempt (returned), a stop it lost
    becomes `stopped`, and a scan whose data it lost before the upload is canceled."""
    name = explorer.name
    for task in explorer_store.tasks_on_explorer(conn, explorer.id):
        status = task.status
        noun = kinds.label_of(task.type).lower()
        try:
            if status is TaskStatus.STOPPING:
                explorer_transition(
                    conn,
                    explorer,
                    task.id,
                    TaskStatus.STOPPING,
                    TaskStatus.STOPPED,
                    message=f"the explorer '{name}' is no longer running the {noun}; stopped",
                    now=now,
                )
            elif status in COLLECTED_STATUSES:
                error = (
                    f"the explorer '{name}' lost the task data before its upload finished "
                    f"(it restarted); the {noun} was canceled"
                )
                explorer_cancel(
                    conn, explorer, task, message="task data lost", error=error, now=now
                )
            elif task.attempt >= MAX_ATTEMPTS:
                error = (
                    f"the explorer '{name}' lost the {noun} {task.attempt} times "
                    f"(it restarted while running it); the {noun} was canceled"
                )
                explorer_cancel(
                    conn, explorer, task, message="too many attempts", error=error, now=now
                )
            else:
                return _relaunch(conn, task, explorer, now=now)
        except (IllegalTransition, task_store.StaleTask):
            continue
    return None


def _relaunch(conn: Connection, task: Task, explorer: Explorer, *, now: datetime) -> Task:
    attempt = task.attempt + 1
    return task_store.write_task(
        conn,
        task,
        new_attempt(attempt, now),
        now=now,
        event=task_store.TaskEvent(
            EventKind.RELAUNCHED,
            explorer_actor(explorer),
            f"the explorer '{explorer.name}' lost the {kinds.label_of(task.type).lower()} "
            "(it restarted); "
            f"launched again (attempt {attempt})",
        ),
    )


def may_have_work(conn: Connection, explorer_id: int, *, now: datetime) -> bool:
    """Whether `next_work` could hand this explorer anything: a cheap read that spares an
    idle explorer's poll a write transaction."""
    explorer = explorer_store.get_explorer(conn, explorer_id)
    if explorer is None:
        return False
    return bool(explorer_store.tasks_on_explorer(conn, explorer_id)) or (
        explorer_store.has_launch_candidates(conn, explorer, now=now)
    )


def work_to_hand(conn: Connection, *, now: datetime) -> explorer_store.LaunchWork:
    """Which explorers `may_have_work`, from one look for all of them (held polls)."""
    return explorer_store.launch_work(conn, now=now)


def assignment(
    conn: Connection, task: Task, *, box: SecretBox | None = None, now: datetime
) -> dict[str, Any] | None:
    """What an explorer is told about the task launched on it. A connector run also gets
    its credential, opened for this attempt only (`box`: the console's key); one whose
    credential cannot be used is canceled saying why, and None is returned."""
    told: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "name": task.name,
        "attempt": task.attempt,
        "attempt_token": task.attempt_token,
        "params": task.params,
        "scope_cap": accounts.organization_scope_cap(conn, task.organization_id),
    }
    credential_id = (task.params or {}).get("credential_id")
    if kinds.kind_of(task.type).collector is not kinds.Collector.EXPLORER_OR_CONSOLE:
        return told
    try:
        if box is None or not isinstance(credential_id, int):
            raise CredentialUnusable("this console cannot open credentials")
        kind = connector_named(str(task.params.get("connector"))).credential_kind
        told["credential"] = open_for_run(
            conn,
            task.organization_id,
            box,
            credential_id,
            kind=kind,
            site_id=task.site_id,
            now=now,
        )
    except (CredentialUnusable, ConnectorError) as exc:
        task_store.transition(
            conn,
            task.organization_id,
            task.id,
            TaskStatus.CANCELED,
            actor=SYSTEM_ACTOR,
            message="its credential cannot be used",
            changes={"error": f"cannot read {task.params.get('server')}: {exc}"},
            now=now,
        )
        return None
    return told


def next_work(conn: Connection, explorer_id: int, *, now: datetime) -> Task | None:
    """The task an idle explorer should run now: one it lost, or a newly launched one."""
    explorer = explorer_store.lock_explorer(conn, explorer_id)
    if explorer is None:
        return None
    resumed = settle_lost_tasks(conn, explorer, now=now)
    if resumed is not None:
        return resumed
    return claim_task(conn, explorer_id, now=now)


def runners(
    conn: Connection, organization_ids: Iterable[int], *, now: datetime, online_window: float
) -> list[Runner]:
    return [
        Runner(
            id=row["id"],
            name=row["name"],
            organization_id=row["organization_id"],
            site_id=row["site_id"],
            hosted_zone_id=row["hosted_zone_id"],
            online=is_online(
                row["last_checkin_at"],
                now=now,
                window=online_window,
                poll_dropped_at=row["poll_dropped_at"],
            ),
            busy=row["busy"],
        )
        for row in explorer_store.explorers_of(conn, organization_ids)
    ]


@dataclass(frozen=True)
class Verdict:
    """What the launch rule says about one waiting scan right now."""

    task: Task
    reason: WaitReason | None
    runner_names: tuple[str, ...]


def judge_waiting_scans(conn: Connection, *, now: datetime, online_window: float) -> list[Verdict]:
    """The wait reason of every due scan that has not launched."""
    waiting = explorer_store.waiting_scans(conn, now=now)
    if not waiting:
        return []
    roster = runners(
        conn, {task.organization_id for task in waiting}, now=now, online_window=online_window
    )
    zones = {
        zone_id: ZoneLoad(zone_id, row["max_concurrent"], row["running"])
        for zone_id, row in explorer_store.zone_loads(
            conn, {task.hosted_zone_id for task in waiting if task.hosted_zone_id is not None}
        ).items()
    }
    verdicts = []
    for task in waiting:
        zone = zones.get(task.hosted_zone_id) if task.hosted_zone_id is not None else None
        names = tuple(runner.name for runner in roster if may_run(task, runner))
        verdicts.append(Verdict(task, wait_reason(task, roster, zone), names))
    return verdicts


def _reason_text(verdict: Verdict) -> str:
    assert verdict.reason is not None
    text = WAIT_REASON_TEXT[verdict.reason]
    if verdict.reason in (WaitReason.ZONE_FULL, WaitReason.ZONE_EMPTY):
        return text
    if not verdict.runner_names:
        return f"{text} (no explorer may run it)"
    shown = ", ".join(f"'{name}'" for name in verdict.runner_names[:3])
    more = f" and {len(verdict.runner_names) - 3} more" if len(verdict.runner_names) > 3 else ""
    return f"{text} ({shown}{more})"


def _stored_reason(verdict: Verdict) -> str | None:
    return verdict.reason.value if verdict.reason is not None else None


@dataclass(frozen=True)
class WaitingSummary:
    needs_write: bool
    launchable: int


def waiting_scans_need_update(
    conn: Connection, *, now: datetime, online_window: float
) -> WaitingSummary:
    """Whether `refresh_waiting_scans` would change anything (checked in a read
    transaction first), and how many waiting scans could launch now."""
    verdicts = judge_waiting_scans(conn, now=now, online_window=online_window)
    needs_write = any(verdict.task.wait_reason != _stored_reason(verdict) for verdict in verdicts)
    launchable = sum(1 for verdict in verdicts if verdict.reason is None)
    return WaitingSummary(needs_write, launchable)


def refresh_waiting_scans(conn: Connection, *, now: datetime, online_window: float) -> int:
    """Bring every waiting scan's `wait_reason` up to date (writing only changes, each as an
    event), and return how many could launch now (so the caller can wake the explorers
    waiting for work). The scheduler cancels the scans still waiting when their grace period
    is over, naming this reason."""
    launchable = 0
    for verdict in judge_waiting_scans(conn, now=now, online_window=online_window):
        if verdict.reason is None:
            launchable += 1
        if verdict.task.wait_reason == _stored_reason(verdict):
            continue
        try:
            _note_wait_reason(conn, verdict, now=now)
        except task_store.StaleTask:
            continue
    return launchable


def _note_wait_reason(conn: Connection, verdict: Verdict, *, now: datetime) -> None:
    event = None
    if verdict.reason is not None:
        event = task_store.TaskEvent(EventKind.WAITING, SYSTEM_ACTOR, _reason_text(verdict))
    task_store.write_task(
        conn, verdict.task, {"wait_reason": _stored_reason(verdict)}, now=now, event=event
    )


def queue_due_tasks(conn: Connection, *, now: datetime, actor: str, limit: int) -> int:
    """Queue for processing up to `limit` due tasks of kinds nobody collects (their work is
    all processing); how many were queued."""
    types = kinds.queued_when_due()
    if not types:
        return 0
    queued = 0
    for task in explorer_store.lock_due_tasks(conn, types, now=now, limit=limit):
        try:
            task_store.transition(
                conn,
                task.organization_id,
                task.id,
                TaskStatus.PROCESSING_QUEUED,
                actor=actor,
                message="due; queued for processing",
                expected=[TaskStatus.NEW],
                now=now,
            )
        except (IllegalTransition, task_store.StaleTask):
            continue
        queued += 1
    return queued
