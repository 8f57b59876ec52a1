"""Searched tab counts stop at the cap in a real browser: a capped tab reads "10,000+", and
the "Count exactly" button beside the tabs (a real button, reached by keyboard) asks for the
exact counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import insert, select

from surveyor.store import tasks as task_store
from surveyor.store.engine import make_engine
from surveyor.store.location import database_location
from surveyor.store.schema import organizations, tasks
from tests.e2e.accessibility import axe_violations, report
from tests.e2e.conftest import (
    RunningConsole,
    axe_admin_page,
)

FOUND = task_store.COUNT_CAP + 1


@pytest.fixture(scope="module")
def many_sweeps(console: RunningConsole) -> RunningConsole:
    """FOUND processed tasks named "weekly sweep N" in the console's own database."""
    location = database_location({"SURVEYOR_DATA": str(console.data_dir)})
    engine = make_engine(location.url)
    try:
        with engine.begin() as conn:
            org = conn.execute(select(organizations.c.id).order_by(organizations.c.id)).scalar()
            now = datetime.now(UTC)
            rows = [
                {
                    "organization_id": org,
                    "type": "scan",
                    "name": f"weekly sweep {number}",
                    "status": "processed",
                    "tab": "completed",
                    "created_by": "admin@example.com",
                    "created_at": now,
                    "updated_at": now,
                    "tab_sort": now,
                }
                for number in range(FOUND)
            ]
            conn.execute(insert(tasks), rows)
            task_store.rebuild_tab_counts(conn)
    finally:
        engine.dispose()
    return console


@pytest.fixture
def axe_page(browser: Browser, many_sweeps: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, many_sweeps.url, timezone_id=None) as page:
        yield page


def test_a_capped_count_reads_10000_plus_and_the_button_counts_exactly(
    axe_page: Page, many_sweeps: RunningConsole
) -> None:
    page = axe_page
    page.goto(f"{many_sweeps.url}/tasks?tab=all&search=name%3Asweep")
    completed = page.locator('#tabs [data-count="completed"]')
    expect(completed).to_have_text("10,000+", timeout=30_000)
    button = page.get_by_role("button", name="Count exactly")
    expect(button).to_be_visible()
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        expect(button).to_be_visible()
        violations = axe_violations(page, f"capped counts at {width} px")
        assert not violations, report(violations)
    button.focus()
    page.keyboard.press("Enter")
    expect(completed).to_have_text(str(FOUND), timeout=30_000)
    expect(page.locator('#tabs [data-count="all"]')).to_have_text(str(FOUND))
    expect(button).to_be_hidden()
    # The tab link itself still leads to its view.
    page.locator('#tabs a[data-tab="completed"]').click()
    page.wait_for_url("**tab=completed**")
