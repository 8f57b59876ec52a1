"""What users and the system do with tasks: the rules between the API and the store.

Handlers parse and render; these functions decide (validate, choose the transition, record
the audit trail) and call the store. They take an open write connection so that each action
is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.core import kinds, recurrence
from surveyor.core.field_error import FieldError
from surveyor.core.kinds import Collector, ParamsContext, ParamsError, TaskKind
from surveyor.core.resources import Site
from surveyor.core.targets import TargetSet, first_outside, parse_targets, quote_token
from surveyor.core.task import Task
from surveyor.core.tasks import (
    DEFAULT_GRACE_PERIOD_SECONDS,
    TERMINAL_STATUSES,
    EventKind,
    IllegalTransition,
    TaskStatus,
    WaitReason,
)
from surveyor.service import credentials, scheduling
from surveyor.service.audit import record
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal, Role
from surveyor.store.records import get_explorer, get_site, get_zone


class InvalidTask(FieldError):
    """A task request that cannot be honoured; `field` names the input at fault."""


def _site_for(conn: Connection, principal: Principal, site_id: int | None) -> Site:
    if site_id is None:
        default = accounts.default_site_id(conn, principal.organization_id)
        if default is None:
            raise InvalidTask("site_id", "this organization has no site yet; create one first")
        site_id = default
    site = get_site(conn, principal.organization_id, site_id)
    if site is None:
        raise InvalidTask("site_id", f"site {site_id} does not exist")
    return site


def _creatable_kind(task_type: str) -> TaskKind:
    kind = kinds.find_kind(task_type)
    if kind is None or not kind.creatable:
        raise InvalidTask(
            "type",
            f"tasks of type {quote_token(task_type)} cannot be created here "
            f"(types: {', '.join(kinds.creatable_types())})",
        )
    return kind


def _check_runner(
    conn: Connection,
    principal: Principal,
    kind: TaskKind,
    explorer_id: int | None,
    zone_id: int | None,
) -> None:
    if kind.collector is Collector.EXPLORER_OR_CONSOLE and zone_id is not None:
        raise InvalidTask(
            "hosted_zone_id",
            f"a {kind.label.lower()} runs on the explorer it names, or in the console; "
            "leave out the hosted zone",
        )
    if kind.collector not in (Collector.EXPLORER, Collector.EXPLORER_OR_CONSOLE) and (
        explorer_id,
        zone_id,
    ) != (None, None):
        raise InvalidTask(
            "explorer_id" if explorer_id is not None else "hosted_zone_id",
            f"a {kind.label.lower()} does not run on an explorer; leave out the explorer "
            "and the hosted zone",
        )
    if explorer_id is not None and zone_id is not None:
        raise InvalidTask("explorer_id", "choose an explorer or a hosted zone, not both")
    if (
        explorer_id is not None
        and get_explorer(conn, principal.organization_id, explorer_id) is None
    ):
        raise InvalidTask("explorer_id", f"explorer {explorer_id} does not exist")
    if zone_id is not None and get_zone(conn, principal.organization_id, zone_id) is None:
        raise InvalidTask("hosted_zone_id", f"hosted zone {zone_id} does not exist")


@dataclass(frozen=True)
class CheckedParams:
    """Params as stored, and what of them lies outside the site's allowed scope (only ever
    non-empty for an admin, who may scan there; it is audited)."""

    params: dict[str, Any]
    outside_allowed_scope: str | None = None


def allowed_scope(site: Site) -> TargetSet:
    """Where operators may scan in a site: its allowed scope, or else its scope."""
    text = site.allowed_scope or site.scope
    return parse_targets(text, field="allowed_scope", ipv6_min_prefix=None)


def validated_params(
    conn: Connection,
    principal: Principal,
    kind: TaskKind,
    site: Site,
    params: Mapping[str, Any],
) -> CheckedParams:
    """Params checked by the task's kind (a scan's: SPEC §7, the organization's scope and
    probe caps), normalized; what they reach on the network is checked against the site's
    allowed scope (SPEC §13: operators are refused outside it, admins may scan there,
    audited)."""
    if kind.params is None:
        if params:
            raise InvalidTask("params", f"a {kind.label.lower()} takes no params")
        return CheckedParams({})
    context = ParamsContext(
        site_scope=site.scope,
        site_excludes=site.excludes,
        scope_cap=accounts.organization_scope_cap(conn, principal.organization_id),
        probe_cap=accounts.organization_probe_cap(conn, principal.organization_id),
    )
    try:
        checked = kind.params(params, context)
    except ParamsError as exc:
        raise InvalidTask(
            f"params.{exc.field}" if exc.field else "params", exc.message, exc.token
        ) from exc
    if checked.credential is not None:
        credential_id, credential_kind = checked.credential
        try:
            credentials.check_usable(
                conn,
                principal.organization_id,
                credential_id,
                kind=credential_kind,
                site_id=site.id,
            )
        except credentials.CredentialUnusable as exc:
            raise InvalidTask("params.credential_id", str(exc)) from exc
    if checked.targets is None:
        return CheckedParams(checked.params)
    allowed = allowed_scope(site)
    outside = first_outside(checked.targets, checked.excludes, allowed)
    if outside is None:
        return CheckedParams(checked.params)
    if principal.is_superuser or principal.role.allows(Role.ADMIN):
        return CheckedParams(checked.params, outside.target.text)
    if not allowed:
        raise InvalidTask(
            "params.targets",
            f"the site '{site.name}' has neither a scope nor an allowed scope, so operators "
            "cannot scan in it; ask an admin to set its allowed scope",
            outside.target.text,
        )
    reaches = (
        "it is not in it"
        if outside.first_outside == outside.target.text
        else f"it reaches {outside.first_outside}, which is not"
    )
    raise InvalidTask(
        "params.targets",
        f"{quote_token(outside.target.text)} is outside the allowed scope of the site "
        f"'{site.name}' ({reaches}); operators scan only inside it: narrow the targets, "
        "or ask an admin to widen the site's allowed scope",
        outside.target.text,
    )


def _audit_outside_scope(
    conn: Connection,
    principal: Principal,
    site: Site,
    task: Task,
    target: str | None,
    now: datetime,
) -> None:
    if target is None:
        return
    record(
        conn,
        principal,
        "scan_outside_allowed_scope",
        "task",
        task.id,
        details={"site": site.name, "target": target, "targets": task.params.get("targets")},
        now=now,
    )


def parse_recurrence_input(recur: Mapping[str, Any], *, now: datetime) -> recurrence.Recurrence:
    """A recurrence from the API's `recur` object; errors name the field at fault."""
    try:
        return recurrence.parse_recurrence(
            frequency=recur["frequency"],
            interval=recur.get("interval"),
            time=recur.get("time"),
            weekdays=recur.get("weekdays"),
            day_of_month=recur.get("day_of_month"),
            rule=recur.get("rule"),
            cron=recur.get("cron"),
            timezone=recur.get("timezone") or "UTC",
            start=recur.get("start"),
            now=now,
        )
    except recurrence.RecurrenceError as exc:
        raise InvalidTask(f"recur.{exc.field}", exc.message) from exc


