"""Outlier calculation (SPEC §10): queued after processing changes a site's inventory,
coalesced per site, scoring planted unusual assets on top with reasons that name them, on
both backends; shown on the asset page, sorted and searched."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from surveyor.core.outliers import FeatureCounts, ServiceFacts, features_of, score
from surveyor.processing.processors import ProcessingJob
from surveyor.store.outliers import request_outlier_calculation
from surveyor.store.schema import asset_outliers, assets, services, tasks
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
        "changed": 40,
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
    before = stored_scores(console, place.site_id)
    assert len(before) == 40
    with console.db.write() as conn:
        queued = request_outlier_calculation(conn, place.organization_id, place.site_id, now=NOW)
    assert queued is not None
    assert process_all(console.db, scored) == 1
    assert stored_scores(console, place.site_id) == before
    first, again = sorted(outlier_tasks(console), key=lambda task: task["id"])
    assert first["stats"]["changed"] == 40
    # Nothing changed, so nothing was written.
    assert again["stats"] == {**first["stats"], "changed": 0}


def test_after_a_change_only_the_scores_that_changed_are_written(
    console: ConsoleUnderTest, place: Place, tmp_path: Path
) -> None:
    ports = "22,23,80,135,161,443,445,3389,5432,8080,9100"
    hosts = varied_site(120)
    queue_hosts(console.db, tmp_path, place, hosts[:100], ports=ports)
    process_all(console.db, tmp_path)
    before = stored_scores(console, place.site_id)
    assert before == scores_one_by_one(console, place.site_id)
    # Twenty more hosts (new assets), the first 100 seen again alike.
    queue_hosts(console.db, tmp_path, place, hosts, ports=ports)
    process_all(console.db, tmp_path)
    after = stored_scores(console, place.site_id)
    assert after == scores_one_by_one(console, place.site_id)
    assert len(after) == 120
    anew = [asset for asset, found in after.items() if before.get(asset) != found]
    assert 20 <= len(anew) < 120
    last = max(outlier_tasks(console), key=lambda task: task["id"])
    assert last["stats"]["changed"] == len(anew)


def stored_scores(console: ConsoleUnderTest, site_id: int) -> dict[int, tuple[Any, Any]]:
    """The scores and reasons written for the site's assets, by asset id."""
    with console.db.read() as conn:
        rows = conn.execute(
            select(asset_outliers.c.asset_id, asset_outliers.c.score, asset_outliers.c.reasons)
            .join(assets, assets.c.id == asset_outliers.c.asset_id)
            .where(assets.c.site_id == site_id)
        ).all()
    return {row.asset_id: (row.score, row.reasons) for row in rows}


def varied_site(count: int) -> list[dict[str, Any]]:
    """`count` hosts of a few kinds in skewed shares, with rare ports, products, issuers,
    self-signed certificates, device types and names among them."""
    draw = random.Random(14)
    kinds = [
        ("Ubuntu Linux 22.04", "", "web", [22, 443]),
        ("Windows Server 2022", "", "dc", [135, 445, 3389]),
        ("HP LaserJet", "printer", "prn", [80, 9100]),
        ("", "", "", [80]),
        ("Cisco IOS", "router", "sw", [22, 161]),
    ]
    hosts = []
    for index in range(count):
        os_text, recorded, prefix, ports = draw.choices(kinds, weights=[8, 5, 3, 2, 1])[0]
        opened = [port for port in ports if draw.random() < 0.9]
        if draw.random() < 0.03:
            opened.append(draw.choice([23, 8080, 5432]))
        found = []
        for port in opened:
            tls = None
            if port == 443:
                issuer = draw.choices(["CN=Lab CA", "CN=Other CA", "CN=Rogue"], [20, 3, 1])[0]
                subject = issuer if draw.random() < 0.05 else f"CN=host{index}.lab"
                tls = {"subject": subject, "issuer": issuer, "sha256": f"{index:064x}"}
            product = draw.choices(["", "nginx", "OpenSSH 9.6", "Apache httpd"], [6, 3, 3, 1])[0]
            found.append(service(port, product=product or None, tls=tls))
        record = host(
            f"127.0.0.{index + 1}",
            hostnames=[f"{prefix}{draw.randrange(1000):03}.lab"] if prefix else [],
            services=found,
        )
        record["os"] = os_text
        if recorded:
            record["device_type"] = recorded
        hosts.append(record)
    return hosts


def scores_one_by_one(console: ConsoleUnderTest, site_id: int) -> dict[int, tuple[Any, Any]]:
    """The documented method, asset by asset, on what the database holds: every asset's
    features counted, then every asset scored against those counts."""
    with console.db.read() as conn:
        rows = conn.execute(
            select(assets.c.id, assets.c.os, assets.c.hostname, assets.c.device_type).where(
                assets.c.site_id == site_id
            )
        ).all()
        found: dict[int, list[ServiceFacts]] = {row.id: [] for row in rows}
        for s in conn.execute(
            select(services)
            .where(services.c.asset_id.in_(list(found)), services.c.state == "open")
            .order_by(services.c.asset_id, services.c.port, services.c.proto)
        ):
            found[s.asset_id].append(
                ServiceFacts(s.proto, s.port, s.name, s.product, s.tls_subject, s.tls_issuer)
            )
    features = {
        row.id: features_of(row.os, row.hostname, found[row.id], recorded_type=row.device_type)
        for row in rows
    }
    counts = FeatureCounts()
    for one in features.values():
        counts.add(one)
    return {
        asset_id: (result.score, list(result.reasons))
        for asset_id, result in ((i, score(f, counts)) for i, f in features.items())
    }


def test_a_varied_site_scores_every_asset_as_the_method_does_asset_by_asset(
    console: ConsoleUnderTest, place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = "22,23,80,135,161,443,445,3389,5432,8080,9100"
    queue_hosts(console.db, tmp_path, place, varied_site(230), ports=ports)
    progress: list[float] = []
    fence = ProcessingJob.fence

    def recorded(job: ProcessingJob, conn: Any, changes: Any = None) -> None:
        if job.task.type == "outlier" and changes:
            progress.append(changes["progress_process"])
        fence(job, conn, changes)

    monkeypatch.setattr(ProcessingJob, "fence", recorded)
    # Pages and batches of 7 assets: profiles meet across pages, pages hold several
    # profiles, and on PostgreSQL batches are written two at a time.
    process_all(console.db, tmp_path, batch_size=7)
    # Every batch was written (230 assets), and the progress recorded never went back.
    assert len(progress) == 230 // 7 + 1
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    stored = stored_scores(console, place.site_id)
    expected = scores_one_by_one(console, place.site_id)
    assert len(stored) == 230
    assert stored == expected
    assert max(found for found, _ in expected.values()) >= 40
    assert any(found == 0 for found, _ in expected.values())
