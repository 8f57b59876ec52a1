"""The scheduler benchmark's data: N recurring templates with an occurrence at the same instant.

The templates are what operators create: hourly, daily, weekly and monthly schedules and cron
expressions, in several time zones, created on different days (so their stored rules differ),
all of which happen to have an occurrence at DUE. Each one is checked to really be due then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select, text

from surveyor.core.recurrence import Recurrence, next_occurrence, parse_recurrence
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus, WaitReason
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.migrate import upgrade
from surveyor.store.records import create_record
from surveyor.store.schema import metadata, sites, tasks
from surveyor.store.search_index import TRIGRAM_COLUMNS, drop_trigram_indexes

#: The instant every template is due (a Monday, the 7th: weekly and monthly rules fit too).
DUE = datetime(2030, 1, 7, 3, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Prepared:
    organization_id: int
    #: as the store reads them: what the scheduler's service layer takes
    templates: list[Task]


def recurrence_for(index: int) -> Recurrence:
    """The index-th template's schedule: one with an occurrence at DUE."""
    zone = ZONES[index % len(ZONES)]
    local = DUE.astimezone(ZoneInfo(zone))
    created = DUE - timedelta(days=1 + index % 300, minutes=index % 1440)
    at = f"{local:%H:%M}"
    match index % 5:
        case 0:
            start = DUE - timedelta(hours=1 + index % 1000)
            return parse_recurrence("hourly", start=start, now=start - timedelta(minutes=1))
        case 1:
            return parse_recurrence("daily", time=at, timezone=zone, now=created)
        case 2:
            weekday = ("mo", "tu", "we", "th", "fr", "sa", "su")[local.weekday()]
            return parse_recurrence(
                "weekly", weekdays=[weekday], time=at, timezone=zone, now=created
            )
        case 3:
            return parse_recurrence(
                "monthly", day_of_month=local.day, time=at, timezone=zone, now=created
            )
        case _:
            cron = f"{local.minute} {local.hour} * * *"
            return parse_recurrence("cron", cron=cron, timezone=zone, now=created)


def reset(engine: Engine) -> None:
    """An empty, migrated database."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            # The trigram search's FTS5 tables (migration 0023) are not in the metadata.
            drop_trigram_indexes(conn, TRIGRAM_COLUMNS)
            for table in reversed(metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"'))
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)


def prepare(db: Database, count: int) -> Prepared:
    """Reset the database and store `count` templates due at DUE."""
    reset(db.engine)
    created_at = DUE - timedelta(days=400)
    with db.write() as conn:
        org = accounts.create_organization(conn, "Bench")
        site = create_record(conn, sites, org["id"], {"name": "HQ", "scope": "127.0.0.1"})
        rows = []
        for index in range(count):
            recurrence = recurrence_for(index)
            if next_occurrence(recurrence, DUE - _JUST_BEFORE) != DUE:
                raise AssertionError(f"template {index} is not due at {DUE}: {recurrence}")
            frequency, rule, zone = recurrence.to_stored()
            row: dict[str, Any] = {
                "organization_id": org["id"],
                "site_id": site["id"],
                "name": f"sweep {index}",
                "description": "",
                "type": "scan",
                "status": TaskStatus.NEW.value,
                "params": {"targets": "127.0.0.1"},
                "targets": "127.0.0.1",
                "stats": {},
                "hidden": False,
                "recur": True,
                "recur_frequency": frequency,
                "recur_rule": rule,
                "timezone": zone,
                "recur_next": DUE,
                "wait_reason": WaitReason.NOT_DUE.value,
                "grace_period": 3600,
                "created_by": "bench@example.test",
                "created_at": created_at,
                "updated_at": created_at,
                "version": 1,
            }
            row.update(task_store.placement(row, previous=None, now=created_at))
            rows.append(row)
        ids = list(
            conn.execute(
                insert(tasks).returning(tasks.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
        stored = conn.execute(select(tasks).where(tasks.c.id.in_(ids))).mappings()
        by_id = {row["id"]: Task.from_row(row) for row in stored}
        templates = [by_id[task_id] for task_id in ids]
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE tasks"))
    return Prepared(org["id"], templates)
