"""The launch rule (SPEC §5) on a real database: which due scan goes to which explorer, and
the wait reason of a scan that cannot launch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.service import launch
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.schema import task_events
from tests.support.explorers import (
    new_explorer,
    new_scan,
    new_site,
    new_zone,
    set_checkin,
    utcnow,
)

WINDOW = 60


@pytest.fixture
def org(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        organization = accounts.create_organization(conn, "Launch")
        site = new_site(conn, organization["id"], "Main")
    return {"id": organization["id"], "site_id": site["id"]}


def claim(db: Database, explorer: dict[str, Any]) -> Task | None:
    with db.write() as conn:
        return launch.claim_task(conn, explorer["id"], now=utcnow())


def claimed_id(db: Database, explorer: dict[str, Any]) -> int | None:
    launched = claim(db, explorer)
    return None if launched is None else int(launched.id)


def refresh(db: Database) -> None:
    with db.write() as conn:
        launch.refresh_waiting_scans(conn, now=utcnow(), online_window=WINDOW)


def reload(db: Database, task: Task) -> Task:
    with db.read() as conn:
        found = task_store.get_task(conn, task.organization_id, task.id)
    assert found is not None
    return found


def test_a_scan_for_an_online_idle_explorer_launches_on_it_with_an_attempt_token(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        explorer = new_explorer(conn, org["id"])
        other = new_explorer(conn, org["id"])
        scan = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer["id"])

    assert claim(db, other) is None
    launched = claim(db, explorer)

    assert launched is not None
    assert launched.id == scan.id
    assert launched.status == TaskStatus.ACTIVE
    assert launched.attempt == 1
    assert len(launched.attempt_token) == 32
    assert launched.data_acquisition_started_at is not None


def test_a_scan_for_an_offline_explorer_waits_with_reason_explorer_offline(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        explorer = new_explorer(conn, org["id"], online=False)
        scan = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer["id"])

    refresh(db)

    assert reload(db, scan).wait_reason == "explorer_offline"


def test_a_scan_for_a_busy_explorer_waits_with_reason_explorer_busy(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        explorer = new_explorer(conn, org["id"])
        first = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer["id"])
        second = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer["id"])

    launched = claim(db, explorer)
    assert launched is not None
    assert launched.id == first.id
    assert claim(db, explorer) is None
    refresh(db)

    assert reload(db, second).status == TaskStatus.NEW
    assert reload(db, second).wait_reason == "explorer_busy"


def test_a_zone_scan_waits_with_reason_zone_full_while_every_slot_is_taken(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        zone = new_zone(conn, org["id"], max_concurrent=1)
        busy = new_explorer(conn, org["id"], zone_id=zone["id"])
        idle = new_explorer(conn, org["id"], zone_id=zone["id"])
        first = new_scan(conn, org["id"], org["site_id"], zone_id=zone["id"])
        second = new_scan(conn, org["id"], org["site_id"], zone_id=zone["id"])

    assert claimed_id(db, busy) == first.id
    assert claim(db, idle) is None
    refresh(db)

    assert reload(db, second).wait_reason == "zone_full"


def test_a_zone_scan_goes_to_an_idle_online_member_while_the_zone_has_a_free_slot(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        zone = new_zone(conn, org["id"], max_concurrent=2)
        first_member = new_explorer(conn, org["id"], zone_id=zone["id"])
        second_member = new_explorer(conn, org["id"], zone_id=zone["id"])
        outsider = new_explorer(conn, org["id"], site_id=org["site_id"])
        scans = [new_scan(conn, org["id"], org["site_id"], zone_id=zone["id"]) for _ in range(2)]

    assert claim(db, outsider) is None
    one = claim(db, first_member)
    two = claim(db, second_member)

    assert one is not None
    assert two is not None
    assert {one.id, two.id} == {scan.id for scan in scans}
    assert one.explorer_id == first_member["id"]
    assert one.hosted_zone_id == zone["id"]


def test_a_zone_scan_waits_for_a_member_when_the_zone_has_a_slot_but_no_idle_member(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        zone = new_zone(conn, org["id"], max_concurrent=3)
        member = new_explorer(conn, org["id"], zone_id=zone["id"])
        new_explorer(conn, org["id"], zone_id=zone["id"], online=False)
        running = new_scan(conn, org["id"], org["site_id"], explorer_id=member["id"])
        waiting = new_scan(conn, org["id"], org["site_id"], zone_id=zone["id"])
        empty_zone = new_zone(conn, org["id"])
        orphan = new_scan(conn, org["id"], org["site_id"], zone_id=empty_zone["id"])

    assert claimed_id(db, member) == running.id
    refresh(db)

    assert reload(db, waiting).wait_reason == "explorer_busy"
    assert reload(db, orphan).wait_reason == "zone_empty"


def test_a_scan_with_no_explorer_or_zone_goes_to_an_explorer_of_its_site_or_without_site(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        other_site = new_site(conn, org["id"])
        elsewhere = new_explorer(conn, org["id"], site_id=other_site["id"])
        other_org = accounts.create_organization(conn, "Elsewhere")
        foreign = new_explorer(conn, other_org["id"])
        local = new_explorer(conn, org["id"], site_id=org["site_id"])
        anywhere = new_explorer(conn, org["id"])
        scans = [new_scan(conn, org["id"], org["site_id"]) for _ in range(2)]

    assert claim(db, elsewhere) is None
    assert claim(db, foreign) is None
    assert claimed_id(db, local) == scans[0].id
    assert claimed_id(db, anywhere) == scans[1].id


def test_scans_that_are_not_due_templates_and_removed_scans_never_launch(
    db: Database, org: dict[str, Any]
) -> None:
    now = utcnow()
    with db.write() as conn:
        explorer = new_explorer(conn, org["id"])
        later = new_scan(conn, org["id"], org["site_id"], start_time=now + timedelta(hours=1))
        template = new_scan(conn, org["id"], org["site_id"])
        task_store.write_task(conn, template, {"recur": True, "recur_frequency": "daily"})
        removed = new_scan(conn, org["id"], org["site_id"])
        task_store.write_task(conn, removed, {"removed_at": now})

    assert claim(db, explorer) is None
    assert reload(db, later).status == TaskStatus.NEW


def test_the_wait_reason_follows_the_explorer_and_is_written_only_when_it_changes(
    db: Database, org: dict[str, Any]
) -> None:
    with db.write() as conn:
        explorer = new_explorer(conn, org["id"], online=False)
        scan = new_scan(conn, org["id"], org["site_id"], explorer_id=explorer["id"])

    refresh(db)
    first = reload(db, scan)
    refresh(db)
    again = reload(db, scan)

    assert first.wait_reason == "explorer_offline"
    assert again.version == first.version
    with db.write() as conn:
        set_checkin(conn, explorer["id"], utcnow())
    refresh(db)
    assert reload(db, scan).wait_reason is None
    with db.read() as conn:
        waits = conn.execute(
            select(task_events.c.message).where(
                task_events.c.task_id == scan.id, task_events.c.kind == "waiting"
            )
        ).all()
    assert len(waits) == 1
    assert "waiting for its explorer to come online" in waits[0].message
