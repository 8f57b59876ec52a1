"""The package as a user installs it: the sdist is built, the wheel is built from the sdist
and installed into a fresh virtual environment, and `surveyor up` runs from there. A real
Chromium loads the login page with its stylesheet and scripts (served and applied), and a
scan of 127.0.0.1 is processed.

The fresh environment gets the wheel alone (`--no-deps`); its dependencies come from the
test run's environment through a `.pth` file, which puts them *after* the wheel on the path,
so `surveyor` is the installed package and never the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Response, expect, sync_playwright

from surveyor import __version__
from tests.acceptance.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.explorer_processes import ServerProcess, banner_listener, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: What the project ships besides its sources: the sdist and the wheel both carry these.
SHIPPED_DATA = (
    "surveyor/console/templates/login.html",
    "surveyor/console/templates/tasks/overview.html",
    "surveyor/console/static/surveyor.css",
    "surveyor/console/static/favicon.svg",
    "surveyor/console/static/js/main.js",
    "surveyor/core/fingerprints/",
    "surveyor/store/migrations/env.py",
    "surveyor/store/migrations/versions/0001_initial_schema.py",
    "surveyor/py.typed",
)
BUILD_SECONDS = 600
SCAN_SECONDS = 90


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=without_test_paths() if env is None else env,
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def without_test_paths() -> dict[str, str]:
    """This environment without the settings that would point Python at the source tree."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME") and not key.startswith("SURVEYOR_")
    }


def fresh_venv(path: Path) -> Path:
    """A virtual environment without pip (the test run's pip installs into it); its python."""
    run(sys.executable, "-m", "venv", "--without-pip", path)
    return path / "bin" / "python"


def pip_into(python: Path, *args: str | Path) -> None:
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", *args)


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


def build(tmp: Path) -> Built:
    """What `python -m build` does: the sdist from the source tree, then the wheel from the
    unpacked sdist, each by the PEP 517 hooks in an environment holding the build
    requirements of pyproject.toml."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignored)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    backend = fresh_venv(tmp / "build-env")
    pip_into(backend, *requires)
    hooks = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_{}(sys.argv[1]))"
    dist = tmp / "dist"
    dist.mkdir()
    sdist = dist / run(backend, "-c", hooks.format("sdist"), dist, cwd=source).split()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    [unpacked] = (tmp / "unpacked").iterdir()
    wheel = dist / run(backend, "-c", hooks.format("wheel"), dist, cwd=unpacked).split()[-1]
    return Built(sdist, wheel)


class InstalledConsole(ServerProcess):
    """`surveyor up` started by the executable of the fresh environment."""

    def __init__(self, executable: Path, data_dir: Path) -> None:
        super().__init__("up", data_dir)
        self.executable = executable
        self.env.pop("PYTHONPATH", None)

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [self.executable, "up", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.data_dir.parent,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, seconds=90, what="surveyor up start-up")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Path]:
    """The built files, and the fresh environment's `surveyor` with the wheel installed."""
    tmp = tmp_path_factory.mktemp("packaging")
    built = build(tmp)
    python = fresh_venv(tmp / "app")
    pip_into(python, "--no-deps", "--no-index", built.wheel)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    dependencies = sysconfig.get_paths()["purelib"]  # the test run's, appended after the wheel
    (Path(site.strip()) / "surveyor-test-dependencies.pth").write_text(dependencies + "\n")
    return built, python.with_name("surveyor")


def test_the_sdist_and_the_wheel_carry_the_package_data(installed: tuple[Built, Path]) -> None:
    built, _ = installed
    with tarfile.open(built.sdist) as archive:
        in_sdist = archive.getnames()
    with zipfile.ZipFile(built.wheel) as archive:
        in_wheel = archive.namelist()

    for shipped in SHIPPED_DATA:
        assert any(name.startswith(shipped) for name in in_wheel), f"{shipped} not in the wheel"
        assert any(f"/src/{shipped}" in name for name in in_sdist), f"{shipped} not in the sdist"
    assert any(name.endswith(".json") for name in in_wheel if "core/fingerprints/" in name)
    assert built.wheel.name == f"surveyor-{__version__}-py3-none-any.whl"


