"""An explorer uploading a scan's data is still busy with it: the API and the Explorers page
show that task as its current one, and neither the explorer nor the scan's hosted zone or
site can be deleted until the upload is over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from surveyor.core.resources import Explorer
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.service.launch import launch
from surveyor.store import tasks as task_store
from surveyor.store.records import create_record
from surveyor.store.schema import explorers
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest


def uploading_scan(console: ConsoleUnderTest) -> tuple[dict[str, Any], Task]:
    """An explorer whose scan finished and is uploading its data (`scanned`), the scan in a
    site of its own (not the organization's last) and a hosted zone."""
    site = console.admin.post("/api/v1/sites", json={"name": "branch", "scope": "127.0.0.1"})
    zone = console.admin.post("/api/v1/hosted-zones", json={"name": "edge"})
    with console.db.write() as conn:
        explorer = create_record(
            conn,
            explorers,
            console.organization_id,
            {"name": "edge-1", "addresses": [], "hosted_zone_id": zone.json()["id"]},
        )
    created = console.admin.post(
        "/api/v1/tasks",
        json={"name": "sweep", "site_id": site.json()["id"], "hosted_zone_id": zone.json()["id"]},
    )
    assert created.status_code == 201, created.text
    with console.db.write() as conn:
        task = task_store.get_task(conn, console.organization_id, created.json()["id"])
        assert task is not None
        launch(conn, task, Explorer.from_row(explorer), now=datetime.now(UTC))
        scan = task_store.transition(
            conn, console.organization_id, task.id, TaskStatus.SCANNED, actor="explorer:test"
        )
    assert scan.explorer_id == explorer["id"]
    return explorer, scan


def upload_done(console: ConsoleUnderTest, scan: Task) -> None:
    with console.db.write() as conn:
        task_store.transition(
            conn,
            console.organization_id,
            scan.id,
            TaskStatus.PROCESSING_QUEUED,
            actor="explorer:test",
        )


def test_the_api_shows_an_uploading_scan_as_its_explorers_current_task(
    console: ConsoleUnderTest,
) -> None:
    explorer, scan = uploading_scan(console)
    shown = console.admin.get(f"/api/v1/explorers/{explorer['id']}").json()
    assert shown["current_task_id"] == scan.id
    listed = {e["id"]: e for e in console.admin.get("/api/v1/explorers").json()}
    assert listed[explorer["id"]]["current_task_id"] == scan.id

    upload_done(console, scan)
    shown = console.admin.get(f"/api/v1/explorers/{explorer['id']}").json()
    assert shown["current_task_id"] is None


def test_the_explorers_page_shows_an_uploading_scan_as_the_current_task(
    console: ConsoleUnderTest,
) -> None:
    _, scan = uploading_scan(console)
    client, _ = signed_in(console, "viewer")
    row = client.get("/explorers").text.split("edge-1", 1)[1].split("</tr>", 1)[0]
    assert f">#{scan.id}</a>" in row
    assert "idle" not in row

    upload_done(console, scan)
    row = client.get("/explorers").text.split("edge-1", 1)[1].split("</tr>", 1)[0]
    assert f">#{scan.id}</a>" not in row
    assert "idle" in row


def test_an_explorer_uploading_a_scan_is_not_deleted_and_the_answer_says_why(
    console: ConsoleUnderTest,
) -> None:
    explorer, scan = uploading_scan(console)
    refused = console.admin.delete(f"/api/v1/explorers/{explorer['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "conflict",
        "message": f"this explorer is uploading the data of task {scan.id}; "
        "wait until the upload has finished",
        "details": {"task_id": scan.id, "status": "scanned"},
    }
    assert console.admin.get(f"/api/v1/explorers/{explorer['id']}").status_code == 200

    upload_done(console, scan)
    assert console.admin.delete(f"/api/v1/explorers/{explorer['id']}").status_code == 204
    assert console.admin.get(f"/api/v1/explorers/{explorer['id']}").status_code == 404


@pytest.mark.parametrize(
    ("path", "field", "whose"),
    [("sites", "site_id", "of this site"), ("hosted-zones", "hosted_zone_id", "in this zone")],
)
def test_the_site_and_zone_of_an_uploading_scan_are_not_deleted_either(
    console: ConsoleUnderTest, path: str, field: str, whose: str
) -> None:
    _, scan = uploading_scan(console)
    refused = console.admin.delete(f"/api/v1/{path}/{getattr(scan, field)}")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"tasks {whose} are stopping or uploading their data; wait until they finish"
    )
    assert refused.json()["error"]["details"] == {"task_ids": [scan.id]}

    upload_done(console, scan)
    assert console.admin.delete(f"/api/v1/{path}/{getattr(scan, field)}").status_code == 204


def test_an_explorer_running_a_scan_is_not_deleted_until_it_is_stopped(
    console: ConsoleUnderTest,
) -> None:
    with console.db.write() as conn:
        explorer = create_record(
            conn, explorers, console.organization_id, {"name": "edge-2", "addresses": []}
        )
    scan = console.admin.post(
        "/api/v1/tasks", json={"name": "sweep", "explorer_id": explorer["id"]}
    ).json()
    with console.db.write() as conn:
        task_store.transition(
            conn, console.organization_id, scan["id"], TaskStatus.ACTIVE, actor="explorer:test"
        )
    refused = console.admin.delete(f"/api/v1/explorers/{explorer['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"this explorer is running task {scan['id']}; stop it first"
    )


def test_the_zone_page_refuses_to_delete_the_zone_of_an_uploading_scan(
    console: ConsoleUnderTest,
) -> None:
    _, scan = uploading_scan(console)
    zone_id = scan.hosted_zone_id
    client, csrf = signed_in(console, "admin")
    members = client.get(f"/hosted-zones/{zone_id}").text.split('id="zone-members"', 1)[1]
    assert f">#{scan.id}</a>" in members
    refused = client.post(f"/hosted-zones/{zone_id}/delete", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert (
        "Tasks in this zone are stopping or uploading their data; wait until they finish."
        in refused.text
    )
    assert console.admin.get(f"/api/v1/hosted-zones/{zone_id}").status_code == 200
