"""The Dashboard in a real browser: insights pinned through the API are counted by Query
tasks after processing, and the page shows each count, its sparkline (with its text
alternative), the change since yesterday and the link to the matching items, the tasks
overview's counts and the latest failures, passing axe at 1280 and 390 pixels wide."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.accessibility import axe_violations, report
from tests.e2e.conftest import (
    NARROW,
    WIDE,
    RunningConsole,
    axe_admin_page,
    create_task,
    screenshot,
    wait_for_status,
)
from tests.support.inventory_data import encode, host, records, service

INSIGHTS = [
    ("SSH servers", "asset", "port:22", 1),
    ("Web services", "service", "port:80", None),
    ("Canceled tasks", "task", "status:canceled", None),
]


def _queued_query_tasks(console: RunningConsole) -> list[dict[str, Any]]:
    with console.api() as api:
        answer = api.get("/api/v1/tasks", params={"tab": "all", "search": "type:query"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@pytest.fixture(scope="module")
def insights(console: RunningConsole) -> list[dict[str, Any]]:
    """Three pinned insights counted after an import of two SSH servers, one of them a web
    server, and a stopped task among the failures."""
    created = []
    with console.api() as api:
        for name, kind, search, threshold in INSIGHTS:
            answer = api.post(
                "/api/v1/queries",
                json={
                    "name": name,
                    "kind": kind,
                    "search": search,
                    "threshold": threshold,
                    "pinned": True,
                },
            )
            assert answer.status_code == 201, answer.text
            created.append(answer.json())
        content = encode(
            records(
                [
                    host("127.0.0.21", services=[service(22), service(80)]),
                    host("127.0.0.22", services=[service(22)]),
                ],
                targets=None,
                ports=None,
            )
        )
        imported = api.post(
            "/api/v1/imports", content=content, headers={"Content-Type": "application/gzip"}
        )
        assert imported.status_code == 201, imported.text
    wait_for_status(console, imported.json()["id"], {"processed"})
    doomed = create_task(console, name="doomed scan", start_time="2099-01-01T00:00:00Z")
    with console.api() as api:
        assert api.post(f"/api/v1/tasks/{doomed['id']}/stop").status_code == 200
    for task in _queued_query_tasks(console):
        wait_for_status(console, task["id"], {"processed"})
    return created


@pytest.fixture
def axe_page(browser: Browser, console: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, console.url, timezone_id=None) as page:
        yield page


@pytest.mark.parametrize(
    "viewport",
    [
        ViewportSize(width=WIDE["width"], height=WIDE["height"]),
        ViewportSize(width=NARROW["width"], height=NARROW["height"]),
    ],
    ids=["wide", "narrow"],
)
def test_the_dashboard_shows_counted_insights_and_passes_axe(
    axe_page: Page,
    console: RunningConsole,
    insights: list[dict[str, Any]],
    viewport: ViewportSize,
) -> None:
    page = axe_page
    page.set_viewport_size(viewport)
    page.goto(f"{console.url}/dashboard")
    expect(page.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    ssh = page.locator(f'[data-insight="{insights[0]["id"]}"]')
    expect(ssh.locator(".insight-number")).to_have_text("2")
    expect(ssh).to_contain_text("Above its threshold of 1")
    expect(ssh.get_by_role("img", name=re.compile(r"^Trend of SSH servers: "))).to_be_visible()
    expect(page.locator(f'[data-insight="{insights[1]["id"]}"] .insight-number')).to_have_text("1")
    expect(page.get_by_role("region", name="Latest failures")).to_contain_text("doomed scan")
    violations = axe_violations(page, f"/dashboard at {viewport['width']} px")
    assert not violations, report(violations)
    screenshot(page, f"dashboard-{viewport['width']}")

    ssh.get_by_role("link", name="Show the matching assets of SSH servers").click()
    expect(page).to_have_url(re.compile(r"/assets\?search=port%3A22$"))
    expect(page.locator("tbody tr")).to_have_count(2)
