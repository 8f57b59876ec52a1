"""Explorer persistence: enrollment tokens, explorer secrets and check-ins, and the queries
the launch rule and the explorer supervisor run over tasks.

Secrets are stored only as SHA-256 digests; the public `lookup` half of a secret finds the
row. On PostgreSQL the launch queries lock what they decide on (`FOR UPDATE`, skipping
candidate tasks another console is already handing out); SQLite serializes writers anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Select, and_, bindparam, func, or_, select, update

from surveyor.core import kinds
from surveyor.core.resources import Explorer, HostedZone
from surveyor.core.task import Task
from surveyor.core.tasks import EXPLORER_OCCUPYING_STATUSES, Tab, TaskStatus
from surveyor.security.tokens import IssuedToken, issue_token, secret_matches, split_secret
from surveyor.store import records
from surveyor.store.accounts import insert_issued
from surveyor.store.schema import enrollment_tokens, explorers, hosted_zones, task_events, tasks

ENROLLMENT_TOKEN_PREFIX = "sve"  # noqa: S105 (a prefix, not a secret)
EXPLORER_SECRET_PREFIX = "svx"  # noqa: S105

_RUNNING = sorted(status.value for status in EXPLORER_OCCUPYING_STATUSES)


def _row(
    conn: Connection, query: Any, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    found = conn.execute(query, params).mappings().first()
    return dict(found) if found is not None else None


# The statements an explorer's every poll runs (its secret looked up, its check-in), made
# once: a console holding thousands of polls runs them many times a second, and a statement
# built per call leaves reference cycles for the garbage collector, whose pauses are then
# the slowest check-ins.
_EXPLORER_BY_LOOKUP = select(explorers).where(
    explorers.c.secret_lookup == bindparam("secret_lookup")
)
_TOKEN_BY_LOOKUP = select(enrollment_tokens).where(
    enrollment_tokens.c.lookup == bindparam("secret_lookup")
)
_CHECKIN = (
    update(explorers)
    .where(explorers.c.id == bindparam("checkin_explorer"))
    .values(
        last_checkin_at=bindparam("checkin_at", type_=explorers.c.last_checkin_at.type),
        poll_dropped_at=None,
    )
)
_CHECKIN_WITH_HOST = _CHECKIN.values(
    version=bindparam("checkin_version", type_=explorers.c.version.type),
    hostname=bindparam("checkin_hostname", type_=explorers.c.hostname.type),
    os=bindparam("checkin_os", type_=explorers.c.os.type),
    addresses=bindparam("checkin_addresses", type_=explorers.c.addresses.type),
)


def _row_by_secret(
    conn: Connection, by_lookup: Select[Any], plaintext: str, prefix: str
) -> dict[str, Any] | None:
    """The row `by_lookup` finds for a `<prefix>_<lookup>_<secret>` credential, if its
    secret matches the stored `secret_hash`; else None."""
    parts = split_secret(plaintext, prefix)
    if parts is None:
        return None
    lookup, secret = parts
    row = _row(conn, by_lookup, {"secret_lookup": lookup})
    if row is None or not row["secret_hash"] or not secret_matches(secret, row["secret_hash"]):
        return None
    return row


# Enrollment tokens


def create_enrollment_token(
    conn: Connection,
    organization_id: int,
    *,
    name: str,
    created_by: str,
    now: datetime,
    site_id: int | None = None,
    hosted_zone_id: int | None = None,
    expires_at: datetime | None = None,
    max_uses: int | None = None,
) -> tuple[dict[str, Any], str]:
    """Create an enrollment token; return its row and the plaintext (never stored)."""
    values = {
        "organization_id": organization_id,
        "name": name,
        "site_id": site_id,
        "hosted_zone_id": hosted_zone_id,
        "created_by": created_by,
        "created_at": now,
        "expires_at": expires_at,
        "max_uses": max_uses,
        "uses": 0,
    }
    return insert_issued(conn, enrollment_tokens, issue_token(ENROLLMENT_TOKEN_PREFIX), values)


def get_enrollment_token(
    conn: Connection, organization_id: int, token_id: int
) -> dict[str, Any] | None:
    return records.get_record(conn, enrollment_tokens, organization_id, token_id)


def list_enrollment_tokens(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[dict[str, Any]]:
    return records.list_records(
        conn, enrollment_tokens, organization_id, limit=limit, after_id=after_id
    )


def revoke_enrollment_token(
    conn: Connection, organization_id: int, token_id: int, *, now: datetime
) -> dict[str, Any] | None:
    """Mark a token revoked (once; revoking again keeps the first time)."""
    conn.execute(
        update(enrollment_tokens)
        .where(
            enrollment_tokens.c.id == token_id,
            enrollment_tokens.c.organization_id == organization_id,
            enrollment_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return get_enrollment_token(conn, organization_id, token_id)


def find_enrollment_token(conn: Connection, plaintext: str) -> dict[str, Any] | None:
    """The token row this plaintext proves, whatever its state (revoked, expired)."""
    return _row_by_secret(conn, _TOKEN_BY_LOOKUP, plaintext, ENROLLMENT_TOKEN_PREFIX)


def count_enrollment(conn: Connection, token_id: int, *, now: datetime) -> bool:
    """Count one more use of the token, unless that would pass its `max_uses`; returns
    whether it was counted. One conditional statement, so concurrent enrollments (on
    PostgreSQL the second waits for the first's row lock) never exceed the limit."""
    result = conn.execute(
        update(enrollment_tokens)
        .where(
            enrollment_tokens.c.id == token_id,
            or_(
                enrollment_tokens.c.max_uses.is_(None),
                enrollment_tokens.c.uses < enrollment_tokens.c.max_uses,
            ),
        )
        .values(uses=enrollment_tokens.c.uses + 1, last_used_at=now)
    )
    return result.rowcount == 1


# Explorers


def name_taken(conn: Connection, organization_id: int, name: str) -> bool:
    return records.find_by_name(conn, explorers, organization_id, name) is not None


def create_explorer(
    conn: Connection, organization_id: int, values: Mapping[str, Any], *, now: datetime
) -> tuple[Explorer, str]:
    """Create an explorer with a fresh secret; return its row and the plaintext secret.

    Raises `records.Conflict` when the name is taken in the organization.
    """
    issued: IssuedToken = issue_token(EXPLORER_SECRET_PREFIX)
    row = records.create_record(
        conn,
        explorers,
        organization_id,
        {
            "addresses": [],
            **values,
            "secret_lookup": issued.lookup,
            "secret_hash": issued.secret_hash,
        },
        now=now,
    )
    return Explorer.from_row(row), issued.plaintext


def explorer_by_secret(conn: Connection, plaintext: str) -> Explorer | None:
    """The explorer this secret belongs to, or None (unknown, wrong, or deleted)."""
    row = _row_by_secret(conn, _EXPLORER_BY_LOOKUP, plaintext, EXPLORER_SECRET_PREFIX)
    return Explorer.from_row(row) if row is not None else None


def _explorer(conn: Connection, query: Any) -> Explorer | None:
    row = conn.execute(query).mappings().first()
    return Explorer.from_row(row) if row is not None else None


def get_explorer(conn: Connection, explorer_id: int) -> Explorer | None:
    """The explorer with this id, whatever its organization (for the explorer protocol and
    the supervisor; pages and the API use `records.get_explorer`)."""
    return _explorer(conn, select(explorers).where(explorers.c.id == explorer_id))


def record_checkin(
    conn: Connection,
    explorer_id: int,
    *,
    now: datetime,
    host: Mapping[str, Any] | None = None,
) -> None:
    """Note that the explorer was heard from now, with its version and host info if given
    (whatever poll of it was dropped before, it is back)."""
    if host is None:
        conn.execute(_CHECKIN, {"checkin_explorer": explorer_id, "checkin_at": now})
        return
    conn.execute(
        _CHECKIN_WITH_HOST,
        {
            "checkin_explorer": explorer_id,
            "checkin_at": now,
            "checkin_version": host["version"],
            "checkin_hostname": host["hostname"],
            "checkin_os": host["os"],
            "checkin_addresses": list(host["addresses"]),
        },
    )


def record_poll_dropped(
    conn: Connection, explorer_id: int, *, checked_in_at: datetime, now: datetime
) -> bool:
    """Note that the poll the explorer began with its check-in at `checked_in_at` was
    dropped. Nothing is written when it has checked in since (it is already polling again,
    perhaps through another console); returns whether the drop was noted."""
    result = conn.execute(
        update(explorers)
        .where(
            explorers.c.id == explorer_id,
            explorers.c.last_checkin_at == checked_in_at,
            explorers.c.poll_dropped_at.is_(None),
        )
        .values(poll_dropped_at=now)
    )
    return result.rowcount == 1


def lock_explorer(conn: Connection, explorer_id: int) -> Explorer | None:
    """Read the explorer and hold it until the transaction ends, so that two consoles never
    launch two scans on one explorer."""
    return _explorer(conn, select(explorers).where(explorers.c.id == explorer_id).with_for_update())


def lock_zone(conn: Connection, zone_id: int) -> HostedZone | None:
    """Read the hosted zone and hold it, so that concurrent launches count its slots in turn."""
    row = _row(conn, select(hosted_zones).where(hosted_zones.c.id == zone_id).with_for_update())
    return HostedZone.from_row(row) if row is not None else None


def tasks_on_explorer(conn: Connection, explorer_id: int) -> list[Task]:
    """Tasks that occupy the explorer (`EXPLORER_OCCUPYING_STATUSES`)."""
    rows = conn.execute(
        select(tasks)
        .where(tasks.c.explorer_id == explorer_id, tasks.c.status.in_(_RUNNING))
        .order_by(tasks.c.id)
    ).mappings()
    return [Task.from_row(row) for row in rows]


def count_running_in_zone(conn: Connection, zone_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(tasks)
            .where(tasks.c.hosted_zone_id == zone_id, tasks.c.status.in_(_RUNNING))
        ).scalar_one()
    )