def _recurrence_columns(rec: recurrence.Recurrence, *, now: datetime) -> dict[str, Any]:
    frequency, rule, timezone = rec.to_stored()
    following = recurrence.next_occurrence(rec, now)
    if following is None:
        raise InvalidTask("recur", "this schedule has no future occurrence")
    return {
        "recur": True,
        "recur_frequency": frequency,
        "recur_rule": rule,
        "timezone": timezone,
        "recur_next": following,
    }


def stored_recurrence(
    frequency: str | None, rule: str | None, timezone: str | None
) -> recurrence.Recurrence:
    """The recurrence a template stores in its `recur_frequency`, `recur_rule` and `timezone`
    columns; RecurrenceError when they hold none."""
    return recurrence.Recurrence.from_stored(frequency or "", rule or "", timezone or "UTC")


def create_task(
    conn: Connection, principal: Principal, body: Mapping[str, Any], *, now: datetime
) -> Task:
    """Create a task of a kind users create (a scan unless `type` says otherwise): now, at
    `start_time`, or as a recurring template."""
    kind = _creatable_kind(body.get("type", kinds.SCAN.type))
    site = _site_for(conn, principal, body.get("site_id"))
    _check_runner(conn, principal, kind, body.get("explorer_id"), body.get("hosted_zone_id"))
    checked = validated_params(conn, principal, kind, site, body.get("params") or {})
    values: dict[str, Any] = {
        "organization_id": principal.organization_id,
        "site_id": site.id,
        "name": body["name"].strip(),
        "description": body.get("description", ""),
        "type": kind.type,
        "explorer_id": body.get("explorer_id"),
        "hosted_zone_id": body.get("hosted_zone_id"),
        "params": checked.params,
        "grace_period": body.get("grace_period", DEFAULT_GRACE_PERIOD_SECONDS),
        "created_by": principal.email,
        "created_by_user_id": principal.user_id,
    }
    recur = body.get("recur")
    start_time = body.get("start_time")
    if recur is not None:
        if start_time is not None:
            raise InvalidTask(
                "start_time",
                "a recurring task takes its first run from 'recur.start'; leave 'start_time' out",
            )
        values.update(_recurrence_columns(parse_recurrence_input(recur, now=now), now=now))
        values["wait_reason"] = WaitReason.NOT_DUE.value
    else:
        values["start_time"] = start_time or now
        if start_time is not None and start_time > now:
            values["wait_reason"] = WaitReason.NOT_DUE.value
    task = task_store.create_task(conn, values, actor=principal.email, now=now)
    record(conn, principal, "create", "task", task.id, details={"name": task.name}, now=now)
    _audit_outside_scope(conn, principal, site, task, checked.outside_allowed_scope, now)
    return task


