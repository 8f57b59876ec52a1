"""The `surveyor` CLI against a real console: every command run as a user would run it, in this
process (`tests/support/cli_in_process.py`); the executable itself, its exit codes, a terminal
and Ctrl-C are tested with processes of their own.

Targets stay on 127.0.0.0/8 (SPEC §14); creating a task does not scan in this version anyway.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest

from tests.acceptance.conftest import (
    SURVEYOR,
    ConsoleProcess,
    clean_environment,
    free_loopback_port,
)
from tests.support.cli_in_process import run_surveyor

COMMAND_SECONDS = 60
_names = itertools.count(1)


class Use(Enum):
    """Take the setting from the test console (the default of `Cli.run`)."""

    CONSOLE = "console"


@dataclass
class Cli:
    """Runs `surveyor` with its own config directory: in this process (`run`, `ok`, `json`),
    or as a process of its own (`run_process`)."""

    console: ConsoleProcess
    home: Path

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "surveyor" / "cli.toml"

    def environment(self, *, url: str | None, token: str | None) -> dict[str, str]:
        env = clean_environment() | {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "COLUMNS": "250",
            "NO_COLOR": "1",
        }
        if url is not None:
            env["SURVEYOR_URL"] = url
        if token is not None:
            env["SURVEYOR_TOKEN"] = token
        return env

    def run(
        self,
        *args: str,
        url: str | Use | None = Use.CONSOLE,
        token: str | Use | None = Use.CONSOLE,
        stdin: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`surveyor *args`, run in this process (`tests/support/cli_in_process.py`)."""
        env = self._env(url, token, extra_env)
        result = run_surveyor(args, env, stdin)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def run_process(
        self,
        *args: str,
        url: str | Use | None = Use.CONSOLE,
        token: str | Use | None = Use.CONSOLE,
        stdin: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`surveyor *args` as a process of its own: the installed executable."""
        result = subprocess.run(
            [SURVEYOR, *args],
            env=self._env(url, token, extra_env),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def _env(
        self, url: str | Use | None, token: str | Use | None, extra: dict[str, str] | None
    ) -> dict[str, str]:
        return self.environment(
            url=self.console.url if url is Use.CONSOLE else url,
            token=self.console.token if token is Use.CONSOLE else token,
        ) | (extra or {})

    def ok(self, *args: str, **kwargs: Any) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
        return result.stdout

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs))

    def create(self, *args: str) -> dict[str, Any]:
        """A new scan of loopback with a name no other test uses."""
        name = f"cli-scan-{next(_names)}-{os.getpid()}"
        return dict(self.json("task", "create", name, "--targets", "127.0.0.1", *args))


@pytest.fixture
def cli(console_process: ConsoleProcess, tmp_path: Path) -> Cli:
    return Cli(console_process, tmp_path)


def ids(tasks: list[dict[str, Any]]) -> set[int]:
    return {task["id"] for task in tasks}


def test_a_scan_of_loopback_created_from_the_cli_is_in_the_scheduled_tab(cli: Cli) -> None:
    task = cli.create("--ports", "22,80", "--rate", "100", "--description", "from the CLI")

    assert task["status"] == "new"
    assert task["params"]["targets"] == "127.0.0.1"
    assert task["description"] == "from the CLI"
    assert task["id"] in ids(cli.json("task", "list", "--tab", "scheduled"))


def test_task_create_prints_the_id_status_label_and_site(cli: Cli) -> None:
    output = cli.ok("task", "create", "readable-create", "--targets", "127.0.0.1")

    match = re.search(r"Created task (\d+) readable-create \(New\) in site Primary", output)
    assert match, output
    assert cli.json("task", "show", match.group(1))["name"] == "readable-create"


def test_a_scan_created_for_later_waits_for_its_start_time(cli: Cli) -> None:
    task = cli.create("--at", "2099-01-31T22:00:00Z")

    assert task["start_time"].startswith("2099-01-31T22:00:00")
    assert task["wait_reason"] == "not_due"
    shown = cli.ok("task", "show", str(task["id"]))
    assert "waiting for its start time" in shown


def test_a_local_start_time_is_sent_as_the_same_instant_in_utc(cli: Cli) -> None:
    created = cli.json(
        "task",
        "create",
        "local-time",
        "--targets",
        "127.0.0.1",
        "--at",
        "2099-06-01 10:30",
        extra_env={"TZ": "Etc/GMT-2"},
    )

    assert created["start_time"].startswith("2099-06-01T08:30:00")


def test_task_list_shows_the_tab_counts_honouring_the_search(cli: Cli) -> None:
    task = cli.create()

    output = cli.ok("task", "list", "--tab", "scheduled", "--search", f'name:="{task["name"]}"')

    assert "Scheduled 1" in output
    assert "All 1" in output
    assert "Failed 0" in output
    assert task["name"] in output
    assert "New" in output
    assert "Primary" in output


def test_a_search_with_a_syntax_error_shows_the_message_and_points_at_the_position(
    cli: Cli,
) -> None:
    query = "name:scan AND (status:new"

    result = cli.run("task", "list", "--search", query)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ")
    query_line = next(i for i, line in enumerate(lines) if line.strip() == query)
    caret_line = lines[query_line + 1]
    assert caret_line.strip() == "^"
    assert query_line > 0
    assert 2 <= caret_line.index("^") <= len(query) + 2
    assert result.stdout == ""


def test_task_show_names_the_explorer_and_the_hosted_zone_that_run_it(cli: Cli) -> None:
    zone_name = f"show-zone-{os.getpid()}"
    zone = cli.json("zone", "create", zone_name)
    enrollment = cli.json("enrollment", "create", f"show-{os.getpid()}")
    explorer_name = f"show-explorer-{os.getpid()}"
    enrolled = httpx2.post(
        f"{cli.console.url}/api/v1/explorer/enroll",
        json={"name": explorer_name},
        headers={"Authorization": f"Bearer {enrollment['token']}"},
        timeout=COMMAND_SECONDS,
    )
    assert enrolled.status_code == 201, enrolled.text
    explorer_id = enrolled.json()["explorer_id"]

    pinned = cli.create("--explorer", str(explorer_id), "--at", "2099-01-31T22:00:00Z")
    shown = cli.ok("task", "show", str(pinned["id"]))
    assert re.search(rf"Explorer\s+{explorer_name} \(id {explorer_id}\)", shown), shown
    zoned = cli.create("--zone", str(zone["id"]), "--at", "2099-01-31T22:00:00Z")
    shown = cli.ok("task", "show", str(zoned["id"]))
    assert re.search(rf"Hosted zone\s+{zone_name} \(id {zone['id']}\)", shown), shown
    assert "Explorer" not in shown


def test_stopping_a_new_task_stops_it_at_once_and_it_shows_in_the_failed_tab(cli: Cli) -> None:
    task = cli.create()

    shown = cli.ok("task", "show", str(task["id"]))
    assert f"Task {task['id']}: {task['name']}" in shown
    assert "127.0.0.1" in shown

    assert f"Task {task['id']} Stopped" in cli.ok("task", "stop", str(task["id"]))
    assert cli.json("task", "show", str(task["id"]))["status"] == "stopped"
    assert task["id"] in ids(cli.json("task", "list", "--tab", "failed"))
    assert task["id"] not in ids(cli.json("task", "list", "--tab", "scheduled"))
    kinds = [
        (e["from_status"], e["to_status"]) for e in cli.json("task", "events", str(task["id"]))
    ]
    assert ("new", "stopped") in kinds


def test_stopping_a_stopped_task_is_refused_with_the_api_message(cli: Cli) -> None:
    task = cli.create()
    cli.ok("task", "stop", str(task["id"]))

    result = cli.run("task", "stop", str(task["id"]))

    assert result.returncode == 1
    assert "stopped" in result.stderr
    assert result.stderr.startswith("Error: ")


def test_a_removed_task_is_in_no_tab(cli: Cli) -> None:
    task = cli.create()

    assert f"Removed task {task['id']}" in cli.ok("task", "remove", str(task["id"]))

    assert task["id"] not in ids(cli.json("task", "list", "--tab", "all", "--all-pages"))
    assert task["id"] not in ids(cli.json("task", "list", "--tab", "failed", "--all-pages"))


def test_a_missing_task_is_a_refusal_naming_it(cli: Cli) -> None:
    result = cli.run("task", "show", "987654")

    assert result.returncode == 1
    assert "task 987654 does not exist" in result.stderr


def test_a_hidden_task_is_found_only_when_the_search_asks_for_hidden_tasks(cli: Cli) -> None:
    task = cli.create()
    by_name = f'name:="{task["name"]}"'

    assert "(hidden)" in cli.ok("task", "hide", str(task["id"]))

    assert cli.json("task", "list", "--search", by_name) == []
    hidden = cli.json("task", "list", "--search", f"{by_name} hidden:true")
    assert ids(hidden) == {task["id"]}
    cli.ok("task", "hide", "--unhide", str(task["id"]))
    assert ids(cli.json("task", "list", "--search", by_name)) == {task["id"]}


def test_a_daily_recurring_task_is_in_the_recurring_tab_with_its_next_run(cli: Cli) -> None:
    task = cli.create("--every", "daily", "--time", "03:00", "--tz", "UTC")

    assert task["recur"] is True
    assert task["recur_frequency"] == "daily"
    recurring = {t["id"]: t for t in cli.json("task", "list", "--tab", "recurring")}
    assert recurring[task["id"]]["recur_next"] is not None
    assert "T03:00:00" in recurring[task["id"]]["recur_next"]
    table = cli.ok("task", "list", "--tab", "recurring", "--search", f'name:="{task["name"]}"')
    assert "Next run" in table
    assert re.search(r"in \d+ (hour|minute|second)s?", table), table


def test_pausing_and_resuming_a_recurring_task(cli: Cli) -> None:
    task = cli.create("--every", "daily", "--time", "04:00", "--tz", "UTC")

    assert f"Task {task['id']} Paused" in cli.ok("task", "pause", str(task["id"]))
    assert cli.json("task", "show", str(task["id"]))["recur_next"] is None
    assert f"Task {task['id']} New" in cli.ok("task", "resume", str(task["id"]))
    assert cli.json("task", "show", str(task["id"]))["recur_next"] is not None


def test_running_a_recurring_task_now_starts_a_run_listed_under_it(cli: Cli) -> None:
    task = cli.create("--every", "daily", "--time", "05:00", "--tz", "UTC")

    output = cli.ok("task", "run-now", str(task["id"]))

    match = re.search(rf"Started run (\d+) of task {task['id']}", output)
    assert match, output
    runs = cli.json("task", "runs", str(task["id"]))
    assert ids(runs) == {int(match.group(1))}
    assert runs[0]["parent_id"] == task["id"]


def test_pausing_a_one_off_task_is_refused(cli: Cli) -> None:
    task = cli.create()

    result = cli.run("task", "pause", str(task["id"]))

    assert result.returncode == 1
    assert "only recurring" in result.stderr


def test_watching_a_stopped_task_reports_its_status_and_exits_1(cli: Cli) -> None:
    task = cli.create()
    cli.ok("task", "stop", str(task["id"]))

    result = cli.run("task", "watch", str(task["id"]))

    assert result.returncode == 1
    assert f"Task {task['id']} ended Stopped" in result.stdout


def test_ctrl_c_stops_watching_cleanly_and_the_task_goes_on(cli: Cli) -> None:
    task = cli.create()
    env = cli.environment(url=cli.console.url, token=cli.console.token)
    env.pop("NO_COLOR")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [SURVEYOR, "task", "watch", str(task["id"]), "--poll", "0.2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + COMMAND_SECONDS
        while b"Collect" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                seen += os.read(controller, 65536)
        assert b"Collect" in seen, seen.decode(errors="replace")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=COMMAND_SECONDS) == 130
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)

    text = seen.decode(errors="replace")
    assert "Stopped watching" in text
    assert "Traceback" not in text
    assert cli.json("task", "show", str(task["id"]))["status"] == "new"


def test_a_token_created_from_the_cli_works_until_it_is_deleted(cli: Cli) -> None:
    created = cli.json("token", "create", "ci-pipeline", "--expires-days", "7")

    assert created["token"]
    assert created["expires_at"] is not None
    assert created["id"] in ids(cli.json("token", "list"))
    cli.ok("task", "list", "--json", token=created["token"])

    assert "Deleted token" in cli.ok("token", "delete", str(created["id"]))
    result = cli.run("task", "list", token=created["token"])
    assert result.returncode == 4


def test_a_new_token_is_shown_once_with_a_warning(cli: Cli) -> None:
    output = cli.ok("token", "create", "shown-once")

    assert re.search(r"svr_\w+", output)
    assert "will not be shown again" in output
    assert "svr_" not in cli.ok("token", "list")


def test_login_with_the_password_on_stdin_saves_a_session_for_later_commands(cli: Cli) -> None:
    login = cli.run(
        "login",
        "--console",
        cli.console.url,
        "--email",
        cli.console.admin_email,
        "--password-stdin",
        url=None,
        token=None,
        stdin=cli.console.admin_password + "\n",
    )

    assert login.returncode == 0, login.stderr
    assert "Logged in" in login.stderr
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    assert cli.console.admin_password not in cli.config_file.read_text()
    task = cli.json("task", "create", "after-login", "--targets", "127.0.0.1", url=None, token=None)
    assert task["created_by"] == cli.console.admin_email

    assert cli.run("logout", url=None, token=None).returncode == 0
    after = cli.run("task", "list", url=None, token=None)
    assert after.returncode == 4
    assert "surveyor login" in after.stderr


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers every request with 401 and remembers the Authorization header it got."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = b'{"error": {"code": "unauthenticated", "message": "who are you?", "details": {}}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def other_console() -> Iterator[tuple[str, list[str | None]]]:
    """Another HTTP server on loopback that records which credentials reach it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    _RecordingHandler.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _RecordingHandler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_saved_session_is_never_sent_to_another_console(
    cli: Cli, other_console: tuple[str, list[str | None]]
) -> None:
    other_url, seen = other_console
    login = cli.run(
        "login",
        "--console",
        cli.console.url,
        "--email",
        cli.console.admin_email,
        "--password-stdin",
        url=None,
        token=None,
        stdin=cli.console.admin_password + "\n",
    )
    assert login.returncode == 0, login.stderr

    result = cli.run("task", "list", url=other_url, token=None)

    assert result.returncode == 4
    assert "who are you?" in result.stderr
    assert seen
    assert seen == [None] * len(seen)


def test_login_with_a_wrong_password_is_an_authentication_failure(cli: Cli) -> None:
    result = cli.run(
        "login",
        "--email",
        cli.console.admin_email,
        "--password-stdin",
        token=None,
        stdin="not the password\n",
    )

    assert result.returncode == 4
    assert "the email or password is wrong" in result.stderr
    assert not cli.config_file.exists()


def test_an_unreachable_console_exits_3_naming_the_url_and_suggesting_surveyor_up(
    cli: Cli,
) -> None:
    nowhere = f"http://127.0.0.1:{free_loopback_port()}"

    result = cli.run("task", "list", url=nowhere)

    assert result.returncode == 3
    assert nowhere in result.stderr
    assert "surveyor up" in result.stderr


def test_a_bad_token_exits_4_and_suggests_logging_in(cli: Cli) -> None:
    result = cli.run("task", "list", token="svr_0000000000000000_not-a-real-secret")

    assert result.returncode == 4
    assert "token" in result.stderr
    assert "surveyor login" in result.stderr


def test_a_malformed_target_is_refused_with_the_api_message_naming_it(cli: Cli) -> None:
    result = cli.run("task", "create", "bad-target", "--targets", "127.0.0.300")

    assert result.returncode == 1
    assert "127.0.0.300" in result.stderr
    assert result.stderr.startswith("Error: ")


def test_a_site_can_be_chosen_by_name_and_an_unknown_name_is_refused(cli: Cli) -> None:
    task = cli.create("--site", "primary")
    assert task["site_id"] is not None

    result = cli.run("task", "create", "no-site", "--site", "Nowhere")
    assert result.returncode == 1
    assert "no site named 'Nowhere'" in result.stderr
    assert "Primary" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("task", "list", "--tab", "bogus"),
        ("task", "create", "x", "--at", "next tuesday"),
        ("task", "create", "x", "--time", "03:00"),
        ("task", "create", "x", "--every", "daily", "--cron", "0 3 * * *"),
        ("task", "show", "not-a-number"),
    ],
)
def test_usage_errors_exit_2_without_calling_the_console(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli.run(*args, url=f"http://127.0.0.1:{free_loopback_port()}")

    assert result.returncode == 2


#: A task nothing changes while the module runs (it starts in 2099), and its listing.
UNCHANGING = "starts-in-2099"
LIST_UNCHANGING = ("task", "list", "--search", f"name:{UNCHANGING}")


@pytest.mark.parametrize(
    ("args", "url", "token", "code"),
    [
        ((*LIST_UNCHANGING, "--json"), Use.CONSOLE, Use.CONSOLE, 0),
        (("--help",), Use.CONSOLE, Use.CONSOLE, 0),
        (("task", "show", "987654"), Use.CONSOLE, Use.CONSOLE, 1),
        (("task", "list", "--tab", "bogus"), Use.CONSOLE, Use.CONSOLE, 2),
        (("task", "list"), "unreachable", Use.CONSOLE, 3),
        (("task", "list"), Use.CONSOLE, "svr_0000000000000000_not-a-real-secret", 4),
    ],
    ids=["ok", "help", "refused", "usage", "unreachable", "bad-token"],
)
def test_the_executable_answers_as_the_command_run_in_process(
    cli: Cli, args: tuple[str, ...], url: str | Use, token: str | Use, code: int
) -> None:
    if url == "unreachable":
        url = f"http://127.0.0.1:{free_loopback_port()}"
    if args[: len(LIST_UNCHANGING)] == LIST_UNCHANGING and not cli.json(*LIST_UNCHANGING):
        # Listed: a task that starts in 2099. The module's console also runs the other
        # tests' scans, whose rows change between the two commands.
        cli.ok("task", "create", UNCHANGING, "--targets", "127.0.0.1", "--at", "2099-01-01 00:00")
        assert len(cli.json(*LIST_UNCHANGING)) == 1

    process = cli.run_process(*args, url=url, token=token)
    in_process = cli.run(*args, url=url, token=token)

    assert process.returncode == code, process.stderr
    assert (in_process.returncode, in_process.stdout) == (process.returncode, process.stdout)
    assert in_process.stderr == process.stderr


def test_task_list_as_json_imports_neither_pydantic_nor_rich_nor_httpx2(cli: Cli) -> None:
    program = (
        "import json, sys\n"
        "sys.argv = ['surveyor', 'task', 'list', '--json']\n"
        "from surveyor.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=cli.environment(url=cli.console.url, token=cli.console.token),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    loaded = set(json.loads(done.stderr.splitlines()[-1]))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == cli.json("task", "list")
    # The console is at a plain http:// URL: asked through cli/plain_http.py, not httpx2.
    assert "surveyor.cli.plain_http" in loaded
    heavy = {
        "pydantic",
        "rich",
        "typer.rich_utils",
        "sqlalchemy",
        "fastapi",
        "surveyor.console",
        "httpx2",
        "ssl",
    }
    assert sorted(loaded & heavy) == []