def current_tasks_of(conn: Connection, organization_ids: Iterable[int]) -> dict[int, int]:
    """The task occupying each explorer of these organizations (explorer id -> task id), in
    one query (few tasks run at once; an explorer with two, e.g. one still stopping, shows
    the newer). No GROUP BY: it would tempt SQLite into walking the explorer index over
    every task. The organizations are picked out here, not in SQL: with statistics, SQLite
    would rather skip-scan `ix_tasks_search` through every task of the organization (83 ms
    on a million tasks) than read the few running ones from the status index (about 1 ms)."""
    wanted = set(organization_ids)
    rows = conn.execute(
        select(tasks.c.explorer_id, tasks.c.id, tasks.c.organization_id).where(
            tasks.c.status.in_(_RUNNING), tasks.c.explorer_id.is_not(None)
        )
    ).all()
    current: dict[int, int] = {}
    for explorer_id, task_id, organization_id in rows:
        if organization_id in wanted:
            current[explorer_id] = max(task_id, current.get(explorer_id, 0))
    return current


def occupying_tasks(
    conn: Connection,
    organization_id: int,
    *,
    site_id: int | None = None,
    hosted_zone_id: int | None = None,
    explorer_id: int | None = None,
    limit: int = 100,
) -> list[tuple[int, TaskStatus]]:
    """(id, status) of the tasks of a site, a hosted zone or an explorer (the one given)
    that occupy an explorer now, oldest first; removed tasks do not count."""
    query = select(tasks.c.id, tasks.c.status).where(
        tasks.c.organization_id == organization_id,
        tasks.c.status.in_(_RUNNING),
        tasks.c.removed_at.is_(None),
    )
    for column, wanted in (
        (tasks.c.site_id, site_id),
        (tasks.c.hosted_zone_id, hosted_zone_id),
        (tasks.c.explorer_id, explorer_id),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    rows = conn.execute(query.order_by(tasks.c.id).limit(limit)).all()
    return [(task_id, TaskStatus(status)) for task_id, status in rows]


def zone_member_counts(conn: Connection, zone_ids: Iterable[int]) -> dict[int, int]:
    """How many explorers each of these hosted zones has (zones without any are absent)."""
    wanted = sorted(set(zone_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(explorers.c.hosted_zone_id, func.count())
        .where(explorers.c.hosted_zone_id.in_(wanted))
        .group_by(explorers.c.hosted_zone_id)
    ).all()
    return {zone_id: int(count) for zone_id, count in rows}


def _due_tasks(now: datetime | BindParameter[datetime], types: Sequence[str]) -> Any:
    """Tasks of these types waiting to launch whose start time has come (hidden ones too)."""
    return and_(
        tasks.c.tab == Tab.SCHEDULED.value,
        tasks.c.status == TaskStatus.NEW.value,
        tasks.c.recur.is_(False),
        tasks.c.removed_at.is_(None),
        tasks.c.type.in_(types),
        or_(tasks.c.start_time.is_(None), tasks.c.start_time <= now),
    )


def _due_scans(now: datetime | BindParameter[datetime]) -> Any:
    """Tasks explorers collect waiting to launch whose start time has come: scans, and the
    connector runs that name their explorer."""
    return _due_on_explorers(
        now, tuple(kinds.launched_on_explorers()), tuple(kinds.pinned_to_explorers())
    )


def _due_on_explorers(
    now: datetime | BindParameter[datetime], launched: Sequence[str], pinned: Sequence[str]
) -> Any:
    due = _due_tasks(now, [*launched, *pinned])
    if not pinned:
        return due
    return and_(due, or_(tasks.c.type.not_in(pinned), tasks.c.explorer_id.is_not(None)))


def _meant_for(explorer: Explorer) -> Any:
    """Tasks this explorer may run: its own, its zone's, and unassigned ones of its site
    (an explorer without a site serves every site)."""
    unassigned = and_(tasks.c.explorer_id.is_(None), tasks.c.hosted_zone_id.is_(None))
    if explorer.site_id is not None:
        unassigned = and_(unassigned, tasks.c.site_id == explorer.site_id)
    choices = [tasks.c.explorer_id == explorer.id, unassigned]
    if explorer.hosted_zone_id is not None:
        choices.append(
            and_(
                tasks.c.explorer_id.is_(None),
                tasks.c.hosted_zone_id == explorer.hosted_zone_id,
            )
        )
    return and_(tasks.c.organization_id == explorer.organization_id, or_(*choices))


def has_launch_candidates(conn: Connection, explorer: Explorer, *, now: datetime) -> bool:
    """Whether any due scan could go to this explorer (a cheap read before a claim)."""
    found = conn.execute(
        select(tasks.c.id).where(_due_scans(now), _meant_for(explorer)).limit(1)
    ).first()
    return found is not None


@dataclass(frozen=True, slots=True)
class LaunchWork:
    """Who could be handed work now, from one look at the tasks: the targets of every due
    scan, and the explorers that scans occupy. `may_serve` answers for any explorer what
    `has_launch_candidates` or `tasks_on_explorer` would, without asking the database."""

    #: organization -> (explorer_id, hosted_zone_id, site_id) of its due scans
    due: Mapping[int, frozenset[tuple[int | None, int | None, int | None]]]
    occupied: frozenset[int]

    def may_serve(self, explorer: Explorer) -> bool:
        if explorer.id in self.occupied:
            return True
        for explorer_id, zone_id, site_id in self.due.get(explorer.organization_id, ()):
            if explorer_id is not None:
                if explorer_id == explorer.id:
                    return True
            elif zone_id is not None:
                if zone_id == explorer.hosted_zone_id:
                    return True
            elif explorer.site_id is None or site_id == explorer.site_id:
                return True
        return False


@functools.lru_cache(maxsize=4)
def _launch_work_reads(
    launched: tuple[str, ...], pinned: tuple[str, ...]
) -> tuple[Select[Any], Select[Any]]:
    """`launch_work`'s two reads for these kinds (made once: the poll watch looks at every
    change), the time given as `due_now`."""
    now = bindparam("due_now", type_=tasks.c.start_time.type)
    due = (
        select(
            tasks.c.organization_id, tasks.c.explorer_id, tasks.c.hosted_zone_id, tasks.c.site_id
        )
        .where(_due_on_explorers(now, launched, pinned))
        .distinct()
    )
    occupied = (
        select(tasks.c.explorer_id)
        .where(tasks.c.explorer_id.is_not(None), tasks.c.status.in_(_RUNNING))
        .distinct()
    )
    return due, occupied


def launch_work(conn: Connection, *, now: datetime) -> LaunchWork:
    """One look for every held poll (see `LaunchWork`): two small reads, whatever the
    number of explorers."""
    due_read, occupied_read = _launch_work_reads(
        tuple(kinds.launched_on_explorers()), tuple(kinds.pinned_to_explorers())
    )
    due: dict[int, set[tuple[int | None, int | None, int | None]]] = {}
    for organization_id, explorer_id, zone_id, site_id in conn.execute(due_read, {"due_now": now}):
        due.setdefault(int(organization_id), set()).add((explorer_id, zone_id, site_id))
    occupied = conn.execute(occupied_read).scalars()
    return LaunchWork(
        due={organization: frozenset(targets) for organization, targets in due.items()},
        occupied=frozenset(int(explorer_id) for explorer_id in occupied),
    )


def next_launch_candidate(
    conn: Connection, explorer: Explorer, *, now: datetime, passed: Iterable[int] = ()
) -> Task | None:
    """The soonest due scan this explorer may run (other than the `passed` ones), locked
    for this transaction. A row another console is launching right now is skipped rather
    than waited for; locking one row at a time leaves the others to other claimers."""
    query = select(tasks).where(_due_scans(now), _meant_for(explorer))
    skipped = list(passed)
    if skipped:
        query = query.where(tasks.c.id.not_in(skipped))
    row = (
        conn.execute(
            query.order_by(tasks.c.start_time, tasks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .first()
    )
    return Task.from_row(row) if row is not None else None


def next_console_candidate(conn: Connection, types: Sequence[str], *, now: datetime) -> Task | None:
    """The soonest due task of these types that names no explorer (the console runs it),
    locked for this transaction; rows another console is claiming are skipped."""
    if not types:
        return None
    row = (
        conn.execute(
            select(tasks)
            .where(_due_tasks(now, types), tasks.c.explorer_id.is_(None))
            .order_by(tasks.c.start_time, tasks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .first()
    )
    return Task.from_row(row) if row is not None else None


def console_runs(conn: Connection, types: Sequence[str], *, limit: int = 1000) -> list[Task]:
    """Tasks of these types that a console is collecting (no explorer runs them)."""
    if not types:
        return []
    rows = conn.execute(
        select(tasks)
        .where(
            tasks.c.type.in_(types),
            tasks.c.status.in_(_RUNNING),
            tasks.c.explorer_id.is_(None),
        )
        .order_by(tasks.c.id)
        .limit(limit)
    ).mappings()
    return [Task.from_row(row) for row in rows]


def waiting_scans(conn: Connection, *, now: datetime, limit: int = 500) -> list[Task]:
    """Due scans that have not launched yet, oldest start first."""
    rows = conn.execute(
        select(tasks).where(_due_scans(now)).order_by(tasks.c.start_time, tasks.c.id).limit(limit)
    ).mappings()
    return [Task.from_row(row) for row in rows]


def explorers_of(conn: Connection, organization_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Explorers of these organizations, each with `busy` (it runs a task)."""
    wanted = sorted(set(organization_ids))
    if not wanted:
        return []
    running = (
        select(tasks.c.explorer_id)
        .where(tasks.c.status.in_(_RUNNING), tasks.c.explorer_id.is_not(None))
        .distinct()
    )
    busy_ids = {row[0] for row in conn.execute(running)}
    rows = conn.execute(
        select(explorers).where(explorers.c.organization_id.in_(wanted)).order_by(explorers.c.id)
    ).mappings()
    return [{**dict(row), "busy": row["id"] in busy_ids} for row in rows]


def zone_loads(conn: Connection, zone_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each zone's row with `running`: how many of its tasks occupy an explorer."""
    wanted = sorted(set(zone_ids))
    if not wanted:
        return {}
    counts: dict[int, int] = dict(
        conn.execute(
            select(tasks.c.hosted_zone_id, func.count())
            .where(tasks.c.hosted_zone_id.in_(wanted), tasks.c.status.in_(_RUNNING))
            .group_by(tasks.c.hosted_zone_id)
        ).all()
    )
    rows = conn.execute(select(hosted_zones).where(hosted_zones.c.id.in_(wanted))).mappings()
    return {row["id"]: {**dict(row), "running": int(counts.get(row["id"], 0))} for row in rows}


def running_scans(conn: Connection, *, limit: int = 1000) -> list[Task]:
    """Tasks that occupy an explorer, for the supervisor's timeouts."""
    rows = conn.execute(
        select(tasks)
        .where(tasks.c.status.in_(_RUNNING), tasks.c.explorer_id.is_not(None))
        .order_by(tasks.c.id)
        .limit(limit)
    ).mappings()
    return [Task.from_row(row) for row in rows]


def stop_requested_at(conn: Connection, task: Task) -> datetime | None:
    """When the user asked this task to stop: the column if set, else its last transition
    to `stopping`."""
    if task.stop_requested_at is not None:
        return task.stop_requested_at
    at: datetime | None = conn.execute(
        select(func.max(task_events.c.at)).where(
            task_events.c.task_id == task.id,
            task_events.c.to_status == TaskStatus.STOPPING.value,
        )
    ).scalar_one_or_none()
    return at


def checkins_of(
    conn: Connection, organization_ids: Iterable[int]
) -> list[tuple[int, int, datetime | None, datetime | None]]:
    """(id, organization id, last check-in, poll dropped at) of the explorers of these
    organizations, by id: what says whether each is online."""
    rows = conn.execute(
        select(
            explorers.c.id,
            explorers.c.organization_id,
            explorers.c.last_checkin_at,
            explorers.c.poll_dropped_at,
        )
        .where(explorers.c.organization_id.in_(list(organization_ids)))
        .order_by(explorers.c.id)
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def has_due_tasks(conn: Connection, types: Sequence[str], *, now: datetime) -> bool:
    """Whether a task of these types waits to launch past its start time (a cheap read)."""
    found = conn.execute(select(tasks.c.id).where(_due_tasks(now, types)).limit(1)).first()
    return found is not None


def lock_due_tasks(
    conn: Connection, types: Sequence[str], *, now: datetime, limit: int
) -> list[Task]:
    """Tasks of these types waiting to launch past their start time, soonest first, locked
    for this transaction (rows another console holds are skipped, not waited for)."""
    rows = conn.execute(
        select(tasks)
        .where(_due_tasks(now, types))
        .order_by(tasks.c.start_time, tasks.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).mappings()
    return [Task.from_row(row) for row in rows]
