"""How a task looks in the console: labels, briefs, and the actions a user may take on it.

Statuses, labels and wait reasons come from `core.tasks`, what a type of task is called and
how it is summarised from its kind (`core.kinds`); the actions offered are the ones the
kind's transition table and the user's role allow, so a button is shown only where the API
would accept it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from surveyor.console.presenters import ring_values
from surveyor.core import recurrence
from surveyor.core.changes import SUMMARY_KEYS, ChangeKind, summarize
from surveyor.core.kinds import TaskKind, find_kind, label_of
from surveyor.core.processing import ProcessingPhase
from surveyor.core.task import Task
from surveyor.core.tasks import (
    TERMINAL_STATUSES,
    WAIT_REASON_TEXT,
    TaskStatus,
    TransitionKind,
)
from surveyor.service.tasks import stored_recurrence
from surveyor.store.accounts import Role

#: The change-summary counts in the order they are shown (the total is left to the card).
CHANGE_KEYS = tuple(str(kind) for kind in ChangeKind)


@dataclass(frozen=True)
class Action:
    """A button on the detail card: posts to `/tasks/{id}/{name}`."""

    name: str
    label: str
    confirm: str = ""
    danger: bool = False


def available_actions(task: Task, role: Role) -> list[Action]:
    """The state-changing actions `role` may take on `task` in its current status."""
    if not role.allows(Role.OPERATOR):
        return []
    status = task.status
    template = task.recur
    kind = find_kind(task.type)
    table = kind.transitions(template=template) if kind is not None else {}
    actions: list[Action] = []
    if not template and (
        (status, TaskStatus.STOPPING) in table
        or (status is TaskStatus.NEW and (status, TaskStatus.STOPPED) in table)
    ):
        actions.append(Action("stop", "Stop", danger=True))
    if template and (status, TaskStatus.PAUSED) in table:
        actions.append(Action("pause", "Pause"))
    if template and (status, TaskStatus.NEW) in table:
        actions.append(Action("resume", "Resume"))
    if template or status is TaskStatus.NEW:
        actions.append(Action("run-now", "Run now"))
    if (
        table.get((status, TaskStatus.PROCESSING_QUEUED)) is TransitionKind.REPROCESS
        and task.size_data
    ):
        # A stopped scan's data was never processed: processing it is not a "re"-process.
        label = "Process data" if status is TaskStatus.STOPPED else "Reprocess"
        actions.append(Action("reprocess", label))
    actions.append(Action("show", "Unhide") if task.hidden else Action("hide", "Hide"))
    if template or status is TaskStatus.NEW or status in TERMINAL_STATUSES:
        what = "this recurring task (its past runs stay)" if template else "this task"
        actions.append(Action("remove", "Remove", confirm=f"Remove {what}?", danger=True))
    return actions


def change_brief(summary: Mapping[str, Any] | None) -> str:
    """`3 new, 1 changed, 2 offline` — the counts that are not zero, in a fixed order."""
    if not summary:
        return ""
    parts = [f"{summary[key]} {key}" for key in CHANGE_KEYS if summary.get(key)]
    return ", ".join(parts) if parts else "no changes"


@dataclass(frozen=True)
class ProcessingRunView:
    """One processing of a task's data, as the card lists it."""

    number: int
    phase: ProcessingPhase
    started: datetime
    ended: datetime | None
    summary: Mapping[str, int]

    @classmethod
    def of(cls, run: Mapping[str, Any]) -> ProcessingRunView:
        counts = {key: int(run[key]) for key in SUMMARY_KEYS if key != "total"}
        return cls(
            number=int(run["number"]),
            phase=ProcessingPhase(run["phase"]),
            started=run["started_at"],
            ended=run["ended_at"],
            summary=summarize(counts),
        )

    @property
    def phase_label(self) -> str:
        return self.phase.label

    @property
    def changes(self) -> str:
        return change_brief(self.summary)


def split_processing_runs(
    runs: list[ProcessingRunView],
) -> tuple[ProcessingRunView | None, list[ProcessingRunView]]:
    """The run the task's change summary comes from (the newest finished one), and the
    others, newest first."""
    latest = next((run for run in runs if run.phase is ProcessingPhase.DONE), None)
    return latest, [run for run in runs if run is not latest]


