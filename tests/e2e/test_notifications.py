"""The Notifications pages in a real browser: an admin creates a webhook rule (its secret
typed into a password field and never shown again), a stopped task reaches a real receiver
on 127.0.0.1 and shows in the rule's delivery log, a refused form says why, and the rule is
deleted; each state passes axe at 1280 and 390 pixels."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.accessibility import Violation, axe_violations, report
from tests.e2e.conftest import (
    NARROW,
    WIDE,
    RunningConsole,
    axe_admin_page,
    create_task,
    screenshot,
)
from tests.support.receivers import webhook_receiver

SECRET = "a-typed-signing-secret-the-browser-never-gets-back"


@pytest.fixture
def admin_page(browser: Browser, console: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, console.url) as page:
        yield page


def wait_until_delivered(console: RunningConsole, rule_id: int, timeout: float = 60.0) -> None:
    """Poll the API until the rule's delivery is recorded as delivered (setup only)."""
    deadline = time.monotonic() + timeout
    with console.api() as api:
        while True:
            log = api.get(f"/api/v1/notifications/{rule_id}/deliveries").json()
            if log and log[0]["status"] == "delivered":
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the rule's deliveries are {log}, none delivered")
            time.sleep(0.2)


def check(page: Page, name: str, violations: list[Violation]) -> None:
    """Check the page as it is at both widths, with a screenshot of each."""
    for label, size in (("wide", WIDE), ("narrow", NARROW)):
        page.set_viewport_size(ViewportSize(width=size["width"], height=size["height"]))
        screenshot(page, f"notifications-{name}-{label}")
        violations += axe_violations(page, f"{name} at {label}")
    page.set_viewport_size(ViewportSize(width=WIDE["width"], height=WIDE["height"]))


def test_an_admin_manages_a_webhook_rule_and_every_state_passes_axe(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    violations: list[Violation] = []

    with webhook_receiver(SECRET) as receiver:
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Notifications"
        ).click()
        expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
        check(page, "empty", violations)

        page.get_by_label("Name", exact=True).fill("On-call hook")
        page.get_by_label("When").select_option("task_canceled")
        page.get_by_label("Channel").select_option("webhook")
        page.get_by_label("Webhook URL or e-mail address").fill(receiver.url)
        page.get_by_label("Secret").fill(SECRET)
        page.get_by_role("button", name="Create rule").click()
        page.wait_for_url(re.compile(r".*/notifications/\d+$"))
        expect(page.get_by_role("heading", name="On-call hook")).to_be_visible()
        expect(page.locator("dl.facts")).to_contain_text("set")
        assert SECRET not in page.content()
        assert page.get_by_label("Signing secret").input_value() == ""
        check(page, "one rule", violations)

        task = create_task(console, name="stopped by hand", start_time="2099-01-01T00:00:00Z")
        with console.api() as api:
            assert api.post(f"/api/v1/tasks/{task['id']}/stop").status_code == 200
        [got] = receiver.wait_for(1)
        assert got.body["task"]["id"] == task["id"]
        rule_id = int(page.url.rsplit("/", 1)[1])
        wait_until_delivered(console, rule_id)  # recorded just after the receiver answered
        page.reload()
        expect(page.locator("#deliveries")).to_contain_text("delivered")
        expect(page.locator("#deliveries")).to_contain_text("204")
        check(page, "a delivery in the log", violations)

    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Webhook URL").fill("ftp://nowhere.example")
    page.get_by_label("Name", exact=True).evaluate("input => input.removeAttribute('required')")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error").first).to_be_visible()
    check(page, "a refused edit", violations)

    page.goto(f"{console.url}/notifications")
    expect(page.locator("#notification-rules")).to_contain_text("A task is canceled or stopped")
    check(page, "the list", violations)

    page.get_by_role("link", name="On-call hook").click()
    page.get_by_role("link", name="Delete this rule…").click()
    check(page, "the delete confirmation", violations)
    page.get_by_role("button", name="Delete rule").click()
    expect(page.get_by_text("No notification rules yet.")).to_be_visible()

    if violations:
        pytest.fail(report(violations), pytrace=False)
