"""The Members page and invitations in a real browser: an admin adds a new account (its
password shown once and copied), invites an account of another organization, which accepts
on its account page, changes a role and removes a member; each state passes axe."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.accessibility import Violation, axe_violations, report
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BROWSER_TIME_ZONE,
    WIDE,
    RunningConsole,
    screenshot,
    sign_in,
)


@pytest.fixture
def profiles(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser profiles of their own (one person each) that let axe's script in and may use
    the clipboard."""
    made: list[BrowserContext] = []
    for _ in range(2):
        context = browser.new_context(
            viewport=WIDE, timezone_id=BROWSER_TIME_ZONE, locale="en-GB", bypass_csp=True
        )
        context.set_default_timeout(30_000)
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        made.append(context)
    try:
        yield made
    finally:
        for context in made:
            context.close()


def test_an_admin_adds_invites_and_manages_members(
    profiles: list[BrowserContext], console: RunningConsole
) -> None:
    with console.api() as api:
        elsewhere = api.post(
            "/api/v1/organizations", json={"name": "Elsewhere", "admin_email": "eli@example.test"}
        )
    assert elsewhere.status_code == 201, elsewhere.text
    eli_password = elsewhere.json()["members"][0]["generated_password"]
    violations: list[Violation] = []

    admin: Page = profiles[0].new_page()
    sign_in(admin, console.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin.get_by_role("link", name="Members").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Members")
    admin.get_by_label("Email").fill("ines@example.test")
    admin.get_by_label("Role", exact=True).select_option("operator")
    admin.get_by_label("Name").fill("Ines")
    admin.get_by_role("button", name="Add", exact=True).click()
    notice = admin.locator("#member-added")
    expect(notice).to_contain_text("Account created for ines@example.test")
    password = admin.locator("#new-password").inner_text().strip()
    admin.get_by_role("button", name="Copy password").click()
    expect(admin.get_by_role("button", name="Copied")).to_be_visible()
    assert admin.evaluate("navigator.clipboard.readText()") == password
    screenshot(admin, "members-added")
    violations += axe_violations(admin, "a new account's password shown once")

    admin.get_by_label("Email").fill("eli@example.test")
    admin.get_by_role("button", name="Add", exact=True).click()
    expect(notice).to_contain_text("Invited: eli@example.test has an account already")
    expect(admin.locator("#new-password")).to_have_count(0)
    expect(admin.locator("#invitations tbody")).to_contain_text("eli@example.test")
    violations += axe_violations(admin, "an invitation sent")
    admin.get_by_label("Email").fill("eli@example.test")
    admin.get_by_role("button", name="Add", exact=True).click()
    expect(admin.locator("#email-error")).to_contain_text("already has a pending invitation")
    expect(admin.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    violations += axe_violations(admin, "the add form refused")

    eli = profiles[1].new_page()
    sign_in(eli, console.url, "eli@example.test", eli_password)
    eli.goto(f"{console.url}/account")
    eli.get_by_role("button", name="Accept the invitation to Default").click()
    expect(eli.locator("#invitation-done")).to_have_text("You joined Default as viewer.")
    expect(eli.locator("#my-invitations")).to_contain_text("No invitation is waiting for you.")
    screenshot(eli, "account-joined")
    violations += axe_violations(eli, "an invitation accepted")

    admin.goto(f"{console.url}/users")
    eli_row = admin.locator("#members tbody tr", has_text="eli@example.test")
    eli_row.get_by_label("Role of eli@example.test").select_option("admin")
    eli_row.get_by_role("button", name="Change role of eli@example.test").click()
    expect(admin.get_by_role("status")).to_contain_text("Role changed.")
    expect(admin.get_by_label("Role of eli@example.test")).to_have_value("admin")
    mine = admin.locator("#members tbody tr", has_text=ADMIN_EMAIL)
    mine.get_by_label(f"Role of {ADMIN_EMAIL}").select_option("viewer")
    mine.get_by_role("button", name=f"Change role of {ADMIN_EMAIL}").click()
    expect(admin.get_by_role("alert")).to_contain_text("You cannot demote yourself")
    violations += axe_violations(admin, "a refused role change")

    admin.get_by_role("link", name="Remove ines@example.test").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(
        "Remove ines@example.test from this organization?"
    )
    admin.get_by_role("button", name="Remove member").click()
    expect(admin).to_have_url(re.compile(r"/users\?done=removed$"))
    expect(admin.locator("#members")).not_to_contain_text("ines@example.test")
    assert violations == [], report(violations)