def test_the_installed_console_serves_its_pages_and_processes_a_scan(
    installed: tuple[Built, Path], tmp_path: Path
) -> None:
    _, surveyor = installed
    env = without_test_paths() | {"SURVEYOR_DATA": str(tmp_path / "data")}
    where = run(
        surveyor.with_name("python"),
        "-c",
        "import surveyor; print(surveyor.__file__)",
        cwd=tmp_path,
        env=env,
    )
    version = run(surveyor, "--version", cwd=tmp_path, env=env)
    data = tmp_path / "data"
    data.mkdir()
    up = InstalledConsole(surveyor, data)
    up.start()
    try:
        served, errors, styled, live = _load_login_page_and_sign_in(up.url)
        wait_until(
            lambda: [e for e in up.api.get("/api/v1/explorers").json() if e["online"]],
            seconds=30,
            what="the embedded explorer coming online",
        )
        with banner_listener() as port:
            task = up.create_scan(
                name="packaged scan", params={"targets": "127.0.0.1", "tcp_ports": str(port)}
            )
            done = up.wait_for_status(
                task["id"], {"processed", "canceled", "stopped"}, seconds=SCAN_SECONDS
            )
        [asset] = up.api.get("/api/v1/assets", params={"search": "address:=127.0.0.1"}).json()[
            "items"
        ]
    finally:
        up.close()

    assert Path(where.strip()).is_relative_to(surveyor.parent.parent)
    assert version.splitlines()[0] == f"surveyor {__version__}"
    assert "database: none yet" in version
    css = [item for item in served if item[0].endswith(".css")]
    scripts = [item for item in served if item[0].endswith(".js")]
    assert css
    assert scripts
    for path, status, kind, size in served:
        assert (status, size > 0) == (200, True), f"{path}: {status}, {size} bytes"
        assert ("css" if path.endswith(".css") else "javascript") in kind, f"{path}: {kind}"
    assert {path.rsplit("/", 1)[-1] for path, *_ in scripts} >= {"main.js", "page.js", "live.js"}
    assert styled is True  # the login box is as wide as surveyor.css says
    assert live == "live"  # main.js started the live feed on the tasks page
    assert errors == []
    assert done["status"] == "processed", done
    assert done["change_summary"]["new"] == 1
    assert asset["ports"] == [f"tcp/{port} ssh"]


def _load_login_page_and_sign_in(
    url: str,
) -> tuple[list[tuple[str, int, str, int]], list[str], bool, str]:
    """The static files the pages loaded (path, status, type, size), the page errors, the
    login box having the width surveyor.css gives it, and the live feed's state once signed in."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (scripts/install-system-deps)")
    responses: list[Response] = []
    errors: list[str] = []

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("response", lambda response: responses.append(response))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/login", wait_until="networkidle")
            # .login-box { max-width: 24rem } in surveyor.css; without it, "none"
            styled = page.eval_on_selector(
                ".login-box",
                "box => getComputedStyle(box).maxWidth === "
                "24 * parseFloat(getComputedStyle(document.documentElement).fontSize) + 'px'",
            )
            served = [
                (path, response.status, response.headers.get("content-type", ""), len(body))
                for response in responses
                if "/static/" in (path := response.url.split("?", 1)[0])
                and path.endswith((".css", ".js"))
                and (body := response.body()) is not None
            ]
            page.get_by_label("Email").fill(ADMIN_EMAIL)
            page.get_by_label("Password").fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/tasks**")
            indicator = page.locator("#live-state")
            expect(indicator).to_have_attribute("data-state", "live", timeout=30_000)
            live = indicator.get_attribute("data-state") or ""
        finally:
            browser.close()
    return served, errors, styled, live
