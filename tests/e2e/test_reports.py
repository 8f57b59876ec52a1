"""The Reports pages in a real browser: after an import, each of the three reports is
computed by its `report` task, and its page shows its charts (SVG images with names) and
their tables, passing axe-core's WCAG 2.1 A and AA rules at 1280 and 390 pixels wide, with
the charts fitting a phone's width."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.accessibility import axe_violations, report
from tests.e2e.conftest import (
    NARROW,
    WIDE,
    RunningConsole,
    axe_admin_page,
    screenshot,
    wait_for_status,
)
from tests.support.inventory_data import encode, host, records, service

REPORTS = {
    "overview": ("Organization overview", 5),
    "comparison": ("Site and organization comparison", 1),
    "external": ("External assets", 1),
}


def _branch() -> bytes:
    """A second site, all offline-prone printers and telnet: it differs from the first."""
    hosts = []
    for index in range(1, 5):
        record = host(f"127.31.0.{index}", services=[service(23), service(9100)])
        record["os"] = "HP LaserJet printer"
        hosts.append(record)
    return encode(records(hosts, targets=None, ports=None))


def _inventory() -> bytes:
    soon = (datetime.now(UTC) + timedelta(days=12)).isoformat().replace("+00:00", "Z")
    tls = {"subject": "CN=shop", "issuer": "CN=Test CA", "not_after": soon, "sha256": "ef" * 32}
    hosts: list[dict[str, Any]] = []
    for index in range(1, 9):
        record = host(
            f"127.30.0.{index}",
            hostnames=[f"host{index}.lab"],
            services=[service(22), service(80)] if index % 2 else [service(22)],
        )
        record["os"] = "Ubuntu Linux" if index % 3 else "Windows Server 2022"
        hosts.append(record)
    shop = host("1.1.1.20", hostnames=["shop.acme.com"], services=[service(443, tls=tls)])
    shop["os"] = "Debian Linux"
    hosts.append(shop)
    return encode(records(hosts, targets=None, ports=None))


@pytest.fixture
def admin_page(browser: Browser, console: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, console.url) as page:
        yield page


@pytest.fixture(scope="module")
def computed(console: RunningConsole) -> None:
    """An import processed, and each report refreshed and computed."""
    with console.api() as api:
        branch = api.post("/api/v1/sites", json={"name": "Branch", "scope": "127.31.0.0/24"})
        assert branch.status_code == 201, branch.text
        imported = [
            api.post(
                "/api/v1/imports",
                params={"site": site} if site else None,
                content=content,
                headers={"Content-Type": "application/gzip"},
            )
            for site, content in ((None, _inventory()), ("Branch", _branch()))
        ]
    for answer in imported:
        assert answer.status_code == 201, answer.text
        wait_for_status(console, answer.json()["id"], {"processed"}, timeout=120.0)
    for report_id in REPORTS:
        with console.api() as api:
            refreshed = api.post(f"/api/v1/reports/{report_id}/refresh")
        assert refreshed.status_code == 202, refreshed.text
        wait_for_status(console, refreshed.json()["id"], {"processed"}, timeout=120.0)


@pytest.mark.parametrize("width", ["wide", "narrow"])
def test_each_report_shows_its_charts_and_passes_axe(
    admin_page: Page, console: RunningConsole, computed: None, width: str
) -> None:
    page = admin_page
    size = WIDE if width == "wide" else NARROW
    page.set_viewport_size({"width": size["width"], "height": size["height"]})
    violations = []
    page.goto(f"{console.url}/reports")
    expect(page.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")
    violations += axe_violations(page, f"/reports at {width}")
    for report_id, (name, charts) in REPORTS.items():
        page.goto(f"{console.url}/reports")
        page.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        images = page.locator("svg.chart[role=img]")
        expect(images).to_have_count(charts)
        for index in range(charts):
            chart = images.nth(index)
            expect(chart).to_be_visible()
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] <= size["width"], f"{name}: a chart is wider than the screen"
        # each chart is followed by its table, the text alternative
        expect(
            page.locator("figure.report-chart + * table, figure.report-chart ~ .table-wrap table")
        ).not_to_have_count(0)
        expect(page.get_by_role("link", name="CSV file of the " + name + " report")).to_be_visible()
        screenshot(page, f"report-{report_id}-{width}")
        violations += axe_violations(page, f"/reports/{report_id} at {width}")
    if violations:
        pytest.fail(report(violations), pytrace=False)


def test_the_external_report_lists_the_public_asset_and_its_certificate(
    admin_page: Page, console: RunningConsole, computed: None
) -> None:
    page = admin_page
    page.goto(f"{console.url}/reports/external")
    table = page.get_by_role("table", name="External assets")
    expect(table).to_contain_text("shop.acme.com")
    certificates = page.get_by_role("table", name="Certificates expiring within 30 days")
    expect(certificates).to_contain_text("CN=shop")
