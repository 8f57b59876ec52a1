"""A new user's first connector run, in a real browser against `surveyor up` and a real
slapd: an LDAP credential made on the Credentials page, a connector run made with the
new-task form, watched from Connecting to Processed on the task card without a reload, and
the directory's computers found in Assets with `source:ldap`."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from surveyor.testing.slapd import SlapdServer
from tests.e2e.conftest import RunningConsole, screenshot
from tests.e2e.test_tasks_live import WATCH_STATUSES, seen_statuses
from tests.support.ldap import LAB_COMPUTER_COUNT


@pytest.fixture
def silent_resolver() -> Iterator[str]:
    """A DNS server that never answers: the connector's look-ups time out, so its run stays
    in Connecting long enough to be watched, and the computers stay known by name."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_new_user_syncs_the_directory_and_finds_its_computers(
    admin_page: Page, console: RunningConsole, slapd: SlapdServer, silent_resolver: str
) -> None:
    page = admin_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credentials").click()
    page.get_by_label("Name", exact=True).fill("Lab directory")
    page.get_by_label("Kind").select_option("ldap")
    page.get_by_label("Bind DN").fill(slapd.bind_dn)
    page.get_by_label("Password").fill(slapd.password)
    page.get_by_role("button", name="Create credential").click()
    page.wait_for_url(re.compile(r".*/credentials/\d+$"))

    page.get_by_role("link", name="Tasks").first.click()
    page.get_by_role("link", name="New scan").click()
    page.get_by_role("radio", name=re.compile("Connector run")).check()
    expect(page.get_by_label("Targets")).to_be_hidden()
    expect(page.get_by_role("heading", name="New connector run")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Directory sync")
    page.get_by_label("Read from").select_option("ldap")
    page.get_by_label("Credential").select_option(label="Lab directory (ldap)")
    page.get_by_label("Server", exact=True).fill(slapd.server)
    page.get_by_label("Base DN").fill(slapd.base_dn)
    page.get_by_label(re.compile("Look up each computer")).check()
    page.get_by_label(re.compile("^DNS server")).fill(silent_resolver)
    screenshot(page, "new-connector-run-form")
    page.get_by_role("button", name="Create connector run").click()

    page.wait_for_url(re.compile(r"/tasks\?tab=all&task=\d+"))
    task_id = int(re.search(r"task=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    page.evaluate(WATCH_STATUSES, task_id)
    expect(page.locator("#task-card .card-status")).to_contain_text("Processed", timeout=90_000)
    assert page.evaluate("window.__noReload") is True, "the page was reloaded"
    seen = seen_statuses(page)
    assert seen[-1] == "Processed"
    assert "Connecting" in seen or "New" in seen, seen
    expect(page.locator('#task-card [data-ring-text="collect"]').first).to_have_text("100%")
    expect(page.locator('#task-card [data-ring-text="process"]').first).to_have_text("100%")
    screenshot(page, "connector-run-processed")

    page.get_by_role("link", name="Assets").first.click()
    page.get_by_label("Search assets").fill("source:ldap")
    page.get_by_label("Search assets").press("Enter")
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("lab.test")
    expect(rows).to_have_count(min(LAB_COMPUTER_COUNT, 100))  # a page of the assets list
    screenshot(page, "assets-from-ldap")
