"""The rest of the console in a real browser: signing in and out, search errors, what a
viewer may do, the explorers, hosted zones, sites, assets, API tokens and audit pages,
keyboard use, narrow screens, and live updates that come back after a console restart."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx2
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    NARROW,
    WIDE,
    RunningConsole,
    create_task,
    screenshot,
    sign_in,
    wait_for_status,
)

VIEWER_EMAIL = "viewer@example.test"
VIEWER_PASSWORD = "viewer password 0123456789"


def test_signing_in_and_out(browser: Browser, console: RunningConsole) -> None:
    page = browser.new_page(viewport=WIDE)
    page.goto(f"{console.url}/tasks?tab=failed")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("email or password is wrong")
    screenshot(page, "login-error")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tasks\?tab=failed$"))
    expect(page.locator('.tabs a[aria-current="page"]')).to_contain_text("Failed")
    cookie = next(c for c in page.context.cookies() if c["name"] == "surveyor_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{console.url}/tasks")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.set_viewport_size(NARROW)
    screenshot(page, "login-narrow")
    page.close()


def test_a_search_with_a_syntax_error_shows_the_message_and_where(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.goto(f"{console.url}/tasks?tab=all")
    page.evaluate("window.__noReload = true")
    search = page.get_by_label("Search this view")
    search.fill("status:processed AND (name:sweep")
    search.press("Enter")
    error = page.locator(".search-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("The search has an error")
    expect(error.locator("mark.error-at")).to_have_count(1)
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"search=status%3Aprocessed"))
    screenshot(page, "search-error")

    search.fill("colour:blue")
    search.press("Enter")
    expect(error).to_contain_text("colour")
    expect(page.locator(".valid-keys")).to_contain_text("status")

    page.get_by_text("Search syntax").click()
    expect(page.locator(".search-help")).to_contain_text("key:=value")
    search.fill("status:processed")
    search.press("Enter")
    expect(page.locator(".search-error")).to_have_count(0)
    expect(search).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-count="active"]')).to_have_text("0")
    assert page.evaluate("window.__noReload") is True

    # the URL holds the view, and back returns to the previous one
    page.get_by_role("link", name=re.compile("^Completed")).click()
    expect(page).to_have_url(re.compile(r"tab=completed&search=status%3Aprocessed"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"tab=all&search=status%3Aprocessed"))
    expect(page.locator('.tabs a[aria-current="page"]')).to_contain_text("All")


def test_a_viewer_sees_no_stop_button_and_the_api_refuses_to_stop(
    browser: Browser, console: RunningConsole
) -> None:
    with console.api() as api:
        created = api.post(
            "/api/v1/users",
            json={"email": VIEWER_EMAIL, "role": "viewer", "password": VIEWER_PASSWORD},
        )
        assert created.status_code in (201, 409), created.text
    task = create_task(
        console,
        name="viewer watches",
        params={"targets": "127.0.0.1", "tcp_ports": "1-65535", "rate": 100},
    )
    wait_for_status(console, task["id"], {"active"})
    page = browser.new_page(viewport=WIDE)
    try:
        sign_in(page, console.url, VIEWER_EMAIL, VIEWER_PASSWORD)
        page.goto(f"{console.url}/tasks?tab=active&task={task['id']}")
        expect(page.locator("#task-card .card-status")).to_contain_text("Active")
        expect(page.get_by_role("button", name="Stop")).to_have_count(0)
        expect(page.locator("#task-card .actions form")).to_have_count(0)
        expect(page.get_by_role("link", name="New scan")).to_have_count(0)
        screenshot(page, "viewer-task-card", full_page=False)

        # the web form endpoint refuses too, even with the viewer's valid CSRF token
        csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
        answer = page.request.post(
            f"{console.url}/tasks/{task['id']}/stop",
            form={"csrf_token": csrf or "", "tab": "active"},
        )
        assert answer.status == 403
        page.goto(f"{console.url}/tasks/new")
        expect(page.get_by_role("alert")).to_contain_text("needs the operator role")
    finally:
        page.close()

    login = httpx2.post(
        f"{console.url}/api/v1/auth/login",
        json={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD},
        timeout=30.0,
    )
    token = login.json()["token"]
    with console.api(token) as viewer_api:
        refused = viewer_api.post(f"/api/v1/tasks/{task['id']}/stop")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    with console.api() as api:
        assert api.post(f"/api/v1/tasks/{task['id']}/stop").status_code == 200
    wait_for_status(console, task["id"], {"stopped"})


def test_explorers_sites_and_assets_pages(admin_page: Page, console: RunningConsole) -> None:
    # the console itself answers on its port: the scan finds it as an HTTP service
    scan = create_task(
        console,
        name="find loopback",
        params={"targets": "127.0.0.1", "tcp_ports": f"22,{console.port}"},
    )
    wait_for_status(console, scan["id"], {"processed"})
    page = admin_page
    page.get_by_role("link", name="Explorers").click()
    row = page.locator("table").first.locator("tbody tr", has_text="embedded")
    expect(row).to_contain_text("Online")
    page.get_by_label("Token name").fill("branch office")
    page.get_by_role("button", name="Create enrollment token").click()
    command = page.locator("#enroll-command")
    expect(command).to_have_text(
        re.compile(rf"^surveyor explorer --console {re.escape(console.url)} --token sve_\S+$")
    )
    screenshot(page, "explorers")

    page.get_by_role("link", name="Sites").click()
    primary = page.locator("tbody tr", has_text="Primary")
    expect(primary).to_contain_text("127.0.0.1")
    screenshot(page, "sites")

    page.get_by_role("link", name="Assets").click()
    expect(page.locator("tbody tr").first).to_contain_text("127.0.0.1")
    screenshot(page, "assets")
    page.get_by_label("Search assets").fill("alive:maybe")
    page.get_by_label("Search assets").press("Enter")
    expect(page.locator(".search-error")).to_be_visible()
    page.get_by_label("Search assets").fill("address:127.0.0.1")
    page.get_by_label("Search assets").press("Enter")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("^Export CSV")).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    exported = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert [row["address"] for row in rows] == ["127.0.0.1"]  # the search was kept
    assert f"tcp/{console.port}" in rows[0]["ports"]
    page.locator("tbody tr a").first.click()
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("#services-title")).to_be_visible()
    expect(page.locator("tbody tr", has_text=f"{console.port}/tcp")).to_have_count(1)
    expect(page.locator("#history-title")).to_be_visible()
    # the embedded explorer scans as root: it reads the SYN-ACKs' TTL and window, and the
    # console (which names no system) is a Linux host on that weak evidence alone
    expect(page.locator("#why-title")).to_be_visible()
    expect(page.locator("ul.why li").last).to_have_text(
        re.compile(r"^Linux family \(TTL 64, window \d+\), from the TCP/IP stack$")
    )
    expect(page.locator("dd", has_text="TTL 64, window")).to_have_count(1)
    screenshot(page, "asset")

    page.set_viewport_size(NARROW)
    for path, name in (
        ("/explorers", "explorers"),
        ("/hosted-zones", "hosted-zones"),
        ("/sites", "sites"),
        ("/assets", "assets"),
        ("/tokens", "tokens"),
        ("/audit", "audit"),
    ):
        page.goto(f"{console.url}{path}")
        screenshot(page, f"{name}-narrow")
        assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]


def test_hosted_zones_api_tokens_and_the_audit_trail(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.get_by_role("link", name="Hosted zones").click()
    page.get_by_label("Name", exact=True).fill("e2e zone")
    page.get_by_label("Scans at a time").fill("2")
    page.get_by_role("button", name="Create hosted zone").click()
    expect(page).to_have_url(re.compile(r"/hosted-zones/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("e2e zone")
    expect(page.locator("#zone-members tbody")).to_contain_text("No explorer is in this zone")
    page.get_by_label("Scans at a time").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_label("Scans at a time")).to_have_value("3")
    screenshot(page, "hosted-zone")
    page.get_by_role("link", name="Delete this zone…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete hosted zone “e2e zone”?")
    page.get_by_role("button", name="Delete hosted zone").click()
    expect(page).to_have_url(re.compile(r"/hosted-zones$"))
    expect(page.locator("#zones")).not_to_contain_text("e2e zone")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("What it is for").fill("e2e script")
    page.get_by_role("button", name="Create API token").click()
    expect(page.locator("#new-token")).to_have_text(re.compile(r"^svr_\S+$"))
    screenshot(page, "api-tokens")
    page.get_by_role("link", name="Revoke e2e script").click()
    page.get_by_role("button", name="Revoke token").click()
    expect(page).to_have_url(re.compile(r"/tokens$"))
    expect(page.locator("#tokens")).not_to_contain_text("e2e script")

    page.get_by_role("link", name="Audit").click()
    entries = page.locator("#audit-entries tbody tr")
    expect(entries.first).to_contain_text("API token")
    expect(entries.first).to_contain_text("delete")
    page.get_by_label("Object type").fill("hosted_zone")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"object_type=hosted_zone"))
    expect(entries).to_have_count(3)
    for action, row in zip(("delete", "edit", "create"), entries.all(), strict=True):
        expect(row.locator('td[data-label="Action"]')).to_have_text(action)
        expect(row.locator('td[data-label="Actor"]')).to_have_text(ADMIN_EMAIL)
    # the edit names only the field that changed
    expect(entries.nth(1).locator('td[data-label="Details"]')).to_have_text(
        "fields: max_concurrent"
    )
    screenshot(page, "audit")


def test_the_overview_is_usable_by_keyboard_and_at_390_pixels(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    # A task of its own: run alone, the test finds the list as it needs it.
    create_task(
        console,
        name="chosen by keyboard",
        start_time="2099-01-01T00:00:00Z",
        params={"targets": "127.0.0.1"},
    )
    page.goto(f"{console.url}/tasks?tab=all")
    first = page.locator("table.tasks tbody tr a[data-select-task]").first
    first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#task-card")).to_be_focused()
    expect(page).to_have_url(re.compile(r"task=\d+"))
    screenshot(page, "tasks-overview")
    page.set_viewport_size(NARROW)
    screenshot(page, "tasks-overview-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    # every status shows a label and a shape, never colour alone
    for badge in page.locator(".status").all()[:10]:
        assert badge.locator(".st-label").inner_text().strip()
        assert badge.locator(".st-icon").count() == 1


def test_live_updates_come_back_after_a_console_restart(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.goto(f"{console.url}/tasks?tab=scheduled")
    live = page.locator("#live-state")
    expect(live).to_have_attribute("data-state", "live")
    page.evaluate("window.__noReload = true")
    before = int(page.locator('[data-count="scheduled"]').inner_text())

    console.restart()

    expect(live).to_have_attribute("data-state", "live", timeout=30_000)
    create_task(
        console,
        name="after the restart",
        start_time="2099-01-01T00:00:00Z",
        params={"targets": "127.0.0.1"},
    )
    expect(page.locator('[data-count="scheduled"]')).to_have_text(str(before + 1))
    expect(page.locator("table.tasks")).to_contain_text("after the restart")
    assert page.evaluate("window.__noReload") is True


def test_explorers_and_assets_pages_follow_the_work_without_a_reload(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.goto(f"{console.url}/explorers")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__noReload = true")
    current = page.locator("#explorers-live tbody tr", has_text="embedded").locator(
        'td[data-label="Current task"]'
    )
    task = create_task(
        console,
        name="watched from the explorers page",
        params={"targets": "127.0.0.1", "tcp_ports": "1-65535", "rate": 100},
    )
    expect(current).to_have_text(f"#{task['id']}", timeout=30_000)
    screenshot(page, "explorers-busy", full_page=False)
    with console.api() as api:
        assert api.post(f"/api/v1/tasks/{task['id']}/stop").status_code == 200
    expect(current).to_have_text("idle", timeout=30_000)
    assert page.evaluate("window.__noReload") is True

    page.goto(f"{console.url}/assets?search=address%3A127.0.0.77")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    expect(page.locator("#assets-live tbody tr.empty")).to_contain_text("No asset matches")
    page.evaluate("window.__noReload = true")
    scan = create_task(
        console, name="find 127.0.0.77", params={"targets": "127.0.0.77", "tcp_ports": "22,80"}
    )
    wait_for_status(console, scan["id"], {"processed"})
    found = page.locator("#assets-live tbody tr", has_text="127.0.0.77")
    expect(found).to_have_count(1, timeout=30_000)
    expect(found).to_contain_text("Online")
    assert page.evaluate("window.__noReload") is True
    # the search the user typed is left alone
    expect(page.get_by_label("Search assets")).to_have_value("address:127.0.0.77")
