"""The explorer's agent against a console played by a function (no network, no server):
progress, stop, uploads with checksums and retries, stale attempts, restarts."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from surveyor.core.explorer_protocol import HostInfo
from surveyor.core.scan_params import ScanParams
from surveyor.explorer.agent import Agent, AgentTiming, Backoff
from surveyor.explorer.client import ExplorerClient
from surveyor.explorer.identity import (
    IDENTITY_FILE,
    Identity,
    PendingUpload,
    load_identity,
    load_pending_upload,
    save_identity,
    save_pending_upload,
    spool_path,
)
from surveyor.scan.progress import ScanProgress
from surveyor.scan.taskdata import read_task_data, write_task_data

HOST = HostInfo("1.0", "unit-host", "Linux", ("192.0.2.1",))
FAST = AgentTiming(poll_wait=0.0, backoff_initial=0.01, backoff_max=0.05)


def assignment(task_id: int = 7, attempt: int = 1) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "unit scan",
        "attempt": attempt,
        "attempt_token": f"token-{attempt}",
        "params": {"targets": "127.0.0.1", "tcp_ports": "80", "scope_size": 1},
        "scope_cap": 65536,
        "report_interval": 0.05,
    }


@dataclass
class FakeConsole:
    """Answers the explorer protocol; records what it was sent."""

    agent_shutdown: threading.Event
    work: list[dict[str, Any]] = field(default_factory=list)
    stop_after_reports: int | None = None
    stale_after_reports: int | None = None
    upload_failures: int = 0
    #: Answer uploads with this error (status, code) instead of storing them.
    upload_refusal: tuple[int, str] | None = None
    polls: int = 0
    progress: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stop_sent_at: float | None = None
    uploads: list[httpx2.Request] = field(default_factory=list)
    upload_bodies: list[bytes] = field(default_factory=list)
    upload_polls: list[int] = field(default_factory=list)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    unreachable: Callable[[], bool] = lambda: False
    #: Progress reports that found the console unreachable.
    missed_reports: int = 0
    #: Notified whenever the console is sent a progress report (heard or missed).
    reported: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return self._answer(request)
        finally:
            if request.url.path.endswith("/progress"):
                with self.reported:
                    self.reported.notify_all()

    def reports_sent(self) -> int:
        """How many progress reports the agent sent (heard or missed)."""
        with self.reported:
            return len(self.progress) + self.missed_reports

    def wait_for_report_after(self, sent: int) -> None:
        """Wait until the agent sent a progress report beyond the first `sent`."""
        with self.reported:
            moved = self.reported.wait_for(lambda: self.reports_sent() > sent, 30.0)
        assert moved, "the agent stopped reporting"

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if self.unreachable():
            if path.endswith("/progress"):
                self.missed_reports += 1
            raise httpx2.ConnectError("connection refused", request=request)
        if path.endswith("/poll"):
            self.polls += 1
            if self.work:
                return httpx2.Response(200, json={"task": self.work.pop(0)})
            self.agent_shutdown.set()
            return httpx2.Response(200, json={"task": None})
        if path.endswith("/progress"):
            body = json.loads(request.content)
            self.progress.append((time.monotonic(), body))
            count = len(self.progress)
            if self.stale_after_reports is not None and count > self.stale_after_reports:
                return error(409, "stale_attempt")
            stop = self.stop_after_reports is not None and count > self.stop_after_reports
            if stop and self.stop_sent_at is None:
                self.stop_sent_at = time.monotonic()
            return httpx2.Response(200, json={"stop": stop})
        if path.endswith(("/stopped", "/failed")):
            self.reports.append((path.rsplit("/", 1)[1], json.loads(request.content)))
            return httpx2.Response(200, json={"id": 7, "status": "stopped"})
        if "/task-data/" in path:
            body = request.read()
            self.uploads.append(request)
            self.upload_polls.append(self.polls)
            if self.upload_failures:
                self.upload_failures -= 1
                return error(503, "unavailable")
            if self.upload_refusal is not None:
                return error(*self.upload_refusal)
            if hashlib.sha256(body).hexdigest() != request.headers["x-surveyor-content-sha256"]:
                return error(400, "checksum_mismatch")
            self.upload_bodies.append(body)
            return httpx2.Response(200, json={"id": 7, "status": "processing_queued"})
        return error(404, "not_found")


def error(status: int, code: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"code": code, "message": code, "details": {}}})


def quick_scan(hosts: int = 3, paced_by: dict[str, FakeConsole] | None = None) -> Any:
    """A scan of `hosts` hosts; `paced_by` a console, each host waits until the console
    was sent a progress report (heard or not) since the one before."""

    def scan(
        params: ScanParams,
        *,
        on_progress: Callable[[Any], None] | None,
        stop: threading.Event | None,
    ) -> Iterator[dict[str, Any]]:
        yield {"type": "config", "targets": params.targets.text}
        for number in range(hosts):
            if paced_by is not None:
                console = paced_by["console"]
                console.wait_for_report_after(console.reports_sent())
            if on_progress:
                on_progress(ScanProgress(number + 1, hosts, number * 10, 0))
            yield {"type": "host", "addresses": [f"127.0.0.{number + 1}"], "services": []}
        yield {"type": "summary", "stopped": False}

    return scan


def endless_scan(halted: dict[str, float], found: int = 0) -> Any:
    """A scan that finds `found` hosts, then runs until stopped, and notes when it noticed
    the stop."""

    def scan(
        params: ScanParams,
        *,
        on_progress: Callable[[Any], None] | None,
        stop: threading.Event | None,
    ) -> Iterator[dict[str, Any]]:
        assert stop is not None
        yield {"type": "config"}
        for number in range(found):
            yield {"type": "host", "addresses": [f"127.0.0.{number + 1}"], "services": []}
        done = 0
        while not stop.wait(0.02):
            done += 1
            if on_progress:
                on_progress(ScanProgress(min(done, 999), 1000, 0, 0))
        halted["at"] = time.monotonic()
        yield {"type": "summary", "stopped": True}

    return scan


def uploaded_records(console: FakeConsole, tmp_path: Path) -> list[dict[str, Any]]:
    [body] = console.upload_bodies
    stored = tmp_path / "uploaded.jsonl.gz"
    stored.write_bytes(body)
    return list(read_task_data(stored))


def make_agent(
    tmp_path: Path, console_factory: Callable[[threading.Event], FakeConsole], scan: Any
) -> tuple[Agent, FakeConsole]:
    shutdown = threading.Event()
    console = console_factory(shutdown)
    client = ExplorerClient(
        "http://console.test", secret="svx_x", transport=httpx2.MockTransport(console)
    )
    agent = Agent(
        client,
        tmp_path / "state",
        host=lambda: HOST,
        scan=scan,
        write_data=write_task_data,
        timing=FAST,
        shutdown=shutdown,
    )
    return agent, console


def test_backoff_doubles_up_to_its_cap_and_jitters_within_the_upper_half() -> None:
    lowest = Backoff(1.0, 8.0, rng=lambda: 0.0)
    highest = Backoff(1.0, 8.0, rng=lambda: 1.0)

    assert [lowest.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [highest.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    lowest.reset()
    assert lowest.next_delay() == 0.5


def test_finished_data_is_uploaded_streamed_with_its_checksum(tmp_path: Path) -> None:
    agent, console = make_agent(
        tmp_path, lambda s: FakeConsole(s, work=[assignment()]), quick_scan(hosts=3)
    )

    agent.run()

    assert len(console.uploads) == 1
    upload = console.uploads[0]
    assert upload.method == "PUT"
    assert upload.url.path == "/api/v1/explorer/task-data/7"
    assert upload.headers["transfer-encoding"] == "chunked"
    assert upload.headers["x-surveyor-attempt-token"] == "token-1"
    stored = tmp_path / "stored.jsonl.gz"
    stored.write_bytes(console.upload_bodies[0])
    kinds = [record["type"] for record in read_task_data(stored)]
    assert kinds == ["config", "host", "host", "host", "summary"]
    assert load_pending_upload(tmp_path / "state") is None
    assert list((tmp_path / "state" / "spool").iterdir()) == []


def test_progress_is_reported_while_scanning(tmp_path: Path) -> None:
    box: dict[str, FakeConsole] = {}
    agent, console = make_agent(
        tmp_path, lambda s: FakeConsole(s, work=[assignment()]), quick_scan(6, paced_by=box)
    )
    box["console"] = console

    agent.run()

    done = [body["stats"].get("hosts_done", 0) for _, body in console.progress]
    assert len(done) >= 6, "each host waits for a report, so the scan was reported on"
    assert done == sorted(done)
    last = console.progress[-1][1]
    assert last["collect"] == 1.0
    assert last["stats"]["hosts_done"] == 6
    assert all(body["attempt_token"] == "token-1" for _, body in console.progress)


def test_a_stop_from_the_console_halts_the_scan_and_keeps_what_it_found(
    tmp_path: Path,
) -> None:
    """Issue 10.8: a scan stopped mid-way used to throw its data away."""
    halted: dict[str, float] = {}
    agent, console = make_agent(
        tmp_path,
        lambda s: FakeConsole(s, work=[assignment()], stop_after_reports=3),
        endless_scan(halted, found=2),
    )

    agent.run()

    assert console.stop_sent_at is not None
    assert console.stop_sent_at <= halted["at"], "the scan halted when it was told to"
    [upload] = console.uploads
    assert upload.headers["x-surveyor-partial"] == "true"
    assert upload.headers["x-surveyor-attempt-token"] == "token-1"
    records = uploaded_records(console, tmp_path)
    assert [r["type"] for r in records] == ["config", "host", "host", "summary"]
    assert records[-1]["stopped"] is True
    assert console.reports == [], "the upload confirms the stop"
    assert load_pending_upload(tmp_path / "state") is None
    assert list((tmp_path / "state" / "spool").iterdir()) == []


def test_a_finished_scans_upload_is_not_marked_partial(tmp_path: Path) -> None:
    agent, console = make_agent(
        tmp_path, lambda s: FakeConsole(s, work=[assignment()]), quick_scan(hosts=1)
    )

    agent.run()

    [upload] = console.uploads
    assert "x-surveyor-partial" not in upload.headers


def test_a_scan_that_fails_while_stopping_confirms_the_stop_without_data(
    tmp_path: Path,
) -> None:
    def breaks_on_stop(
        params: ScanParams, *, on_progress: Any, stop: threading.Event | None
    ) -> Iterator[dict[str, Any]]:
        assert stop is not None
        yield {"type": "config"}
        stop.wait(30)
        raise OSError("the socket loop died")

    agent, console = make_agent(
        tmp_path,
        lambda s: FakeConsole(s, work=[assignment()], stop_after_reports=2),
        breaks_on_stop,
    )

    agent.run()

    assert console.uploads == []
    assert console.reports == [("stopped", {"attempt_token": "token-1"})]


def test_partial_data_the_console_will_not_take_is_dropped_and_the_agent_goes_on(
    tmp_path: Path,
) -> None:
    """A console that does not keep a stopped scan's data answers 409; the explorer's next
    poll then settles the stop."""
    halted: dict[str, float] = {}
    agent, console = make_agent(
        tmp_path,
        lambda s: FakeConsole(
            s,
            work=[assignment()],
            stop_after_reports=2,
            upload_refusal=(409, "not_running"),
        ),
        endless_scan(halted, found=1),
    )

    agent.run()

    assert len(console.uploads) == 1
    assert console.upload_bodies == []
    assert console.polls == 2
    assert load_pending_upload(tmp_path / "state") is None
    assert list((tmp_path / "state" / "spool").iterdir()) == []


def test_a_partial_upload_left_unfinished_is_delivered_partial_after_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    data = spool_path(state, 7, 1)
    data.parent.mkdir(parents=True)
    write_task_data([{"type": "config"}, {"type": "summary", "stopped": True}], data)
    content = data.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    save_pending_upload(
        state, PendingUpload(7, "token-1", str(data), digest, len(content), partial=True)
    )
    agent, console = make_agent(tmp_path, lambda s: FakeConsole(s), quick_scan())

    agent.run()

    [upload] = console.uploads
    assert upload.headers["x-surveyor-partial"] == "true"
    assert console.upload_bodies == [content]


def test_a_report_refused_as_stale_abandons_the_scan_and_its_data(tmp_path: Path) -> None:
    halted: dict[str, float] = {}
    agent, console = make_agent(
        tmp_path,
        lambda s: FakeConsole(s, work=[assignment()], stale_after_reports=2),
        endless_scan(halted),
    )

    agent.run()

    assert "at" in halted
    assert console.uploads == []
    assert console.reports == []
    assert list((tmp_path / "state" / "spool").iterdir()) == []


def test_an_upload_is_retried_with_backoff_until_the_console_takes_it(tmp_path: Path) -> None:
    agent, console = make_agent(
        tmp_path,
        lambda s: FakeConsole(s, work=[assignment()], upload_failures=3),
        quick_scan(),
    )

    agent.run()

    assert len(console.uploads) == 4
    assert len(console.upload_bodies) == 1
    assert load_pending_upload(tmp_path / "state") is None


def test_the_scan_goes_on_while_the_console_is_unreachable_and_its_data_arrives_later(
    tmp_path: Path,
) -> None:
    box: dict[str, FakeConsole] = {}
    scanned = threading.Event()

    def factory(shutdown: threading.Event) -> FakeConsole:
        console = FakeConsole(shutdown, work=[assignment()])
        # Away from the handing out of the task until the scan has finished.
        console.unreachable = lambda: bool(console.polls) and not scanned.is_set()
        return console

    scan = quick_scan(hosts=4, paced_by=box)

    def scan_then_come_back(params: ScanParams, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from scan(params, **kwargs)
        scanned.set()

    agent, console = make_agent(tmp_path, factory, scan_then_come_back)
    box["console"] = console

    agent.run()

    assert console.missed_reports >= 4, "the scan went on while its reports were missed"
    assert len(console.upload_bodies) == 1


def test_a_failing_scan_is_reported_with_its_error(tmp_path: Path) -> None:
    def broken(params: ScanParams, **_: Any) -> Iterator[dict[str, Any]]:
        yield {"type": "config"}
        raise OSError("no route to the targets")

    agent, console = make_agent(tmp_path, lambda s: FakeConsole(s, work=[assignment()]), broken)

    agent.run()

    assert console.reports == [
        ("failed", {"attempt_token": "token-1", "error": "no route to the targets"})
    ]
    assert console.uploads == []


def test_invalid_params_are_reported_as_a_failure_without_scanning(tmp_path: Path) -> None:
    bad = {**assignment(), "params": {"targets": "not an address!"}}
    agent, console = make_agent(tmp_path, lambda s: FakeConsole(s, work=[bad]), quick_scan())

    agent.run()

    assert console.reports[0][0] == "failed"
    assert console.reports[0][1]["error"].startswith("invalid scan parameters")


def test_an_upload_left_unfinished_is_delivered_first_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    data = spool_path(state, 7, 1)
    data.parent.mkdir(parents=True)
    write_task_data([{"type": "config"}, {"type": "summary"}], data)
    content = data.read_bytes()
    save_pending_upload(
        state,
        PendingUpload(7, "token-1", str(data), hashlib.sha256(content).hexdigest(), len(content)),
    )
    agent, console = make_agent(tmp_path, lambda s: FakeConsole(s), quick_scan())

    agent.run()

    assert console.upload_bodies == [content]
    assert console.upload_polls == [0]
    assert load_pending_upload(state) is None
    assert not data.exists()


def test_the_identity_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "explorer"
    identity = Identity("http://127.0.0.1:8470", 3, 1, "edge", "svx_0123456789abcdef_secret")

    save_identity(state, identity)

    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / IDENTITY_FILE).stat().st_mode) == 0o600
    assert load_identity(state) == identity
    assert load_identity(tmp_path / "elsewhere") is None


def test_a_damaged_identity_file_is_reported_not_silently_replaced(tmp_path: Path) -> None:
    state = tmp_path / "explorer"
    state.mkdir()
    (state / IDENTITY_FILE).write_text("{not json")

    with pytest.raises(ValueError, match="damaged"):
        load_identity(state)
