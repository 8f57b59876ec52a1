"""Every page of the web console, and the states a user meets on them, pass axe-core's
WCAG 2.1 A and AA rules at 1280 and 390 pixels wide.

The pages are found in the console app's own routes: a new page is checked as soon as it
exists (a page whose path takes a parameter this module cannot fill fails until it can).
The console holds realistic data: tasks in every tab, among them a running scan, one being
uploaded, a failed one with its error, a recurring template with a past run and a paused
one, a processed scan with a change summary and the assets it found, a second site, a
hosted zone, three explorers, a second member and a pending invitation each way. Two of the
explorers are played by this module over the explorer protocol, so their tasks stay where
the checks need them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from surveyor.console.app import create_app
from surveyor.console.state import ConsoleSettings
from surveyor.console.web.tasks import VIEWS
from tests.e2e.accessibility import Violation, axe_violations, report
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BROWSER_TIME_ZONE,
    NARROW,
    WIDE,
    RunningConsole,
    _free_loopback_port,
    create_task,
    screenshot,
    sign_in,
    wait_for_status,
)
from tests.support.inventory_data import encode, host, records

WIDTHS = {
    "wide": ViewportSize(width=WIDE["width"], height=WIDE["height"]),
    "narrow": ViewportSize(width=NARROW["width"], height=NARROW["height"]),
}
FAKE_EXPLORER_VERSION = "0.9.0"
SETUP_SECONDS = 60.0


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    """The console of this module: the explorers played here check in once and must stay
    online with their tasks where they were left, whatever the machine's speed."""
    running = RunningConsole(
        tmp_path_factory.mktemp("e2e-a11y"),
        _free_loopback_port(),
        settings={
            "SURVEYOR_ONLINE_WINDOW": "86400",
            "SURVEYOR_EXPLORER_SILENCE_TIMEOUT": "86400",
        },
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class Seeded:
    """The ids of what the console holds, for the pages that show one thing."""

    processed: int
    running: int
    uploading: int
    failed: int
    waiting: int
    template: int
    asset: int
    zone: int
    token: int
    member: int
    credential: int
    notification_rule: int
    query: int


class FakeExplorer:
    """An explorer played over the protocol: it takes one task at a time and leaves it
    wherever the test wants it (running, uploading, failed)."""

    def __init__(self, console: RunningConsole, enrollment_token: str, name: str) -> None:
        self.url = f"{console.url}/api/v1/explorer"
        enrolled = httpx2.post(
            f"{self.url}/enroll",
            headers={"Authorization": f"Bearer {enrollment_token}"},
            json={
                "name": name,
                "version": FAKE_EXPLORER_VERSION,
                "hostname": f"{name}.example.test",
                "os": "Debian GNU/Linux 12",
                "addresses": ["127.20.0.5"],
            },
            timeout=30.0,
        )
        assert enrolled.status_code == 201, enrolled.text
        self.id: int = enrolled.json()["explorer_id"]
        self.headers = {"Authorization": f"Bearer {enrolled.json()['secret']}"}

    def take(self, task_id: int) -> str:
        """Poll until the console hands over `task_id`; the attempt token."""
        deadline = time.monotonic() + SETUP_SECONDS
        while time.monotonic() < deadline:
            answer = httpx2.post(
                f"{self.url}/poll", headers=self.headers, json={"wait": 2}, timeout=30.0
            )
            assert answer.status_code == 200, answer.text
            task = answer.json()["task"]
            if task is not None:
                assert task["id"] == task_id, task
                token: str = task["attempt_token"]
                return token
        pytest.fail(f"explorer {self.id} was not given task {task_id}")

    def report(self, path: str, body: dict[str, Any]) -> httpx2.Response:
        return httpx2.post(f"{self.url}/{path}", headers=self.headers, json=body, timeout=30.0)

    def start_upload_that_breaks(self, task_id: int, token: str) -> None:
        """Begin uploading data whose checksum does not match: the task is `scanned`
        (uploading) and stays so until the explorer sends the data again."""
        answer = httpx2.put(
            f"{self.url}/task-data/{task_id}",
            headers={
                **self.headers,
                "X-Surveyor-Attempt-Token": token,
                "X-Surveyor-Content-SHA256": hashlib.sha256(b"other").hexdigest(),
            },
            content=b"not the data",
            timeout=30.0,
        )
        assert answer.json()["error"]["code"] == "checksum_mismatch", answer.text


def _post(api: httpx2.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = api.post(path, json=body or {})
    assert answer.status_code in (200, 201), answer.text
    created: dict[str, Any] = answer.json()
    return created


@pytest.fixture(scope="module")
def seeded(console: RunningConsole) -> Seeded:
    with console.api() as api:
        branch = _post(
            api,
            "/api/v1/sites",
            {
                "name": "Branch office",
                "description": "The second floor and its printers",
                "scope": "127.20.0.0/24",
                "excludes": "127.20.0.1",
            },
        )
        zone = _post(api, "/api/v1/hosted-zones", {"name": "Cloud probes", "max_concurrent": 2})
        credential = _post(
            api,
            "/api/v1/credentials",
            {
                "name": "Head office directory",
                "kind": "ldap",
                "site_ids": [branch["id"]],
                "fields": {"bind_dn": "cn=surveyor,dc=lab", "password": "a directory secret"},
            },
        )
        notification_rule = _post(
            api,
            "/api/v1/notifications",
            {
                "name": "On-call webhook",
                "trigger": "task_canceled",
                "channel": "webhook",
                "target": "http://127.0.0.1:9/hooks/surveyor",
                "secret": "a signing secret",
            },
        )
        query = _post(
            api,
            "/api/v1/queries",
            {"name": "SSH servers", "kind": "asset", "search": "port:22", "pinned": True},
        )
        api_token = _post(api, "/api/v1/tokens", {"name": "nightly export"})
        enrollment = _post(
            api, "/api/v1/enrollment-tokens", {"name": "branch rollout", "site_id": branch["id"]}
        )
        member = _post(
            api, "/api/v1/users", {"email": "sam@example.test", "role": "operator", "name": "Sam"}
        )
        partner = _post(
            api,
            "/api/v1/organizations",
            {"name": "Partner", "admin_email": "partner-admin@example.test"},
        )
        # a pending invitation each way: on the Members page, and on the admin's account page
        _post(api, "/api/v1/users", {"email": "partner-admin@example.test"})
    partner_login = httpx2.post(
        f"{console.url}/api/v1/auth/login",
        json={
            "email": "partner-admin@example.test",
            "password": partner["members"][0]["generated_password"],
        },
        timeout=30.0,
    )
    assert partner_login.status_code == 200, partner_login.text
    with console.api(partner_login.json()["token"]) as partner_api:
        _post(partner_api, "/api/v1/users", {"email": ADMIN_EMAIL, "role": "viewer"})
    office = FakeExplorer(console, enrollment["token"], "branch-gw")
    printers = FakeExplorer(console, enrollment["token"], "branch-printers")
    branch_scan = {"site_id": branch["id"], "params": {"targets": "127.20.0.0/24"}}

    processed = create_task(
        console,
        name="loopback services",
        params={"targets": "127.0.0.1", "tcp_ports": f"22,{console.port}"},
    )
    template = create_task(
        console,
        name="nightly loopback",
        params={"targets": "127.0.0.1", "tcp_ports": "22"},
        recur={"frequency": "daily", "time": "02:30", "timezone": BROWSER_TIME_ZONE},
    )
    paused = create_task(
        console,
        name="weekly printers",
        **branch_scan,
        recur={"frequency": "weekly", "weekdays": ["MO", "TH"], "time": "06:00"},
    )
    later = create_task(
        console, name="next year's audit", start_time="2099-01-01T00:00:00Z", **branch_scan
    )
    stopped = create_task(
        console, name="abandoned sweep", start_time="2099-01-02T00:00:00Z", **branch_scan
    )
    with console.api() as api:
        _post(api, f"/api/v1/tasks/{template['id']}/run-now")
        _post(api, f"/api/v1/tasks/{paused['id']}/pause")
        _post(api, f"/api/v1/tasks/{stopped['id']}/stop")
    assert later["status"] == "new"

    running = create_task(console, name="office sweep", explorer_id=office.id, **branch_scan)
    token = office.take(running["id"])
    assert office.report(
        f"tasks/{running['id']}/progress", {"attempt_token": token, "collect": 0.42}
    ).json() == {"stop": False}
    waiting = create_task(console, name="office ports", explorer_id=office.id, **branch_scan)

    failed = create_task(console, name="printer check", explorer_id=printers.id, **branch_scan)
    token = printers.take(failed["id"])
    answer = printers.report(
        f"tasks/{failed['id']}/failed",
        {"attempt_token": token, "error": "raw sockets are not allowed on this host"},
    )
    assert answer.json()["status"] == "canceled", answer.text
    uploading = create_task(
        console, name="printer inventory", explorer_id=printers.id, **branch_scan
    )
    printers.start_upload_that_breaks(uploading["id"], printers.take(uploading["id"]))

    wait_for_status(console, processed["id"], {"processed"})
    with console.api() as api:
        runs = api.get(f"/api/v1/tasks/{template['id']}/runs").json()["items"]
        assert len(runs) == 1, runs
        wait_for_status(console, runs[0]["id"], {"processed"})
        counts = api.get("/api/v1/tasks/counts").json()["counts"]
        assets = api.get("/api/v1/assets").json()["items"]
    assert all(counts[tab] > 0 for tab, _ in VIEWS), counts
    return Seeded(
        processed=processed["id"],
        running=running["id"],
        uploading=uploading["id"],
        failed=failed["id"],
        waiting=waiting["id"],
        template=template["id"],
        asset=assets[0]["id"],
        zone=zone["id"],
        token=api_token["id"],
        member=member["member"]["id"],
        credential=credential["id"],
        notification_rule=notification_rule["id"],
        query=query["id"],
    )


@pytest.fixture
def axe_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser profile that lets axe's script in despite the console's CSP."""
    made = browser.new_context(
        viewport=WIDTHS["wide"], timezone_id=BROWSER_TIME_ZONE, locale="en-GB", bypass_csp=True
    )
    made.set_default_timeout(30_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def axe_page(
    axe_context: BrowserContext, console: RunningConsole, seeded: Seeded
) -> Iterator[Page]:
    """A page signed in as the admin, over the seeded data; a script error fails the test."""
    page = axe_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, console.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    yield page
    assert errors == [], f"the page's scripts failed: {errors}"


def settle(page: Page) -> None:
    """Wait until the page shows what a user would look at: its live stream connected
    (pages with live parts) and the counts of a searched view arrived."""
    live = page.evaluate(
        "document.getElementById('live-state') !== null && "
        "(document.body.dataset.page === 'overview' || "
        "document.querySelector('[data-live]') !== null)"
    )
    if live:
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    expect(page.locator('[aria-busy="true"]')).to_have_count(0)


class Checks:
    """The violations found so far, and a screenshot of each state checked. Each state is
    checked at every width: the page is loaded once and resized (the pages' scripts do not
    read the width; the layout follows it), then left wide again for what comes next."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.violations: list[Violation] = []
        self.checked: list[str] = []

    def check(self, name: str) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        for width, size in WIDTHS.items():
            self.page.set_viewport_size(size)
            settle(self.page)
            screenshot(self.page, f"a11y-{slug}-{width}")
            self.violations += axe_violations(self.page, f"{name} at {width}")
        self.page.set_viewport_size(WIDTHS["wide"])
        self.checked.append(name)

    def visit(self, url: str, name: str) -> None:
        self.page.goto(url)
        self.check(name)

    def assert_none(self) -> None:
        if self.violations:
            pytest.fail(report(self.violations), pytrace=False)


def page_routes() -> list[str]:
    """The paths of the console's GET routes that are not the API: its web pages, and
    the few web routes that answer with something else (told apart by asking them)."""
    app = create_app(ConsoleSettings(data_dir=Path("unused"), database_url="sqlite://"))
    return sorted(
        route.path
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path is not None
        and "GET" in (route.methods or ())
        and not route.path.startswith("/api/")
        and route.path != "/healthz"
    )


def fill_path(path: str, seeded: Seeded) -> str:
    """A route's path with its parameters taken from the seeded data."""
    values = {
        "task_id": seeded.processed,
        "asset_id": seeded.asset,
        "zone_id": seeded.zone,
        "token_id": seeded.token,
        "user_id": seeded.member,
        "credential_id": seeded.credential,
        "rule_id": seeded.notification_rule,
        "query_id": seeded.query,
        "report_id": "overview",
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(
                f"the web route {path} takes {{{name}}}: give it a value in fill_path() so "
                "its page is checked for accessibility"
            )
        return str(values[name])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def test_every_page_of_the_console_passes_axe(
    axe_page: Page, console: RunningConsole, seeded: Seeded
) -> None:
    page = axe_page
    checks = Checks(page)
    not_pages: list[str] = []
    for path in page_routes():
        url = f"{console.url}{fill_path(path, seeded)}"
        answer = page.request.get(url, max_redirects=0)
        if answer.status >= 300 or not answer.headers["content-type"].startswith("text/html"):
            not_pages.append(path)
            continue
        checks.visit(url, path)
    # the probe found the pages (and left out only redirects, JSON and downloads)
    assert {"/tasks", "/tasks/new", "/imports", "/explorers", "/sites", "/assets"} <= set(
        checks.checked
    )
    assert "/assets/{asset_id:int}" in checks.checked
    assert set(not_pages) >= {"/", "/login", "/tasks/counts"}
    for name, label in VIEWS:
        checks.visit(f"{console.url}/tasks?tab={name}", f"the {label} tab")
    checks.assert_none()


def test_the_states_users_meet_pass_axe(
    axe_page: Page, console: RunningConsole, seeded: Seeded
) -> None:
    page = axe_page
    checks = Checks(page)
    url = console.url

    # a task card open: each kind a user meets
    for task_id, tab in (
        (seeded.processed, "completed"),
        (seeded.running, "active"),
        (seeded.uploading, "processing"),
        (seeded.waiting, "scheduled"),
        (seeded.failed, "failed"),
        (seeded.template, "recurring"),
    ):
        page.goto(f"{url}/tasks?tab={tab}&task={task_id}")
        expect(page.locator("#task-card")).to_have_attribute("data-task-id", str(task_id))
        checks.check(f"a task card in {tab}")
    page.goto(f"{url}/tasks?tab=completed&task={seeded.processed}")
    expect(page.locator("#task-card .change-counts")).to_be_visible()

    checks.visit(f"{url}/tasks?tab=all&task=999999999", "a task that does not exist")
    expect(page.locator("#card .notice")).to_contain_text("does not exist")
    checks.visit(f"{url}/tasks?tab=all&cursor=stale", "a stale page link")
    expect(page.locator("#search-feedback .notice")).to_contain_text("stale")

    # search: the syntax help open, a syntax error shown inline, a searched view's counts
    page.goto(f"{url}/tasks?tab=all")
    page.get_by_text("Search syntax").click()
    checks.check("the search syntax help")
    search = page.get_by_label("Search this view")
    search.fill("status:processed AND (name:sweep")
    search.press("Enter")
    expect(page.locator(".search-error")).to_be_visible()
    checks.check("a search with a syntax error")
    search.fill("colour:blue")
    search.press("Enter")
    expect(page.locator(".valid-keys")).to_be_visible()
    checks.check("a search with an unknown key")
    checks.visit(f"{url}/tasks?tab=all&search=status%3Aprocessed", "a searched view")
    page.goto(f"{url}/assets")
    page.get_by_label("Search assets").fill("alive:maybe")
    page.get_by_label("Search assets").press("Enter")
    expect(page.locator(".search-error")).to_be_visible()
    checks.check("an asset search with an error")

    # the new-task form: a later start, a recurring schedule with its preview, refused input
    page.goto(f"{url}/tasks/new")
    page.get_by_label("Later").check()
    expect(page.get_by_label("Start time")).to_be_visible()
    checks.check("the new-task form, later")
    page.get_by_label("Recurring").check()
    page.get_by_label("Repeat").select_option("weekly")
    expect(page.locator("#preview-list li")).to_have_count(5)
    checks.check("the new-task form, recurring")
    page.get_by_label("Name").fill("")
    page.get_by_label("Rate (probes per second)").fill("0")
    page.get_by_role("button", name="Create scan").click()
    expect(page.locator("#form-errors")).to_be_visible()
    checks.check("the new-task form with errors")

    # enrolling an explorer: the command shown once, and a refused name
    page.goto(f"{url}/explorers")
    page.get_by_label("Token name").fill("server room")
    page.get_by_role("button", name="Create enrollment token").click()
    expect(page.locator("#enroll-command")).to_be_visible()
    checks.check("an enrollment token created")
    page.get_by_label("Token name").fill(" ")
    page.get_by_role("button", name="Create enrollment token").click()
    expect(page.locator("#enroll-error")).to_be_visible()
    checks.check("an enrollment token refused")

    # the Import page: a refused file shown at the form (nothing is imported)
    page.goto(f"{url}/imports")
    page.get_by_label("File").set_input_files(
        files=[{"name": "broken.jsonl", "mimeType": "text/plain", "buffer": b"not json\n"}]
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#form-errors")).to_be_visible()
    checks.check("the Import page with a refused file")
    good = encode(records([host("127.0.9.9")], targets="127.0.9.9"), compress=False)
    page.get_by_label("File").set_input_files(
        files=[{"name": "hosts.jsonl", "mimeType": "application/x-ndjson", "buffer": good}]
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-status")).to_have_text("Import task: Processed", timeout=60_000)
    expect(page.locator("#form-errors")).to_be_hidden()
    checks.check("the Import page with an import processed")

    # the Settings page: retention refused by the console (past the browser's own checks),
    # then saved
    page.goto(f"{url}/settings/retention")
    page.locator("form[action='/settings/retention']").evaluate("f => { f.noValidate = true; }")
    page.get_by_label("Delete task data files after (days)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_be_visible()
    checks.check("the retention settings refused")
    page.get_by_label("Delete task data files after (days)").fill("60")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    checks.check("the retention settings saved")

    # the error page
    checks.visit(f"{url}/assets/999999999", "the error page")
    expect(page.get_by_role("alert")).to_contain_text("does not exist")
    checks.assert_none()


def test_the_sign_in_page_passes_axe(axe_context: BrowserContext, console: RunningConsole) -> None:
    page = axe_context.new_page()
    checks = Checks(page)
    checks.visit(f"{console.url}/login", "the sign-in page")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("email or password is wrong")
    checks.check("a refused sign-in")
    checks.assert_none()


def test_the_check_finds_violations_and_axe_is_never_served(
    axe_context: BrowserContext, console: RunningConsole
) -> None:
    page = axe_context.new_page()
    page.set_content(
        '<html lang="en"><head><title>Broken</title></head>'
        '<body><main><img src="/static/favicon.svg">'
        '<p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    found = {violation.rule for violation in axe_violations(page, "a broken page")}
    assert found == {"image-alt", "color-contrast"}
    # axe-core is a test tool: the console serves no copy of it
    for path in ("/node_modules/axe-core/axe.min.js", "/static/axe.min.js"):
        assert page.request.get(f"{console.url}{path}").status == 404
