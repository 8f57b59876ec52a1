"""Browser tests: a real `surveyor up` on loopback, driven by a real headless Chromium.

Chromium is Debian's (`scripts/install-system-deps` installs it); Playwright only drives it.
A missing browser fails these tests loudly: they are the proof that the console works.
Screenshots of every page land in `artifacts/screenshots/`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

CHROMIUM = os.environ.get("SURVEYOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ADMIN_EMAIL = "admin@example.test"
ADMIN_PASSWORD = "correct horse battery staple"
BOOTSTRAP_TOKEN = "e2e-bootstrap-token-0123456789abcdef"
STARTUP_SECONDS = 90.0
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDE = {"width": 1280, "height": 900}
# The machine may be busy (tests run in parallel): wait longer than Playwright's 5 s default.
expect.set_options(timeout=15_000)
NARROW = {"width": 390, "height": 844}
BROWSER_TIME_ZONE = "Europe/Berlin"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningConsole:
    """`surveyor up` in its own data directory; `restart()` stops and starts it in place."""

    data_dir: Path
    port: int
    #: Settings on top of the tests' own (`SURVEYOR_…` variables).
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, token: str = BOOTSTRAP_TOKEN) -> httpx2.Client:
        return httpx2.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    def start(self) -> None:
        self.starts += 1
        log = self.data_dir / f"console-{self.starts}.log"
        self.logs.append(log)
        env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
        env |= {
            "SURVEYOR_DATA": str(self.data_dir),
            "SURVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
            "SURVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SURVEYOR_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
            "SURVEYOR_LOG_LEVEL": "warning",
            **self.settings,
        }
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [SURVEYOR, "up", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_healthy(log)

    def _wait_until_healthy(self, log: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        # One client for all the polls (each `httpx2.get` builds a client and a TLS context).
        with httpx2.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"surveyor up exited with {self.process.returncode}:\n{log.read_text()}"
                    )
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"surveyor up was not healthy within {STARTUP_SECONDS} s:\n{log.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("surveyor up did not stop within 20 s of SIGTERM")
        finally:
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    running = RunningConsole(tmp_path_factory.mktemp("e2e-data"), _free_loopback_port())
    running.start()
    try:
        yield running
    finally:
        running.stop()


class _SharedBrowser:
    """One Chromium for the browser tests a test process runs in a row, rather than one per
    file: starting Playwright's driver and Chromium costs seconds of CPU each time.

    While Playwright's sync API is started it marks its event loop as running in the main
    thread, which `asyncio.run` refuses; so the browser closes as soon as the next test is not
    a browser test (`pytest_runtest_teardown` below), and starts again if one comes later."""

    def __init__(self) -> None:
        self._driver: Playwright | None = None
        self._browser: Browser | None = None

    def get(self) -> Browser:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        self.close()
        if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
            pytest.fail(
                f"Chromium is not installed at {CHROMIUM}: the browser tests need it "
                "(run scripts/install-system-deps, or `apt-get install chromium`)."
            )
        self._driver = sync_playwright().start()
        self._browser = self._driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return self._browser

    def close(self) -> None:
        browser, driver = self._browser, self._driver
        self._browser = self._driver = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if driver is not None:
                driver.stop()


_shared_browser = _SharedBrowser()
_BROWSER_TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # after the test's own fixtures (its browser profiles) are torn down
    if nextitem is None or _BROWSER_TESTS not in nextitem.path.resolve().parents:
        _shared_browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The test process's Chromium; a test file leaves no browser profile open behind it."""
    shared = _shared_browser.get()
    try:
        yield shared
    finally:
        for left_open in list(shared.contexts):
            left_open.close()


def sign_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/tasks**")


@contextmanager
def axe_admin_page(
    browser: Browser, url: str, *, timezone_id: str | None = BROWSER_TIME_ZONE
) -> Iterator[Page]:
    """The first admin, signed in, in a profile of its own that lets axe's script in despite
    the console's CSP (see accessibility.py); a script error of the page fails the test."""
    zone = {"timezone_id": timezone_id} if timezone_id else {}
    made = browser.new_context(viewport=WIDE, locale="en-GB", bypass_csp=True, **zone)
    made.set_default_timeout(30_000)
    page = made.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, url, ADMIN_EMAIL, ADMIN_PASSWORD)
        yield page
    finally:
        made.close()
    assert errors == [], f"the page's scripts failed: {errors}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser profile of its own, in a time zone other than the server's UTC."""
    made = browser.new_context(viewport=WIDE, timezone_id=BROWSER_TIME_ZONE, locale="en-GB")
    made.set_default_timeout(30_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def admin_page(context: BrowserContext, console: RunningConsole) -> Iterator[Page]:
    """A page signed in as the first admin; a script error on it fails the test."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, console.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    yield page
    assert errors == [], f"the page's scripts failed: {errors}"


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def create_task(console: RunningConsole, **body: Any) -> dict[str, Any]:
    with console.api() as api:
        response = api.post("/api/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def wait_for_status(
    console: RunningConsole, task_id: int, statuses: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    """Poll the API until the task reaches one of `statuses` (setup only; the browser
    assertions watch the page itself)."""
    deadline = time.monotonic() + timeout
    with console.api() as api:
        while True:
            task: dict[str, Any] = api.get(f"/api/v1/tasks/{task_id}").json()
            if task["status"] in statuses:
                return task
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} is {task['status']}, not {sorted(statuses)}")
            time.sleep(0.2)
