"""The hot listings answer, byte for byte, the JSON their response models write for the same
rows (`console/listing_json.py`), on both backends: tasks by tab and search, a template's
runs, a task's events, and assets with their services and sources."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select, update

from surveyor.console.presenters import asset_out
from surveyor.console.routes.assets import AssetPage
from surveyor.console.routes.tasks import task_out
from surveyor.console.schemas import EventPage, TaskEventOut, TaskPage
from surveyor.core.search import parse
from surveyor.core.tasks import ALL_VIEW, Tab, TaskStatus
from surveyor.store import inventory, records
from surveyor.store import tasks as task_store
from surveyor.store.outliers import reasons_text, write_scores
from surveyor.store.schema import assets
from surveyor.store.search_sql import compile_search
from surveyor.store.task_search import TASK_SEARCH
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service

ODD_TEXT = "Ünïcode “quotes” \\ back\\slash\t tab\n line \x1f unit / <b>&amp;</b> 日本 🛰"


def model_json(model: type[BaseModel], content: dict[str, Any]) -> bytes:
    """What the response model writes for `content` (FastAPI's answer before the lean path)."""
    return model.model_validate(content).model_dump_json().encode()


def answer_of(console: ConsoleUnderTest, path: str, **params: Any) -> bytes:
    answer = console.admin.get(path, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return answer.content


def write(console: ConsoleUnderTest, task_id: int, **changes: Any) -> None:
    with console.db.write() as conn:
        task = task_store.get_task(conn, console.organization_id, task_id)
        assert task is not None
        task_store.write_task(conn, task, changes)


def create(console: ConsoleUnderTest, **body: Any) -> int:
    answer = console.admin.post("/api/v1/tasks", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


@pytest.fixture
def varied_tasks(console: ConsoleUnderTest) -> dict[str, int]:
    """Tasks in several tabs, with every kind of value a task shows: odd text, null and set
    times, progress as whole and fractional numbers, change summaries (one missing counts,
    one with a count the API does not show), nested params and stats."""
    scan = create(
        console,
        name=ODD_TEXT,
        description=ODD_TEXT,
        params={"targets": "127.0.0.1-127.0.0.9", "tcp_ports": "22,443"},
    )
    done = create(console, name="done", params={"targets": "127.0.0.20"})
    failed = create(console, name="failed", params={"targets": "127.0.0.21"})
    later = create(
        console,
        name="later",
        params={"targets": "127.0.0.22"},
        start_time="2099-01-02T03:04:05.123456Z",
    )
    template = create(
        console,
        name="weekly",
        params={"targets": "127.0.0.23"},
        recur={"frequency": "weekly", "weekdays": ["mo", "th"], "time": "06:30"},
    )
    for _ in range(3):
        assert console.admin.post(f"/api/v1/tasks/{template}/run-now").status_code == 200
    hidden = create(console, name="hidden", params={"targets": "127.0.0.24"})
    assert console.admin.post(f"/api/v1/tasks/{hidden}/hide").status_code == 200
    with console.db.write() as conn:
        org = console.organization_id
        for task_id, steps in (
            (done, (TaskStatus.ACTIVE, TaskStatus.SCANNED, TaskStatus.PROCESSING_QUEUED)),
            (failed, (TaskStatus.ACTIVE, TaskStatus.CANCELED)),
        ):
            for step in steps:
                task_store.transition(conn, org, task_id, step, actor="system")
    write(
        console,
        done,
        progress_collect=1,
        progress_process=0.3333333333333333,
        stats={"hosts": {"up": 3, "down": 0}, "rate": 1e-7, "ratio": 0.1, "names": ["a", "é"]},
        change_summary={"new": 3, "changed": 1, "total": 4, "not_shown": 9},
        size_data=2**40,
        data_partial=True,
    )
    write(console, failed, error=ODD_TEXT, change_summary={"offline": 2})
    return {"scan": scan, "done": done, "failed": failed, "later": later, "template": template}


def expected_tasks(
    console: ConsoleUnderTest, view: str, *, search: str = "", limit: int = 50, cursor: Any = None
) -> bytes:
    with console.db.read() as conn:
        query = parse(search)
        page = task_store.list_tasks(
            conn,
            console.organization_id,
            view=view,
            search=compile_search(conn, query, TASK_SEARCH, now=datetime.now(UTC))
            if search
            else None,
            include_hidden="hidden" in search,
            limit=limit,
            cursor=cursor,
        )
    items = [task_out(task) for task in page.items]
    return model_json(TaskPage, {"items": items, "next_cursor": page.next_cursor})


@pytest.mark.usefixtures("varied_tasks")
def test_each_tab_and_search_answers_what_task_page_would_write(
    console: ConsoleUnderTest,
) -> None:
    for view in [tab.value for tab in Tab] + [ALL_VIEW]:
        assert answer_of(console, "/api/v1/tasks", tab=view) == expected_tasks(console, view)
    for search in ("name:weekly", "hidden:true", "status:active OR status:canceled"):
        assert answer_of(console, "/api/v1/tasks", search=search) == expected_tasks(
            console, ALL_VIEW, search=search
        )


@pytest.mark.usefixtures("varied_tasks")
def test_pages_and_their_cursors_are_the_same_as_before(console: ConsoleUnderTest) -> None:
    cursor = None
    seen = 0
    while True:
        params: dict[str, Any] = {"tab": ALL_VIEW, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        body = answer_of(console, "/api/v1/tasks", **params)
        assert body == expected_tasks(console, ALL_VIEW, limit=2, cursor=cursor)
        page = TaskPage.model_validate_json(body)
        seen += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen >= 8


def test_runs_and_events_answer_what_their_models_would_write(
    console: ConsoleUnderTest, varied_tasks: dict[str, int]
) -> None:
    template = varied_tasks["template"]
    with console.db.read() as conn:
        task = task_store.get_task(conn, console.organization_id, template)
        assert task is not None
        runs = task_store.list_runs(conn, task, limit=3)
        events = task_store.list_events(conn, task, limit=100)
    assert len(runs) == 3
    expected_runs = {"items": [task_out(run) for run in runs[:2]], "next_cursor": str(runs[1].id)}
    assert answer_of(console, f"/api/v1/tasks/{template}/runs", limit=2) == model_json(
        TaskPage, expected_runs
    )
    assert len(events) >= 4
    expected_events = {
        "items": [TaskEventOut.model_validate(event) for event in events],
        "next_cursor": None,
    }
    assert answer_of(console, f"/api/v1/tasks/{template}/events") == model_json(
        EventPage, expected_events
    )
    done = varied_tasks["done"]
    with console.db.read() as conn:
        task = task_store.get_task(conn, console.organization_id, done)
        assert task is not None
        done_events = task_store.list_events(conn, task, limit=2)
    expected_done = {
        "items": [TaskEventOut.model_validate(event) for event in done_events],
        "next_cursor": str(done_events[-1]["id"]),
    }
    assert answer_of(console, f"/api/v1/tasks/{done}/events", limit=2) == model_json(
        EventPage, expected_done
    )


def test_a_value_orjson_cannot_write_is_written_by_the_model(
    console: ConsoleUnderTest, varied_tasks: dict[str, int]
) -> None:
    huge = 2**70
    write(console, varied_tasks["done"], stats={"probes": huge})
    body = answer_of(console, "/api/v1/tasks", tab=Tab.PROCESSING.value)
    assert body == expected_tasks(console, Tab.PROCESSING.value)
    assert f'"probes":{huge}'.encode() in body


SSH = service(22, banner="SSH-2.0-OpenSSH_9.6p1")
WEB = service(
    443,
    http={"status": 200, "server": "Example/1.0", "title": ODD_TEXT},
    tls={"subject": "CN=intranet.example", "issuer": "CN=Example CA", "sha256": "ab" * 32},
)


def expected_assets(console: ConsoleUnderTest, **params: Any) -> bytes:
    org = console.organization_id
    with console.db.read() as conn:
        page = inventory.list_assets(conn, org, **params)
        ids = [asset.id for asset in page.items]
        names = records.site_names(conn, org, {asset.site_id for asset in page.items})
        found = inventory.services_of(conn, ids)
        sources = inventory.sources_of(conn, ids)
    items = [asset_out(asset, names, found[asset.id], sources[asset.id]) for asset in page.items]
    return model_json(AssetPage, {"items": items, "next_cursor": page.next_cursor})


def test_assets_answer_what_asset_page_would_write(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    place = Place(console.organization_id, site_id)
    queue_hosts(
        console.db,
        tmp_path,
        place,
        [
            host("127.0.0.10", mac="00:11:22:33:44:01", hostnames=["b.example"], services=[SSH]),
            host("127.0.0.2", hostnames=["a.example", "www.example"], services=[WEB, SSH]),
            host("127.0.0.30"),
            host("127.0.0.4", "fe80::4", services=[SSH]),
        ],
        targets="127.0.0.0/24,fe80::/120",
        ports="22,443",
    )
    process_all(console.db, tmp_path)
    with console.db.write() as conn:
        conn.execute(
            update(assets)
            .where(assets.c.address == "127.0.0.2")
            .values(
                tags=["web", ODD_TEXT],
                attributes={"owner": ODD_TEXT, "rack": "B2"},
                uptime_seconds=86_400,
                description=ODD_TEXT,
            )
        )
        scored = conn.execute(select(assets.c.id).where(assets.c.address == "127.0.0.2"))
        write_scores(conn, [(scored.scalar_one(), 73, reasons_text(["the only one with 443"]))])
    assert answer_of(console, "/api/v1/assets") == expected_assets(console)
    body = answer_of(console, "/api/v1/assets", limit=2)
    assert body == expected_assets(console, limit=2)
    cursor = AssetPage.model_validate_json(body).next_cursor
    assert cursor is not None
    assert answer_of(console, "/api/v1/assets", limit=2, cursor=cursor) == expected_assets(
        console, limit=2, cursor=cursor
    )


def test_the_openapi_document_still_names_each_listings_model(console: ConsoleUnderTest) -> None:
    paths = console.anonymous().get("/api/v1/openapi.json").json()["paths"]
    expected = {
        "/api/v1/tasks": "TaskPage",
        "/api/v1/tasks/{task_id}/runs": "TaskPage",
        "/api/v1/tasks/{task_id}/events": "EventPage",
        "/api/v1/assets": "AssetPage",
    }
    for path, model in expected.items():
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}, path
