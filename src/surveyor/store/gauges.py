"""What `/metrics` reads at scrape time: cheap reads only (counter rows, indexed ranges),
never a count over every task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from surveyor.core.tasks import EXPLORER_OCCUPYING_STATUSES, TERMINAL_STATUSES, TaskStatus
from surveyor.store.schema import explorers, task_tab_counts, tasks

#: Statuses counted by status and type: every status but the terminal ones, whose rows grow
#: without bound (their totals are the tabs' counter rows).
LIVE_STATUSES = tuple(sorted(s.value for s in TaskStatus if s not in TERMINAL_STATUSES))


def tab_counts(conn: Connection) -> dict[tuple[str, bool], int]:
    """Tasks per tab and hidden flag, summed over organizations, from the counter rows."""
    rows = conn.execute(
        select(
            task_tab_counts.c.tab, task_tab_counts.c.hidden, func.sum(task_tab_counts.c.count)
        ).group_by(task_tab_counts.c.tab, task_tab_counts.c.hidden)
    )
    return {(tab, bool(hidden)): int(total or 0) for tab, hidden, total in rows}


def live_task_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Tasks in a non-terminal status, by status and type (served by the status index)."""
    rows = conn.execute(
        select(tasks.c.status, tasks.c.type, func.count())
        .where(tasks.c.status.in_(LIVE_STATUSES), tasks.c.removed_at.is_(None))
        .group_by(tasks.c.status, tasks.c.type)
    )
    return {(status, kind): int(count) for status, kind, count in rows}


def oldest_queued_at(conn: Connection) -> datetime | None:
    """When the longest-waiting task of the processing queue was last written (queued)."""
    return conn.execute(
        select(func.min(tasks.c.updated_at)).where(
            tasks.c.status == TaskStatus.PROCESSING_QUEUED.value, tasks.c.removed_at.is_(None)
        )
    ).scalar()


def earliest_due_start(conn: Connection, now: datetime) -> datetime | None:
    """The start time of the longest-overdue task still `new` (not a template): how late the
    scheduler or the explorers are."""
    return conn.execute(
        select(func.min(tasks.c.start_time)).where(
            tasks.c.status == TaskStatus.NEW.value,
            tasks.c.start_time <= now,
            tasks.c.recur.is_(False),
            tasks.c.removed_at.is_(None),
        )
    ).scalar()


def earliest_due_recurrence(conn: Connection, now: datetime) -> datetime | None:
    """The next-run time of the most overdue recurring template (unspawned runs)."""
    return conn.execute(
        select(func.min(tasks.c.recur_next)).where(
            tasks.c.recur.is_(True),
            tasks.c.status == TaskStatus.NEW.value,
            tasks.c.recur_next <= now,
            tasks.c.removed_at.is_(None),
        )
    ).scalar()


def explorer_presence(conn: Connection) -> list[dict[str, Any]]:
    """Every explorer's check-in times and whether a task occupies it."""
    busy = set(
        conn.execute(
            select(tasks.c.explorer_id)
            .where(
                tasks.c.status.in_([s.value for s in EXPLORER_OCCUPYING_STATUSES]),
                tasks.c.explorer_id.is_not(None),
            )
            .distinct()
        ).scalars()
    )
    rows = conn.execute(
        select(explorers.c.id, explorers.c.last_checkin_at, explorers.c.poll_dropped_at)
    ).mappings()
    return [{**row, "busy": row["id"] in busy} for row in rows]


def active_scan_probes(conn: Connection) -> list[tuple[int, datetime | None]]:
    """Each running scan's probes sent so far (its last progress report) and when it began."""
    rows = conn.execute(
        select(tasks.c.stats, tasks.c.data_acquisition_started_at).where(
            tasks.c.status == TaskStatus.ACTIVE.value
        )
    )
    return [(int((stats or {}).get("probes_sent") or 0), began) for stats, began in rows]
