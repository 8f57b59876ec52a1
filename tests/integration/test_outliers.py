"""Outlier calculation (SPEC §10): queued after processing changes a site's inventory,
coalesced per site, scoring planted unusual assets on top with reasons that name them, on
both backends; shown on the asset page, sorted and searched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.store.outliers import request_outlier_calculation
from surveyor.store.schema import assets, tasks
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service

NOW = datetime(2026, 3, 2, tzinfo=UTC)
CA = {"subject": "CN=web.lab", "issuer": "CN=Lab CA", "sha256": "ab" * 32}


def linux(index: int, *extra: dict[str, Any], tls: dict[str, Any] = CA) -> dict[str, Any]:
    record = host(
        f"127.0.0.{index}",
        hostnames=[f"web{index:02}.lab"],
        services=[
            service(22, banner="SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13"),
            service(443, tls=tls),
            *extra,
        ],
    )
    record["os"] = "Ubuntu Linux"
    return record


def generated_site() -> list[dict[str, Any]]:
    """40 alike Linux web servers, two of them planted: one with telnet open, one with a
    certificate of a different issuer."""
    hosts = [linux(index) for index in range(10, 48)]
    hosts.append(linux(60, service(23)))
    hosts.append(linux(61, tls={**CA, "issuer": "CN=Rogue Issuer"}))
    return hosts


@pytest.fixture
def place(console: ConsoleUnderTest) -> Place:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    return Place(console.organization_id, site_id)


def outlier_tasks(console: ConsoleUnderTest) -> list[dict[str, Any]]:
    answer = console.admin.get(
        "/api/v1/tasks", params={"tab": "all", "search": "type:outlier", "limit": 100}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def by_address(console: ConsoleUnderTest) -> dict[str, dict[str, Any]]:
    answer = console.admin.get("/api/v1/assets", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return {item["address"]: item for item in answer.json()["items"]}


@pytest.fixture
def scored(console: ConsoleUnderTest, place: Place, tmp_path: Path) -> Path:
    queue_hosts(console.db, tmp_path, place, generated_site(), ports="22,23,443")
    process_all(console.db, tmp_path)
    return tmp_path


def test_planted_unusual_assets_rank_on_top_with_reasons_naming_them(
    console: ConsoleUnderTest, scored: Path
) -> None:
    answer = console.admin.get("/api/v1/assets", params={"sort": "outlier", "limit": 5})
    assert answer.status_code == 200, answer.text
    top = answer.json()["items"]
    assert {item["address"] for item in top[:2]} == {"127.0.0.60", "127.0.0.61"}
    found = {item["address"]: item for item in top}
    telnet = found["127.0.0.60"]
    assert telnet["outlier"] >= 60
    assert "the only one of 40 Linux hosts with telnet (23) open" in telnet["outlier_reasons"]
    rogue = found["127.0.0.61"]
    assert any(
        reason == "TLS issuer 'CN=Rogue Issuer' seen on 1 of 40 assets"
        for reason in rogue["outlier_reasons"]
    )
    ordinary = by_address(console)["127.0.0.10"]
    assert ordinary["outlier"] < 20
    assert telnet["outlier"] > ordinary["outlier"]


def test_the_calculation_is_a_system_task_in_the_tabs_with_progress(
    console: ConsoleUnderTest, scored: Path
) -> None:
    [task] = outlier_tasks(console)
    assert task["name"] == "Outlier calculation"
    assert task["created_by"] == "system"
    assert task["status"] == "processed"
    assert task["progress"]["process"] == 1.0
    assert task["stats"] == {
        "assets": 40,
        "highest": max(a["outlier"] for a in by_address(console).values()),
    }
    processed = console.admin.get(
        "/api/v1/tasks",
        params={"tab": "all", "search": "type:outlier status:processed created_by:system"},
    )
    assert [item["id"] for item in processed.json()["items"]] == [task["id"]]
    client, _ = signed_in(console, "viewer")
    page = client.get("/tasks", params={"tab": "all", "search": "type:outlier"})
    assert page.status_code == 200
    assert "Outlier calculation" in page.text
    assert f"40 assets scored · highest {task['stats']['highest']}" in page.text


def test_at_most_one_calculation_waits_per_site(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    queue_hosts(console.db, tmp_path, place, generated_site()[:20], ports="22,23,443")
    queue_hosts(console.db, tmp_path, place, generated_site(), ports="22,23,443")
    # The first scan's processing queues one; the second finds it waiting and adds none.
    process_all(console.db, tmp_path)
    with console.db.read() as conn:
        made = conn.execute(select(tasks.c.status).where(tasks.c.type == "outlier")).all()
    assert [row.status for row in made] == ["processed"]


def test_a_scan_that_changes_nothing_queues_no_calculation(
    console: ConsoleUnderTest, place: Place, scored: Path
) -> None:
    queue_hosts(console.db, scored, place, generated_site(), ports="22,23,443")
    process_all(console.db, scored)
    assert len(outlier_tasks(console)) == 1


def test_search_and_sort_by_score(console: ConsoleUnderTest, scored: Path) -> None:
    answer = console.admin.get("/api/v1/assets", params={"search": "outlier:>=60"})
    assert answer.status_code == 200, answer.text
    assert {item["address"] for item in answer.json()["items"]} == {"127.0.0.60"}
    pages: list[int | None] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "outlier", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = console.admin.get("/api/v1/assets", params=params).json()
        pages += [item["outlier"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(pages) == 40
    assert pages == sorted(pages, key=lambda score: -(score if score is not None else -1))
    client, _ = signed_in(console, "viewer")
    page = client.get("/assets", params={"sort": "outlier", "search": "outlier:>=60"})
    assert page.status_code == 200
    assert "127.0.0.60" in page.text
    assert "127.0.0.10" not in page.text


def test_the_asset_page_shows_the_score_and_reasons(
    console: ConsoleUnderTest, scored: Path
) -> None:
    asset = by_address(console)["127.0.0.60"]
    client, _ = signed_in(console, "viewer")
    page = client.get(f"/assets/{asset['id']}")
    assert page.status_code == 200
    assert "Outlier score" in page.text
    assert f'<strong class="outlier-score">{asset["outlier"]}</strong>' in page.text
    assert "the only one of 40 Linux hosts with telnet (23) open" in page.text


def test_running_it_again_writes_the_same_scores(
    console: ConsoleUnderTest, place: Place, scored: Path
) -> None:
    def scores() -> dict[int, tuple[Any, Any]]:
        with console.db.read() as conn:
            rows = conn.execute(
                select(assets.c.id, assets.c.outlier, assets.c.outlier_reasons)
            ).all()
        return {row.id: (row.outlier, row.outlier_reasons) for row in rows}

    before = scores()
    with console.db.write() as conn:
        queued = request_outlier_calculation(conn, place.organization_id, place.site_id, now=NOW)
    assert queued is not None
    assert process_all(console.db, scored) == 1
    assert scores() == before
    assert len(outlier_tasks(console)) == 2