def _load(conn: Connection, principal: Principal, task_id: int) -> Task:
    task = task_store.get_task(conn, principal.organization_id, task_id)
    if task is None:
        raise task_store.TaskNotFound(task_id)
    return task


def _requested_transition(
    conn: Connection,
    principal: Principal,
    task_id: int,
    target: TaskStatus,
    *,
    action: str,
    message: str,
    changes: Mapping[str, Any] | None = None,
    now: datetime,
) -> Task:
    """Move a task to `target` on `principal`'s request, and audit the request as `action`."""
    updated = task_store.transition(
        conn,
        principal.organization_id,
        task_id,
        target,
        actor=principal.email,
        message=message,
        changes=changes,
        now=now,
    )
    record(conn, principal, action, "task", task_id, now=now)
    return updated


def update_task(
    conn: Connection,
    principal: Principal,
    task_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime,
) -> Task:
    """Edit a task. What it will do (params, runner, times) only changes before it runs;
    a template's edits apply to future runs only."""
    task = _load(conn, principal, task_id)
    status = task.status
    kind = kinds.kind_of(task.type)
    planning_fields = {
        "params",
        "explorer_id",
        "hosted_zone_id",
        "start_time",
        "grace_period",
        "recur",
    }
    touched = planning_fields & changes.keys()
    if touched and status not in (TaskStatus.NEW, TaskStatus.PAUSED):
        raise IllegalTransition(
            status,
            status,
            reason=(
                f"{', '.join(sorted(touched))} can only change before the task runs; "
                f"it is {status.label.lower()}"
            ),
        )
    values: dict[str, Any] = {}
    if "name" in changes and changes["name"] is not None:
        values["name"] = changes["name"].strip()
    if "description" in changes and changes["description"] is not None:
        values["description"] = changes["description"]
    if "explorer_id" in changes or "hosted_zone_id" in changes:
        explorer_id = changes.get("explorer_id", task.explorer_id)
        zone_id = changes.get("hosted_zone_id", task.hosted_zone_id)
        _check_runner(conn, principal, kind, explorer_id, zone_id)
        values.update(explorer_id=explorer_id, hosted_zone_id=zone_id)
    checked: CheckedParams | None = None
    if changes.get("params") is not None:
        site = _site_for(conn, principal, task.site_id)
        checked = validated_params(conn, principal, kind, site, changes["params"])
        values["params"] = checked.params
    if changes.get("grace_period") is not None:
        values["grace_period"] = changes["grace_period"]
    if changes.get("start_time") is not None:
        if task.recur:
            raise InvalidTask("start_time", "a recurring template is scheduled by 'recur'")
        values["start_time"] = changes["start_time"]
        values["wait_reason"] = WaitReason.NOT_DUE.value if changes["start_time"] > now else None
    if changes.get("recur") is not None:
        if not task.recur:
            raise InvalidTask(
                "recur", "a one-off task cannot become recurring; create a recurring task instead"
            )
        columns = _recurrence_columns(parse_recurrence_input(changes["recur"], now=now), now=now)
        if status is TaskStatus.PAUSED:
            columns["recur_next"] = None
        values.update(columns)
    if not values:
        return task
    updated = task_store.edit_task(
        conn,
        principal.organization_id,
        task_id,
        values,
        actor=principal.email,
        message="edited " + ", ".join(sorted(values)),
        now=now,
    )
    record(conn, principal, "edit", "task", task_id, details={"fields": sorted(values)}, now=now)
    if checked is not None:
        _audit_outside_scope(conn, principal, site, updated, checked.outside_allowed_scope, now)
    return updated


