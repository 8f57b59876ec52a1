"""Every processing of a task's data stays, with its summary and its change report:
`/api/v1/tasks/{id}/processing-runs`, `/changes?run=N`, and the task card, on both backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service

SSH = service(22, banner="SSH-2.0-OpenSSH_9.6p1 Debian-3")
EIGHT = [host(f"127.0.0.{n}", services=[SSH]) for n in range(1, 9)]


@pytest.fixture
def place(console: ConsoleUnderTest) -> Place:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    return Place(console.organization_id, site_id)


@pytest.fixture
def reprocessed(console: ConsoleUnderTest, place: Place, tmp_path: Path) -> int:
    """A scan of eight new hosts, processed, then processed again at a user's request."""
    task_id = queue_hosts(console.db, tmp_path, place, EIGHT)
    process_all(console.db, tmp_path)
    answer = console.as_role("operator").post(f"/api/v1/tasks/{task_id}/reprocess")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "processing_queued"
    process_all(console.db, tmp_path)
    return task_id


def test_the_task_shows_its_latest_run_and_lists_every_run_newest_first(
    console: ConsoleUnderTest, reprocessed: int
) -> None:
    task = console.admin.get(f"/api/v1/tasks/{reprocessed}").json()
    assert task["status"] == "processed"
    assert task["change_summary"]["unchanged"] == 8
    assert task["change_summary"]["new"] == 0

    runs = console.as_role("viewer").get(f"/api/v1/tasks/{reprocessed}/processing-runs")

    assert runs.status_code == 200, runs.text
    items = runs.json()["items"]
    assert [(r["run"], r["phase"]) for r in items] == [(2, "done"), (1, "done")]
    assert items[0]["change_summary"]["unchanged"] == 8
    assert items[1]["change_summary"] == {
        "new": 8,
        "changed": 0,
        "offline": 0,
        "online": 0,
        "unchanged": 0,
        "ignored": 0,
        "total": 8,
    }
    assert all(r["records_total"] == r["records_done"] == 8 for r in items)
    assert items[1]["ended_at"] <= items[0]["started_at"]
    assert runs.json()["next_cursor"] is None


def test_processing_runs_page_by_run_number(console: ConsoleUnderTest, reprocessed: int) -> None:
    first = console.admin.get(
        f"/api/v1/tasks/{reprocessed}/processing-runs", params={"limit": 1}
    ).json()
    rest = console.admin.get(
        f"/api/v1/tasks/{reprocessed}/processing-runs",
        params={"limit": 1, "cursor": first["next_cursor"]},
    ).json()
    assert [r["run"] for r in first["items"] + rest["items"]] == [2, 1]
    assert rest["next_cursor"] is None


def test_a_cursor_beyond_any_run_number_is_refused_as_invalid(
    console: ConsoleUnderTest, reprocessed: int
) -> None:
    # PostgreSQL stores run numbers as 32-bit integers: a larger cursor once made it fail
    answer = console.admin.get(
        f"/api/v1/tasks/{reprocessed}/processing-runs", params={"cursor": 2**31}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["fields"][0]["field"] == "query.cursor"


def test_the_change_report_is_the_latest_runs_and_an_earlier_one_is_kept(
    console: ConsoleUnderTest, reprocessed: int
) -> None:
    latest = console.admin.get(f"/api/v1/tasks/{reprocessed}/changes").json()
    assert latest["run"] == 2
    assert latest["summary"]["unchanged"] == 8
    assert latest["items"] == []

    first = console.admin.get(f"/api/v1/tasks/{reprocessed}/changes", params={"run": 1}).json()

    assert first["run"] == 1
    assert first["summary"]["new"] == 8
    assert sorted(item["address"] for item in first["items"]) == [
        f"127.0.0.{n}" for n in range(1, 9)
    ]
    assert {item["kind"] for item in first["items"]} == {"new"}
    download = console.admin.get(
        f"/api/v1/tasks/{reprocessed}/changes", params={"run": 1, "format": "jsonl"}
    )
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert lines[0]["run"] == 1
    assert [line["kind"] for line in lines[1:]] == ["new"] * 8
    assert "run-1" in download.headers["content-disposition"]


def test_a_run_that_does_not_exist_is_a_404_naming_it(
    console: ConsoleUnderTest, reprocessed: int
) -> None:
    answer = console.admin.get(f"/api/v1/tasks/{reprocessed}/changes", params={"run": 3})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "no_run"
    assert "run 3" in answer.json()["error"]["message"]
    bad = console.admin.get(f"/api/v1/tasks/{reprocessed}/changes", params={"run": 0})
    assert bad.status_code == 422


def test_a_task_never_processed_has_no_runs(console: ConsoleUnderTest) -> None:
    created = console.admin.post(
        "/api/v1/tasks", json={"name": "later", "start_time": "2099-01-01T00:00:00Z"}
    ).json()
    runs = console.admin.get(f"/api/v1/tasks/{created['id']}/processing-runs")
    assert runs.status_code == 200
    assert runs.json() == {"items": [], "next_cursor": None}
    assert console.admin.get("/api/v1/tasks/999999/processing-runs").status_code == 404


def test_the_card_shows_the_latest_run_and_lists_the_earlier_ones_with_their_reports(
    console: ConsoleUnderTest, reprocessed: int
) -> None:
    client, _ = signed_in(console, "viewer")

    card = client.get(f"/tasks?tab=completed&task={reprocessed}").text

    assert "(processing run 2)" in card
    assert re.search(r'<div class="cc-unchanged"><dt>unchanged</dt><dd>8</dd>', card)
    [earlier] = re.findall(r'<tr data-processing-run="(\d+)">(.*?)</tr>', card, re.DOTALL)
    assert earlier[0] == "1"
    assert "8 new" in earlier[1]
    assert f'href="/tasks/{reprocessed}/changes?run=1"' in earlier[1]
    download = client.get(f"/tasks/{reprocessed}/changes", params={"run": 1})
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert (lines[0]["run"], lines[0]["summary"]["new"]) == (1, 8)
    assert len(lines) == 9