@dataclass(frozen=True)
class TaskView:
    """A task with the names of its site, explorer and zone, ready for templates (which
    read its attributes too: `t.name`, `t["recur"]`)."""

    task: Task
    site: str
    explorer: str
    zone: str

    @classmethod
    def of(cls, task: Task, names: Mapping[str, Mapping[int, str]]) -> TaskView:
        def name(kind: str, value: int | None) -> str:
            return names.get(kind, {}).get(value, f"#{value}") if value is not None else ""

        return cls(
            task,
            name("site", task.site_id),
            name("explorer", task.explorer_id),
            name("hosted_zone", task.hosted_zone_id),
        )

    def __getitem__(self, key: str) -> Any:
        return getattr(self.task, key)

    @property
    def id(self) -> int:
        return self.task.id

    @property
    def status(self) -> str:
        return self.task.status.value

    @property
    def status_label(self) -> str:
        return self.task.status.label

    @property
    def runner(self) -> str:
        """The explorer, else `zone <name>`, else empty."""
        if self.explorer:
            return self.explorer
        return f"zone {self.zone}" if self.zone else ""

    @property
    def collect(self) -> float:
        return self._rings[0]

    @property
    def process(self) -> float:
        return self._rings[1]

    @property
    def _rings(self) -> tuple[float, float]:
        task = self.task
        return ring_values(task.status, task.progress_collect, task.progress_process)

    @property
    def started(self) -> datetime | None:
        return self.task.data_acquisition_started_at

    @property
    def pending_start(self) -> datetime | None:
        """When a task that has not started yet is due to start."""
        if self.task.status is not TaskStatus.NEW or self.task.recur:
            return None
        return self.task.start_time

    @property
    def schedule(self) -> str:
        """A template's recurrence in words, e.g. `every day at 02:30 UTC`."""
        task = self.task
        if not task.recur or not task.recur_frequency:
            return ""
        try:
            return recurrence.describe(
                stored_recurrence(task.recur_frequency, task.recur_rule, task.timezone)
            )
        except (ValueError, recurrence.RecurrenceError):
            return str(task.recur_rule or task.recur_frequency)

    @property
    def wait_text(self) -> str:
        reason = self.task.wait_reason
        if self.task.status is not TaskStatus.NEW or self.task.recur or not reason:
            return ""
        return WAIT_REASON_TEXT[reason]

    @property
    def kind(self) -> TaskKind | None:
        return find_kind(self.task.type)

    @property
    def kind_label(self) -> str:
        """What its type is called: "Scan", also naming its collection ("Scan started")."""
        return label_of(self.task.type)

    @property
    def on_explorer(self) -> bool:
        """Explorers collect its data, so it has (or waits for) one."""
        kind = self.kind
        if kind is None:
            return True
        return kind.runs_on_explorer(self.task.explorer_id, self.task.hosted_zone_id)

    @property
    def outcome(self) -> str:
        """What processing made of it in words, for kinds that say it so (not in counts)."""
        kind = self.kind
        if kind is None or kind.outcome is None:
            return ""
        return kind.outcome(self.task.as_row())

    @property
    def changes(self) -> str:
        """The list's brief of what processing did: the kind's words, or the change counts."""
        return self.outcome or change_brief(self.task.change_summary)

    @property
    def brief(self) -> str:
        """What it will do in one line (a scan's targets, ports and rate), by its kind."""
        kind = self.kind
        return kind.brief(self.task.as_row()) if kind is not None else ""

    @property
    def change_counts(self) -> list[tuple[str, int]]:
        """Every change-summary count, total last, for the card."""
        summary = self.task.change_summary or {}
        return [(key, int(summary.get(key, 0) or 0)) for key in SUMMARY_KEYS]

    @property
    def has_data(self) -> bool:
        return bool(self.task.data_sha256)

    @property
    def has_change_report(self) -> bool:
        return self.task.status is TaskStatus.PROCESSED and bool(self.task.change_summary)