def stop_task(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Ask a running task to stop (it becomes `stopping` until its runner confirms);
    a task that has not launched yet stops at once."""
    task = _load(conn, principal, task_id)
    status = task.status
    if task.recur:
        raise IllegalTransition(
            status,
            TaskStatus.STOPPED,
            reason=("a recurring template does not run itself; pause it or remove it"),
        )
    target = TaskStatus.STOPPED if status is TaskStatus.NEW else TaskStatus.STOPPING
    return _requested_transition(
        conn,
        principal,
        task_id,
        target,
        action="stop",
        message=f"stop requested by {principal.email}",
        changes={"stop_requested_at": now} if target is TaskStatus.STOPPING else None,
        now=now,
    )


def remove_task(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> None:
    """Remove a task from every view. Past runs of a template stay in the history;
    a task that is running must be stopped first."""
    task = _load(conn, principal, task_id)
    status = task.status
    if not task.recur and status is TaskStatus.NEW:
        task = task_store.transition(
            conn,
            principal.organization_id,
            task_id,
            TaskStatus.STOPPED,
            actor=principal.email,
            message="removed before it ran",
            now=now,
        )
    elif not task.recur and status not in TERMINAL_STATUSES:
        raise IllegalTransition(
            status,
            status,
            reason=(f"the task is {status.label.lower()}; stop it before removing it"),
        )
    changes: dict[str, Any] = {"removed_at": now}
    if task.recur:
        changes["recur_next"] = None
    task_store.edit_task(
        conn,
        principal.organization_id,
        task_id,
        changes,
        actor=principal.email,
        message="removed",
        event_kind=EventKind.REMOVED,
        now=now,
    )
    record(conn, principal, "remove", "task", task_id, details={"name": task.name}, now=now)


def hide_task(
    conn: Connection, principal: Principal, task_id: int, *, hidden: bool, now: datetime
) -> Task:
    _load(conn, principal, task_id)
    return task_store.edit_task(
        conn,
        principal.organization_id,
        task_id,
        {"hidden": hidden},
        actor=principal.email,
        message="hidden" if hidden else "shown again",
        event_kind=EventKind.HIDDEN if hidden else EventKind.SHOWN,
        now=now,
    )


def _load_template(
    conn: Connection, principal: Principal, task_id: int, target: TaskStatus, refusal: str
) -> Task:
    """The recurring template `task_id`; a one-off task cannot move to `target` (`refusal`
    says why)."""
    task = _load(conn, principal, task_id)
    if not task.recur:
        raise IllegalTransition(task.status, target, reason=refusal)
    return task


def pause_task(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> Task:
    refusal = "only recurring templates pause; stop a one-off task instead"
    _load_template(conn, principal, task_id, TaskStatus.PAUSED, refusal)
    return _requested_transition(
        conn,
        principal,
        task_id,
        TaskStatus.PAUSED,
        action="pause",
        message=f"paused by {principal.email}",
        changes={"recur_next": None, "wait_reason": None},
        now=now,
    )


def resume_task(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Resume a paused template; its next run is the next occurrence from now."""
    refusal = "only paused recurring templates resume"
    task = _load_template(conn, principal, task_id, TaskStatus.NEW, refusal)
    following = recurrence.next_occurrence(
        stored_recurrence(task.recur_frequency, task.recur_rule, task.timezone), now
    )
    return _requested_transition(
        conn,
        principal,
        task_id,
        TaskStatus.NEW,
        action="resume",
        message=f"resumed by {principal.email}",
        changes={"recur_next": following, "wait_reason": WaitReason.NOT_DUE.value},
        now=now,
    )


def spawn_run(
    conn: Connection,
    template: Task,
    *,
    occurrence: datetime,
    actor: str,
    now: datetime,
) -> Task:
    """Create one run of a recurring template: a standard task with the params snapshotted."""
    run = task_store.create_task(
        conn, scheduling.run_values(template, occurrence), actor=actor, now=now
    )
    task_store.edit_task(
        conn,
        template.organization_id,
        template.id,
        {"recur_last": occurrence, "recur_last_task_id": run.id},
        actor=actor,
        message=f"run {run.id} spawned",
        event_kind=EventKind.SPAWNED,
        now=now,
    )
    return run


def run_now(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Launch a template's run (or a scheduled task) now instead of at its next time."""
    task = _load(conn, principal, task_id)
    status = task.status
    if task.recur:
        run = spawn_run(conn, task, occurrence=now, actor=principal.email, now=now)
    elif status is TaskStatus.NEW:
        run = task_store.edit_task(
            conn,
            principal.organization_id,
            task_id,
            {"start_time": now, "wait_reason": None},
            actor=principal.email,
            message="run now",
            now=now,
        )
    else:
        raise IllegalTransition(
            status,
            TaskStatus.NEW,
            reason=(
                f"the task is {status.label.lower()}; only scheduled tasks and recurring templates "
                "can be run now"
            ),
        )
    record(conn, principal, "run_now", "task", task_id, now=now)
    return run


def reprocess_task(conn: Connection, principal: Principal, task_id: int, *, now: datetime) -> Task:
    """Queue a finished task's stored data for processing again."""
    task = _load(conn, principal, task_id)
    if not task.size_data:
        raise IllegalTransition(
            task.status,
            TaskStatus.PROCESSING_QUEUED,
            reason="this task has no stored data to process again",
        )
    return _requested_transition(
        conn,
        principal,
        task_id,
        TaskStatus.PROCESSING_QUEUED,
        action="reprocess",
        message=f"reprocess requested by {principal.email}",
        now=now,
    )


def names_by_id(conn: Connection, rows: Sequence[Task]) -> dict[str, dict[int, str]]:
    """Site, explorer and zone names for a page of tasks (for display)."""
    return task_store.related_names(conn, rows)
