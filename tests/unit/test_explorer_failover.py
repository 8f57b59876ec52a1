"""An explorer given several consoles of one deployment moves to the next when the one it
talks to stops answering, and goes on with the same identity and the same scan attempt."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from surveyor.core.scan_params import ScanParams
from surveyor.explorer.agent import Agent
from surveyor.explorer.client import ConsoleUnreachable, ExplorerClient, console_urls
from surveyor.scan.progress import ScanProgress
from surveyor.scan.taskdata import write_task_data
from tests.unit.test_explorer_agent import FAST, HOST, FakeConsole, assignment, error

A = "http://console-a.test"
B = "http://console-b.test"


@dataclass
class Deployment:
    """Two consoles in front of one FakeConsole, which plays their shared database."""

    shared: FakeConsole
    down: set[str] = field(default_factory=set)
    #: (console host, path) of every request sent, answered or not.
    asked: list[tuple[str, str]] = field(default_factory=list)
    #: (console host, path) of every request a console answered, and its credential.
    answered: list[tuple[str, str, str]] = field(default_factory=list)
    failure: Callable[[httpx2.Request], httpx2.Response | None] = lambda request: None

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        self.asked.append((host, request.url.path))
        if host in self.down:
            raise httpx2.ConnectError("connection refused", request=request)
        failed = self.failure(request)
        if failed is not None:
            return failed
        answer = self.shared(request)
        self.answered.append((host, request.url.path, request.headers.get("authorization", "")))
        return answer


def client_for(deployment: Deployment) -> ExplorerClient:
    return ExplorerClient([A, B], secret="svx_same", transport=httpx2.MockTransport(deployment))


def test_console_urls_come_from_repeated_options_and_comma_lists_in_order() -> None:
    given = ["http://a.test:8470/, http://b.test:8470", "http://a.test:8470", " http://c.test "]

    assert console_urls(given) == ["http://a.test:8470", "http://b.test:8470", "http://c.test"]
    assert console_urls("http://a.test,http://b.test/") == ["http://a.test", "http://b.test"]
    with pytest.raises(ValueError, match="at least one console"):
        ExplorerClient(" , ")


def test_a_refused_poll_is_sent_to_the_next_console_at_once_and_stays_there() -> None:
    shutdown = threading.Event()
    deployment = Deployment(FakeConsole(shutdown, work=[assignment()]), down={"console-a.test"})
    client = client_for(deployment)

    task = client.poll(HOST, wait=0)

    assert task is not None
    assert task.attempt_token == "token-1"
    assert deployment.asked == [
        ("console-a.test", "/api/v1/explorer/poll"),
        ("console-b.test", "/api/v1/explorer/poll"),
    ]
    assert client.console == B
    client.poll(HOST, wait=0)
    assert deployment.asked[-1] == ("console-b.test", "/api/v1/explorer/poll")


def test_with_every_console_down_the_poll_fails_once_each_and_says_so() -> None:
    deployment = Deployment(
        FakeConsole(threading.Event()), down={"console-a.test", "console-b.test"}
    )
    client = client_for(deployment)

    with pytest.raises(ConsoleUnreachable, match="cannot reach the console"):
        client.poll(HOST, wait=0)

    assert [host for host, _ in deployment.asked] == ["console-a.test", "console-b.test"]


def test_a_console_failing_mid_request_or_answering_503_moves_the_next_try_to_the_other() -> None:
    shutdown = threading.Event()
    deployment = Deployment(FakeConsole(shutdown, work=[assignment(), assignment(8)]))
    client = client_for(deployment)
    task = client.poll(HOST, wait=0)
    assert task is not None

    def cut_off(request: httpx2.Request) -> httpx2.Response | None:
        if request.url.host == "console-a.test":
            raise httpx2.ReadError("connection reset", request=request)
        return None

    deployment.failure = cut_off
    with pytest.raises(ConsoleUnreachable):
        client.report_progress(task, collect=0.5, stats={})
    assert client.report_progress(task, collect=0.5, stats={}) is False
    assert deployment.answered[-1][:2] == ("console-b.test", "/api/v1/explorer/tasks/7/progress")

    deployment.failure = lambda request: (
        error(503, "unavailable") if request.url.host == "console-b.test" else None
    )
    with pytest.raises(ConsoleUnreachable, match=r"console-b\.test answered 503"):
        client.poll(HOST, wait=0)
    assert client.console == A


def paced_scan(deployment: Deployment, *, hosts: int, kill_after: int) -> Any:
    """A scan whose hosts each wait for a progress report; console A dies after
    `kill_after` hosts."""

    def scan(
        params: ScanParams,
        *,
        on_progress: Callable[[Any], None] | None,
        stop: threading.Event | None,
    ) -> Iterator[dict[str, Any]]:
        yield {"type": "config", "targets": params.targets.text}
        for number in range(hosts):
            shared = deployment.shared
            shared.wait_for_report_after(shared.reports_sent())
            if number == kill_after:
                deployment.down.add("console-a.test")
            if on_progress:
                on_progress(ScanProgress(number + 1, hosts, 0, 0))
            yield {"type": "host", "addresses": [f"127.0.0.{number + 1}"], "services": []}
        yield {"type": "summary", "stopped": False}

    return scan


def test_a_scan_launched_through_a_console_that_dies_finishes_through_the_other(
    tmp_path: Path,
) -> None:
    shutdown = threading.Event()
    deployment = Deployment(FakeConsole(shutdown, work=[assignment()]))
    agent = Agent(
        client_for(deployment),
        tmp_path / "state",
        host=lambda: HOST,
        scan=paced_scan(deployment, hosts=5, kill_after=2),
        write_data=write_task_data,
        timing=FAST,
        shutdown=shutdown,
    )

    agent.run()

    answered_by = [host for host, _, _ in deployment.answered]
    assert answered_by[0] == "console-a.test", "the scan was launched through console A"
    died = answered_by.index("console-b.test")
    assert set(answered_by[:died]) == {"console-a.test"}
    assert set(answered_by[died:]) == {"console-b.test"}, "nothing went back to the dead one"
    assert {credential for _, _, credential in deployment.answered} == {"Bearer svx_same"}
    tokens = {body["attempt_token"] for _, body in deployment.shared.progress}
    assert tokens == {"token-1"}, "the same attempt went on"
    [upload] = deployment.shared.uploads
    assert upload.url.host == "console-b.test"
    assert upload.headers["x-surveyor-attempt-token"] == "token-1"
    assert len(deployment.shared.upload_bodies) == 1
    assert deployment.shared.progress[-1][1]["stats"]["hosts_done"] == 5
