"""Reports (SPEC §10, docs/reports.md) against a hand count of a small inventory, on both
backends: the three reports are initialized by the system after the first processing, each
with a daily refresh; their stored numbers are the ones counted by hand below; they download
as JSON, self-contained HTML and CSV; a refresh asked for is a `report` task."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from surveyor.core.clock import FakeClock
from surveyor.scheduler.leader import SoleScheduler
from surveyor.scheduler.tick import Scheduler
from surveyor.store import reports as report_store
from surveyor.store.outliers import reasons_text, write_scores
from surveyor.store.schema import asset_outliers, assets, sites
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service


def _tls(not_after: datetime, subject: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "issuer": "CN=Test CA",
        "not_after": _stamp(not_after),
        "sha256": "cd" * 32,
    }


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _with_os(record: dict[str, Any], os: str) -> dict[str, Any]:
    record["os"] = os
    return record


@pytest.fixture
def inventory(console: ConsoleUnderTest, tmp_path: Path) -> dict[str, Any]:
    """HQ (the default site): four assets scanned, then 127.0.0.4 gone silent in a second
    scan. Lab: two assets imported, one with a public address and an expired certificate.

    By hand: 6 assets, 5 online, 1 offline (HQ's 127.0.0.4). Device types: computer 4 (three
    Linux, one Windows), network device 1 (Cisco), unknown 1. External: 127.0.0.1 (its name
    www.acme.com is public) and 1.1.1.10 (a public address), with 4 open services between
    them; one certificate expires in 10 days, one expired 2 days ago.
    """
    now = datetime.now(UTC)
    hq_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    lab = console.admin.post("/api/v1/sites", json={"name": "Lab", "scope": "127.0.1.0/24"})
    assert lab.status_code == 201, lab.text
    hq = Place(console.organization_id, hq_id)
    lab_place = Place(console.organization_id, lab.json()["id"])
    web = _with_os(
        host(
            "127.0.0.1",
            hostnames=["www.acme.com"],
            services=[service(22), service(443, tls=_tls(now + timedelta(days=10), "CN=www"))],
        ),
        "Ubuntu Linux",
    )
    hq_hosts = [
        web,
        _with_os(host("127.0.0.2", hostnames=["files.corp"], services=[service(80)]), "Windows"),
        _with_os(host("127.0.0.3", services=[service(22)]), "Cisco IOS 15"),
        host("127.0.0.4"),
    ]
    queue_hosts(console.db, tmp_path, hq, hq_hosts, finished_at=_stamp(now - timedelta(hours=2)))
    process_all(console.db, tmp_path)
    queue_hosts(
        console.db, tmp_path, hq, hq_hosts[:3], finished_at=_stamp(now - timedelta(hours=1))
    )
    process_all(console.db, tmp_path)
    lab_hosts = [
        _with_os(
            host(
                "1.1.1.10",
                services=[service(22), service(443, tls=_tls(now - timedelta(days=2), "CN=old"))],
            ),
            "Debian Linux",
        ),
        _with_os(host("127.0.1.5", services=[service(22)]), "Ubuntu Linux"),
    ]
    queue_hosts(
        console.db,
        tmp_path,
        lab_place,
        lab_hosts,
        targets=None,
        finished_at=_stamp(now - timedelta(hours=1)),
    )
    process_all(console.db, tmp_path)
    # The scheduler's sweep initializes the reports of an organization with an inventory.
    assert _tick(console, now) == 1
    assert _tick(console, now + timedelta(minutes=1)) == 0
    process_all(console.db, tmp_path)
    for report in ("overview", "comparison", "external"):
        refreshed = console.admin.post(f"/api/v1/reports/{report}/refresh")
        assert refreshed.status_code == 202, refreshed.text
    process_all(console.db, tmp_path)
    hq_name = console.admin.get(f"/api/v1/sites/{hq_id}").json()["name"]
    return {"hq": hq_name, "data_dir": tmp_path}


def _tick(console: ConsoleUnderTest, now: datetime) -> int:
    """One scheduler tick at `now`; how many organizations got their reports."""
    scheduler = Scheduler(console.db, clock=FakeClock(now), leadership=SoleScheduler())
    try:
        return scheduler.tick().reports_initialized
    finally:
        scheduler.close()


def _result(console: ConsoleUnderTest, report: str) -> dict[str, Any]:
    answer = console.admin.get(f"/api/v1/reports/{report}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task_status"] == "processed", body
    result: dict[str, Any] = body["result"]
    return result


def _section(result: dict[str, Any], section_id: str) -> dict[str, Any]:
    return next(part for part in result["sections"] if part["id"] == section_id)


def _table(result: dict[str, Any], section_id: str) -> dict[str, list[Any]]:
    return {row[0]: row[1:] for row in _section(result, section_id)["rows"]}


def test_overview_matches_the_hand_count(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    result = _result(console, "overview")
    summary = dict(result["summary"])
    assert summary["Assets"] == 6
    assert summary["Online"] == 5
    assert summary["Offline"] == 1
    assert summary["Sites"] == 2
    assert summary["Open services"] == 7
    assert _table(result, "by_site") == {inventory["hq"]: [3, 1], "Lab": [2, 0]}
    assert _table(result, "by_type") == {
        "Computer": [4],
        "Network device": [1],
        "Unknown": [1],
    }
    assert _table(result, "by_os") == {"Linux": [3], "Windows": [1], "Cisco": [1], "Unknown": [1]}
    by_service = _table(result, "by_service")
    assert {label.split(" (")[-1].rstrip(")"): n[0] for label, n in by_service.items()} == {
        "tcp/22": 4,
        "tcp/443": 2,
        "tcp/80": 1,
    }
    series = _section(result, "over_time")["rows"]
    assert len(series) == 30
    # First scan: 4 new; second: 1 offline; the import: 2 new. All processed today.
    assert series[-1] == [datetime.now(UTC).date().isoformat(), 6, 1]
    assert all(row[1:] == [0, 0] for row in series[:-1])


def test_comparison_puts_sites_side_by_side_and_highlights_differences(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    result = _result(console, "comparison")
    part = _section(result, "sites")
    rows = {row[0]: row for row in part["rows"]}
    # Site, assets, offline %, services per asset, new %, unusual %, most common OS.
    assert rows[inventory["hq"]][1:4] == [4, 25.0, 1.0]
    assert rows["Lab"][1:4] == [2, 0.0, 1.5]
    assert rows["Whole organization"][1:4] == [6, 16.7, round(7 / 6, 2)]
    assert rows["Lab"][6] == "Linux"
    lab_index = list(rows).index("Lab")
    # Lab has nothing offline where the organization has 16.7%: highlighted and said.
    assert [lab_index, 2] in part["highlights"]
    assert any(note.startswith("Lab: offline 0.0%") for note in part["notes"])
    services = {row[0]: row[1:] for row in _section(result, "services_by_site")["rows"]}
    http = next(label for label in services if "tcp/80" in label)
    order = [row[0] for row in part["rows"][:-1]]
    assert services[http][order.index("Lab")] == 0
    assert services[http][order.index(inventory["hq"])] == 1


def test_external_assets_match_the_hand_count(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    result = _result(console, "external")
    summary = dict(result["summary"])
    assert summary["External assets"] == 2
    assert summary["With a public address"] == 1
    assert summary["With a public name only"] == 1
    assert summary["Exposed services"] == 4
    assert summary["Certificates expiring in 30 days"] == 1
    assert summary["Certificates expired"] == 1
    listed = {row[0]: row for row in _section(result, "external_assets")["rows"]}
    assert set(listed) == {"127.0.0.1", "1.1.1.10"}
    assert listed["127.0.0.1"][3] == "www.acme.com"
    assert listed["1.1.1.10"][2] == "1.1.1.10"
    certificates = _section(result, "expiring_certificates")
    assert [row[0] for row in certificates["rows"]] == ["1.1.1.10", "127.0.0.1"]
    assert certificates["rows"][0][5] == "expired"
    assert certificates["highlights"] == [[0, 5]]


def test_reports_are_system_tasks_with_a_daily_refresh(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    answer = console.admin.get(
        "/api/v1/tasks", params={"tab": "all", "search": "type:report", "limit": 100}
    )
    assert answer.status_code == 200, answer.text
    by_creator: dict[str, set[str]] = {}
    for task in answer.json()["items"]:
        by_creator.setdefault(task["created_by"], set()).add(task["name"])
    names = {"Organization overview", "Site and organization comparison", "External assets"}
    assert by_creator["system"] == names
    listing = console.admin.get("/api/v1/reports").json()["items"]
    assert {item["name"] for item in listing} == names
    for item in listing:
        assert item["initialized"]
        assert item["refreshed_at"] is not None
        template = console.admin.get(f"/api/v1/tasks/{item['schedule_id']}").json()
        assert template["recur"] is True
        assert template["type"] == "report"
        assert template["created_by"] == "system"
        assert template["recur_frequency"] == "daily"


def test_a_refresh_that_waits_is_not_asked_for_twice(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    first = console.admin.post("/api/v1/reports/overview/refresh")
    second = console.admin.post("/api/v1/reports/overview/refresh")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["status"] == "processing_queued"
    assert first.json()["created_by"] == console.admin.email
    assert first.json()["progress"]["process"] == 0
    process_all(console.db, inventory["data_dir"])
    done = console.admin.get(f"/api/v1/tasks/{first.json()['id']}").json()
    assert done["status"] == "processed"
    assert done["progress"]["process"] == 1


def test_downloads_carry_the_stored_numbers(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    stored = _result(console, "overview")
    as_json = console.admin.get("/api/v1/reports/overview", params={"format": "json"})
    assert as_json.status_code == 200
    assert "attachment" in as_json.headers["content-disposition"]
    assert as_json.json()["result"] == stored
    as_csv = console.admin.get("/api/v1/reports/overview", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0] == ["section", "row", "column", "value"]
    assert ["summary", "Assets", "value", "6"] in lines
    assert ["by_site", "Lab", "Online", "2"] in lines
    as_html = console.admin.get("/api/v1/reports/external", params={"format": "html"})
    assert as_html.headers["content-type"].startswith("text/html")
    page = as_html.text
    assert page.startswith("<!doctype html>")
    # Self-contained: no stylesheet, script or image is fetched from anywhere.
    for reference in ("<link", "<script", "src=", "@import", "url("):
        assert reference not in page
    assert "<svg" in page
    assert "www.acme.com" in page


def test_a_report_never_computed_has_no_download(console: ConsoleUnderTest) -> None:
    answer = console.admin.get("/api/v1/reports/external")
    assert answer.status_code == 200
    assert answer.json()["initialized"] is False
    assert answer.json()["result"] is None
    refused = console.admin.get("/api/v1/reports/external", params={"format": "csv"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "report_not_ready"
    assert console.admin.get("/api/v1/reports/nothing").status_code == 404


def test_pages_show_the_reports_with_charts(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    browser, csrf = signed_in(console)
    if browser:
        listing = browser.get("/reports")
        assert listing.status_code == 200
        assert "Organization overview" in listing.text
        page = browser.get("/reports/overview")
        assert page.status_code == 200
        assert page.text.count('<svg class="chart" role="img"') == 5
        comparison = browser.get("/reports/comparison")
        assert "<mark>0.0</mark>" in comparison.text
        assert browser.get("/reports/nothing").status_code == 404
        refreshed = browser.post(
            "/reports/overview/refresh", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert refreshed.status_code == 303
        assert refreshed.headers["location"] == "/reports/overview"


def test_the_daily_refresh_runs_when_its_time_comes(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    overview = console.admin.get("/api/v1/reports/overview").json()
    template = console.admin.get(f"/api/v1/tasks/{overview['schedule_id']}").json()
    due = datetime.fromisoformat(template["recur_next"].replace("Z", "+00:00"))
    scheduler = Scheduler(
        console.db, clock=FakeClock(due + timedelta(seconds=1)), leadership=SoleScheduler()
    )
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    process_all(console.db, inventory["data_dir"])
    runs = console.admin.get(f"/api/v1/tasks/{template['id']}/runs").json()["items"]
    assert len(runs) == 1
    run = console.admin.get(f"/api/v1/tasks/{runs[0]['id']}").json()
    assert (run["type"], run["name"], run["created_by"]) == (
        "report",
        "Organization overview",
        "system",
    )
    assert run["status"] == "processed"
    assert console.admin.get("/api/v1/reports/overview").json()["task_id"] == run["id"]


def _services_across_sites(console: ConsoleUnderTest) -> dict[tuple[str, int, str], int]:
    with console.db.read() as conn:
        groups = report_store.service_groups(conn, console.organization_id, per_site=False)
        by_site = report_store.service_groups(conn, console.organization_id)
    summed: Counter[tuple[str, int, str]] = Counter()
    for group in by_site:
        summed[(group.proto, group.port, group.name)] += group.assets
    across = {(g.proto, g.port, g.name): g.assets for g in groups}
    assert across == dict(summed)
    return across


def _asset_groups(console: ConsoleUnderTest) -> list[Any]:
    with console.db.read() as conn:
        groups = report_store.asset_groups(conn, console.organization_id, now=datetime.now(UTC))
    assert sum(group.assets for group in groups) == 6
    return sorted(groups, key=repr)


def test_counts_are_the_organizations_alone_with_or_without_another(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    alone = _services_across_sites(console)
    assert sum(alone.values()) == 7
    groups = _asset_groups(console)
    # Another organization's services are not counted, whether or not it is there.
    other_id, _admin = console.other_organization()
    with console.db.read() as conn:
        other_site = conn.execute(
            select(sites.c.id).where(sites.c.organization_id == other_id)
        ).scalar_one()
    queue_hosts(
        console.db,
        inventory["data_dir"],
        Place(other_id, other_site),
        [host("127.0.0.2", services=[service(22), service(8080)])],
        targets=None,
    )
    process_all(console.db, inventory["data_dir"])
    assert _services_across_sites(console) == alone
    assert _asset_groups(console) == groups


def test_the_unusual_share_counts_assets_scored_60_or_more(
    console: ConsoleUnderTest, inventory: dict[str, Any]
) -> None:
    """Scores at and around the threshold, in place of the ones the calculations wrote: HQ has
    two unusual assets of four (one of them offline), Lab none of two."""
    scores = {"127.0.0.1": 75, "127.0.0.4": 60, "127.0.0.2": 59, "127.0.1.5": 12}
    with console.db.write() as conn:
        ids = {row.address: row.id for row in conn.execute(select(assets.c.address, assets.c.id))}
        conn.execute(delete(asset_outliers))
        write_scores(conn, [(ids[a], score, reasons_text([])) for a, score in scores.items()])
    with console.db.read() as conn:
        groups = report_store.asset_groups(conn, console.organization_id, now=datetime.now(UTC))
        site_of = dict(conn.execute(select(assets.c.address, assets.c.site_id)).all())
    unusual = Counter[int]()
    for group in groups:
        unusual[group.site_id] += group.unusual
    assert unusual == Counter({site_of["127.0.0.1"]: 2})
    assert sum(group.assets for group in groups) == 6

    refreshed = console.admin.post("/api/v1/reports/comparison/refresh")
    assert refreshed.status_code == 202, refreshed.text
    process_all(console.db, inventory["data_dir"])
    rows = {row[0]: row for row in _section(_result(console, "comparison"), "sites")["rows"]}
    assert rows[inventory["hq"]][5] == 50.0
    assert rows["Lab"][5] == 0.0
    assert rows["Whole organization"][5] == round(100 * 2 / 6, 1)
