"""System tasks in the task system (SPEC §10): each system kind that runs (Outlier calculation,
Retention) shows `created_by: system`, appears in the tabs and their counts, is found by
`type:…`, never occupies an explorer, and is processed under a lease like any processing (a
lost lease requeues it, and another worker finishes it), on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from surveyor.core import kinds
from surveyor.processing import queue
from surveyor.processing.worker import Worker, WorkerSettings
from surveyor.scheduler.tick import Scheduler
from surveyor.store.outliers import request_outlier_calculation
from tests.support.console import ConsoleUnderTest
from tests.support.explorers import enroll

SYSTEM_KINDS = ("outlier", "retention")


def site_id(console: ConsoleUnderTest) -> int:
    return int(console.admin.get("/api/v1/sites").json()[0]["id"])


def queue_outlier(console: ConsoleUnderTest) -> int:
    site = site_id(console)
    with console.db.write() as conn:
        task = request_outlier_calculation(
            conn, console.organization_id, site, now=datetime.now(UTC)
        )
    assert task is not None
    return task.id


def queue_retention(console: ConsoleUnderTest) -> int:
    """Run the organization's daily Retention task now: its run, queued by the scheduler."""
    [template] = console.admin.get(
        "/api/v1/tasks", params={"tab": "recurring", "search": "type:retention hidden:true"}
    ).json()["items"]
    answer = console.admin.post(f"/api/v1/tasks/{template['id']}/run-now")
    assert answer.status_code == 200, answer.text
    run = answer.json()
    scheduler = Scheduler(console.db)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    return int(run["id"])


QUEUE: dict[str, Callable[[ConsoleUnderTest], int]] = {
    "outlier": queue_outlier,
    "retention": queue_retention,
}


def listed(console: ConsoleUnderTest, tab: str, search: str) -> list[dict[str, Any]]:
    answer = console.admin.get("/api/v1/tasks", params={"tab": tab, "search": search})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def counts(console: ConsoleUnderTest, search: str) -> dict[str, int]:
    answer = console.admin.get("/api/v1/tasks/counts", params={"search": search})
    return dict(answer.json()["counts"])


@pytest.mark.parametrize("kind", SYSTEM_KINDS)
def test_a_system_task_is_in_the_tabs_by_type_and_created_by_system(
    console: ConsoleUnderTest, tmp_path: Path, kind: str
) -> None:
    task_id = QUEUE[kind](console)
    search = f"type:{kind} created_by:system"
    [queued] = listed(console, "processing", search)
    assert queued["id"] == task_id
    assert queued["status"] == "processing_queued"
    assert queued["created_by"] == "system"
    assert queued["explorer_id"] is None
    assert counts(console, search)["processing"] == 1

    Worker(console.db, tmp_path, name="test").drain()

    [done] = listed(console, "completed", search)
    assert done["id"] == task_id
    assert done["status"] == "processed"
    assert counts(console, search)["completed"] == 1
    assert counts(console, search)["processing"] == 0


@pytest.mark.parametrize("kind", SYSTEM_KINDS)
def test_no_explorer_is_given_or_held_by_a_system_task(
    console: ConsoleUnderTest, kind: str
) -> None:
    explorer = enroll(console)
    task_id = QUEUE[kind](console)
    assert explorer.poll() is None
    found = console.admin.get("/api/v1/explorers").json()
    items = found["items"] if isinstance(found, dict) else found
    assert [item["current_task_id"] for item in items] == [None]
    assert kinds.kind_of(kind).collector is kinds.Collector.NOBODY
    assert kind not in kinds.launched_types()
    shown = console.admin.get(f"/api/v1/tasks/{task_id}").json()
    assert shown["explorer_id"] is None
    assert shown["hosted_zone_id"] is None


@pytest.mark.parametrize("kind", SYSTEM_KINDS)
def test_a_lost_lease_requeues_a_system_task_and_another_worker_finishes_it(
    console: ConsoleUnderTest, tmp_path: Path, kind: str
) -> None:
    task_id = QUEUE[kind](console)
    claimed_at = datetime.now(UTC)
    with console.db.write() as conn:
        claim = queue.claim_next_task(conn, "worker-that-dies", now=claimed_at, lease_seconds=30)
    assert claim is not None
    assert claim.task_id == task_id
    assert listed(console, "processing", f"type:{kind}")[0]["status"] == "processing"

    survivor = Worker(console.db, tmp_path, WorkerSettings(), name="survivor")
    survivor.requeue_expired(claimed_at + timedelta(seconds=31))
    requeued = console.admin.get(f"/api/v1/tasks/{task_id}").json()
    assert requeued["status"] == "processing_queued"
    messages = [
        event["message"]
        for event in console.admin.get(f"/api/v1/tasks/{task_id}/events").json()["items"]
    ]
    assert any("lease expired" in message for message in messages)

    assert survivor.drain() >= 1
    assert console.admin.get(f"/api/v1/tasks/{task_id}").json()["status"] == "processed"
