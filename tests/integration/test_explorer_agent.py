"""The real explorer agent against a real console (in process), with a scan function
injected in place of the network: enroll, launch, progress, stop, upload."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from surveyor.core.explorer_protocol import HostInfo
from surveyor.core.scan_params import ScanParams
from surveyor.explorer.agent import Agent, AgentTiming
from surveyor.explorer.client import ExplorerClient
from surveyor.scan.progress import ScanProgress
from surveyor.scan.taskdata import read_task_data, write_task_data
from tests.support.console import ConsoleUnderTest
from tests.support.explorers import create_scan, enrollment_token, events, get_task

HOST = HostInfo("1.2.3", "agent-host", "Linux", ("127.0.0.1",))


def scan_until_stopped(seen_stop: threading.Event) -> Any:
    def scan(
        params: ScanParams,
        *,
        on_progress: Callable[[ScanProgress], None] | None,
        stop: threading.Event | None,
    ) -> Iterator[dict[str, Any]]:
        assert stop is not None
        yield {"type": "config", "targets": params.targets.text}
        hosts = 0
        while not stop.wait(0.05) and hosts < 40:
            hosts += 1
            if on_progress:
                on_progress(ScanProgress(hosts, 40, hosts * 3, 1))
            yield {"type": "host", "addresses": [f"127.0.0.{hosts}"], "services": []}
        if stop.is_set():
            seen_stop.set()
        yield {"type": "summary", "stopped": stop.is_set()}

    return scan


class RunningAgent:
    def __init__(self, console: ConsoleUnderTest, state_dir: Path, scan: Any) -> None:
        token = enrollment_token(console.admin)["token"]
        transport = console.client._transport
        self.client = ExplorerClient("http://testserver", transport=transport)
        enrolled = self.client.enroll(token, HOST, name="in-process")
        self.client.secret = enrolled.secret
        self.explorer_id = enrolled.explorer_id
        self.shutdown = threading.Event()
        self.agent = Agent(
            self.client,
            state_dir,
            host=lambda: HOST,
            scan=scan,
            write_data=write_task_data,
            timing=AgentTiming(poll_wait=1.0, backoff_initial=0.05, backoff_max=0.2),
            shutdown=self.shutdown,
        )
        self.thread = threading.Thread(target=self.agent.run, daemon=True)

    def __enter__(self) -> RunningAgent:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown.set()
        self.thread.join(10)


def wait_for(console: ConsoleUnderTest, task_id: int, statuses: set[str]) -> dict[str, Any]:
    """The task once it is in one of `statuses`: looked at again whenever the console's
    change bus tells of a change to it."""
    changed = threading.Event()
    unsubscribe = console.client.app.state.console.changes.subscribe(
        lambda _changes: changed.set(), where=lambda change: change.task_id == task_id
    )
    try:
        while True:
            changed.clear()
            task = get_task(console, task_id)
            if task["status"] in statuses:
                return task
            assert changed.wait(30), f"task {task_id} stays {task['status']}, not {statuses}"
    finally:
        unsubscribe()


def test_an_enrolled_explorer_runs_a_scan_and_its_data_reaches_processing_queued(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    with RunningAgent(console, tmp_path / "state", scan_until_stopped(threading.Event())) as run:
        scan = create_scan(console, explorer_id=run.explorer_id)
        done = wait_for(console, scan["id"], {"processing_queued"})

    assert done["progress"]["collect"] == 1.0
    assert done["stats"]["hosts_done"] == 40
    download = console.admin.get(f"/api/v1/tasks/{scan['id']}/data")
    stored = tmp_path / "download.jsonl.gz"
    stored.write_bytes(download.content)
    records = list(read_task_data(stored))
    assert [r["type"] for r in records].count("host") == 40
    shown = console.admin.get(f"/api/v1/explorers/{run.explorer_id}").json()
    assert (shown["version"], shown["hostname"]) == ("1.2.3", "agent-host")


def test_a_stop_asked_through_the_api_halts_the_scan_and_the_task_becomes_stopped_with_its_data(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    seen_stop = threading.Event()
    with RunningAgent(console, tmp_path / "state", scan_until_stopped(seen_stop)) as run:
        scan = create_scan(console, explorer_id=run.explorer_id)
        wait_for(console, scan["id"], {"active"})
        console.as_role("operator").post(f"/api/v1/tasks/{scan['id']}/stop")
        stopped = wait_for(console, scan["id"], {"stopped"})

    assert seen_stop.is_set()
    assert stopped["size_data"] > 0
    assert stopped["data_partial"] is True
    assert "stopped the scan" in events(console, scan["id"])[-1]["message"]
    download = console.admin.get(f"/api/v1/tasks/{scan['id']}/data")
    stored = tmp_path / "download.jsonl.gz"
    stored.write_bytes(download.content)
    records = list(read_task_data(stored))
    assert records[-1] == {"type": "summary", "stopped": True}
    assert 0 < [r["type"] for r in records].count("host") < 40
