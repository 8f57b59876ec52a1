"""The Credentials pages in a real browser: an admin creates a credential (its secret typed
into a password field and never shown again), finds it listed, tries it against a server,
meets a refused form, and deletes it; each state passes axe at 1280 and 390 pixels."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.accessibility import Violation, axe_violations, report
from tests.e2e.conftest import (
    NARROW,
    WIDE,
    RunningConsole,
    axe_admin_page,
    screenshot,
)

SECRET = "a-typed-secret-the-browser-never-gets-back"


@pytest.fixture
def admin_page(browser: Browser, console: RunningConsole) -> Iterator[Page]:
    with axe_admin_page(browser, console.url) as page:
        yield page


def check(page: Page, name: str, violations: list[Violation]) -> None:
    """Check the page as it is at both widths, with a screenshot of each."""
    for label, size in (("wide", WIDE), ("narrow", NARROW)):
        page.set_viewport_size(ViewportSize(width=size["width"], height=size["height"]))
        screenshot(page, f"credentials-{name}-{label}")
        violations += axe_violations(page, f"{name} at {label}")
    page.set_viewport_size(ViewportSize(width=WIDE["width"], height=WIDE["height"]))


def test_an_admin_manages_a_credential_and_every_state_passes_axe(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    violations: list[Violation] = []

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credentials").click()
    expect(page.get_by_role("heading", name="Credentials", level=1)).to_be_visible()
    check(page, "empty", violations)

    page.get_by_label("Kind").select_option("snmp")
    expect(page.get_by_label("Community (v2c)")).to_be_visible()
    expect(page.get_by_label("Bind DN")).to_be_hidden()  # only the chosen kind's fields
    check(page, "the SNMP fields", violations)
    page.get_by_label("Name", exact=True).fill("Lab directory")
    page.get_by_label("Kind").select_option("ldap")
    expect(page.get_by_label("Community (v2c)")).to_be_hidden()
    page.get_by_label("Bind DN").fill("cn=svc,dc=lab")
    page.get_by_label("Password").fill(SECRET)
    page.get_by_role("button", name="Create credential").click()
    page.wait_for_url(re.compile(r".*/credentials/\d+$"))
    expect(page.get_by_role("heading", name="Lab directory")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("set")
    assert SECRET not in page.content()
    assert page.get_by_label("Password").input_value() == ""
    check(page, "one credential", violations)

    page.get_by_label("Server (host:port)").fill("127.0.0.1:9")
    page.get_by_label("Options (JSON, optional)").fill('{"base_dn": "dc=lab"}')
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verify-result")).to_be_visible()
    assert SECRET not in page.content()
    check(page, "a verify that failed", violations)

    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Bind DN").fill("")
    page.get_by_label("Name", exact=True).evaluate("input => input.removeAttribute('required')")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error").first).to_be_visible()
    check(page, "a refused edit", violations)

    page.goto(f"{console.url}/credentials")
    expect(page.get_by_role("link", name="Lab directory")).to_be_visible()
    expect(page.locator("#credentials")).to_contain_text("password: set")
    check(page, "the list", violations)

    page.get_by_role("link", name="Lab directory").click()
    page.get_by_role("link", name="Delete this credential…").click()
    check(page, "the delete confirmation", violations)
    page.get_by_role("button", name="Delete credential").click()
    expect(page.get_by_text("No credentials yet.")).to_be_visible()

    if violations:
        pytest.fail(report(violations), pytrace=False)
