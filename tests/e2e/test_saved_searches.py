"""Saving a search to the Dashboard in a real browser: from the Assets page, "Save to
Dashboard" saves and pins the search shown; the Dashboard shows it with the count a Query task
stored; its threshold is changed in place; it is deleted after a confirmation. The forms pass
axe at 1280 and 390 pixels wide, opened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

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


def _wait_for_query_tasks(console: RunningConsole) -> None:
    """Setup only: every Query task asked for so far has counted (the page shows the rest)."""
    with console.api() as api:
        answer = api.get("/api/v1/tasks", params={"tab": "all", "search": "type:query"})
    assert answer.status_code == 200, answer.text
    queued = answer.json()["items"]
    assert queued, "saving a pinned search asks for a Query task"
    for task in queued:
        wait_for_status(console, task["id"], {"processed"})


@pytest.fixture(scope="module")
def inventory(console: RunningConsole) -> None:
    """Three loopback hosts, two of them SSH servers."""
    content = encode(
        records(
            [
                host("127.0.0.31", services=[service(22), service(443)]),
                host("127.0.0.32", services=[service(22)]),
                host("127.0.0.33", services=[service(80)]),
            ],
            targets=None,
            ports=None,
        )
    )
    with console.api() as api:
        imported = api.post(
            "/api/v1/imports", content=content, headers={"Content-Type": "application/gzip"}
        )
    assert imported.status_code == 201, imported.text
    wait_for_status(console, imported.json()["id"], {"processed"})


@pytest.fixture
def axe_page(browser: Browser, console: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, console.url, timezone_id=None) as page:
        yield page


def _axe_at_both_widths(page: Page, where: str) -> None:
    for viewport in (WIDE, NARROW):
        page.set_viewport_size(ViewportSize(width=viewport["width"], height=viewport["height"]))
        violations = axe_violations(page, f"{where} at {viewport['width']} px")
        assert not violations, report(violations)
    page.set_viewport_size(ViewportSize(width=WIDE["width"], height=WIDE["height"]))


def test_a_search_saved_from_the_assets_page_is_counted_changed_and_deleted(
    axe_page: Page, console: RunningConsole, inventory: None
) -> None:
    page = axe_page
    page.goto(f"{console.url}/assets")
    page.get_by_label("Search assets").fill("port:22")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(2)

    page.get_by_text("Save to Dashboard").click()
    saving = page.locator("details.save-search form")
    expect(saving.locator("[data-save-search-shown]")).to_have_text("port:22")
    _axe_at_both_widths(page, "the Assets page saving a search")
    saving.get_by_label("Name").fill("SSH servers")
    saving.get_by_label("Threshold (optional)").fill("5")
    saving.get_by_role("button", name="Save and pin").click()

    expect(page).to_have_url(f"{console.url}/dashboard?saved=" + page.url.split("=")[-1])
    expect(page.get_by_role("status")).to_contain_text("Saved “SSH servers” and pinned it here")
    _wait_for_query_tasks(console)
    page.reload()
    insight = page.locator(".insight", has=page.get_by_role("heading", name="SSH servers"))
    expect(insight.locator(".insight-number")).to_have_text("2")
    expect(insight).to_contain_text("Threshold 5")
    expect(insight).not_to_contain_text("Above its threshold")

    insight.get_by_text("Change").click()
    _axe_at_both_widths(page, "the Dashboard changing an insight")
    insight.get_by_label("Threshold (empty: none)").fill("1")
    insight.get_by_role("button", name="Save SSH servers").click()
    expect(page).to_have_url(f"{console.url}/dashboard")
    insight = page.locator(".insight", has=page.get_by_role("heading", name="SSH servers"))
    expect(insight).to_contain_text("Above its threshold of 1")
    expect(insight.locator(".insight-number")).to_have_text("2")
    screenshot(page, "dashboard-saved-search")

    insight.get_by_text("Change").click()
    insight.get_by_role("link", name="Delete SSH servers").click()
    expect(
        page.get_by_role("heading", name="Delete the saved search “SSH servers”?")
    ).to_be_visible()
    page.get_by_role("button", name="Delete saved search").click()
    expect(page).to_have_url(f"{console.url}/dashboard")
    expect(page.locator(".insight")).to_have_count(0)
    expect(page.get_by_text("No insights yet.")).to_be_visible()
    with console.api() as api:
        assert api.get("/api/v1/queries").json() == []


def test_a_search_that_is_not_valid_as_a_service_search_is_refused_in_words(
    axe_page: Page, console: RunningConsole, inventory: None
) -> None:
    page = axe_page
    page.goto(f"{console.url}/assets?search=mac:00")
    page.get_by_text("Save to Dashboard").click()
    saving = page.locator("details.save-search form")
    saving.get_by_label("Their services (one per asset, port and transport)").check()
    saving.get_by_label("Name").fill("By MAC")
    saving.get_by_role("button", name="Save and pin").click()
    expect(page.get_by_role("heading", name="Saved searches", level=1)).to_be_visible()
    expect(page.locator(".field-error")).to_contain_text("The search is not valid")
    expect(page.get_by_label("Search", exact=True)).to_have_value("mac:00")
    _axe_at_both_widths(page, "the Saved searches page refusing a search")
