"""A kind defined only in this file runs through the whole pipeline: created through the API,
launched as its kind says (nobody collects it: the scheduler queues it once due), claimed and
processed by a real worker, and shown in the task list, on its card and by the CLI. Nothing
outside this file knows the kind, so adding one needs no edits elsewhere."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from surveyor.cli.render import task_panel
from surveyor.core import kinds
from surveyor.core.kinds import (
    Collector,
    ParamsContext,
    ParamsError,
    TaskKind,
    ValidParams,
    params_brief,
)
from surveyor.core.tasks import TaskStatus
from surveyor.processing.processors import (
    ProcessingJob,
    register_processor,
    unregister_processor,
)
from surveyor.processing.worker import Worker
from surveyor.scheduler.tick import Scheduler, TickReport
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest

S = TaskStatus
ECHO_PROCESSOR = "echo"


def echo_params(params: Mapping[str, Any], _context: ParamsContext) -> ValidParams:
    """An echo says one message, nothing else."""
    unknown = sorted(str(key) for key in params if key != "message")
    if unknown:
        raise ParamsError(unknown[0], f"unknown parameter '{unknown[0]}' (valid: message)")
    message = params.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ParamsError("message", "'message' must be some text to echo")
    return ValidParams({"message": message.strip()})


def echoed(task: Mapping[str, Any]) -> str:
    said = (task.get("stats") or {}).get("echo")
    return f"echoed {said}" if said else ""


ECHO = TaskKind(
    type="echo",
    label="Echo",
    path=(S.NEW, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED),
    collector=Collector.NOBODY,
    processor=ECHO_PROCESSOR,
    params=echo_params,
    creatable=True,
    brief=params_brief(lambda params: f"says {params.get('message', '')}"),
    outcome=echoed,
)


def process_echo(job: ProcessingJob) -> dict[str, Any]:
    """Processing an echo writes its message back, in capitals, as its result."""
    message = str(job.task.params["message"])
    return job.finish(
        message=f"echoed {message}",
        changes={"stats": {**job.task.stats, "echo": message.upper()}},
    )


@pytest.fixture
def echo_kind() -> Iterator[TaskKind]:
    kinds.register(ECHO)
    register_processor(ECHO_PROCESSOR, process_echo)
    try:
        yield ECHO
    finally:
        unregister_processor(ECHO_PROCESSOR)
        kinds.unregister(ECHO.type)


def tick(console: ConsoleUnderTest, now: datetime | None = None) -> TickReport:
    scheduler = Scheduler(console.db)
    try:
        return scheduler.tick(now)
    finally:
        scheduler.close()


def drain(console: ConsoleUnderTest, data_dir: Path) -> int:
    return Worker(console.db, data_dir, name="test-worker").drain()


def created(console: ConsoleUnderTest, **body: Any) -> dict[str, Any]:
    answer = console.admin.post(
        "/api/v1/tasks",
        json={"name": "hello", "type": "echo", "params": {"message": "hello"}, **body},
    )
    assert answer.status_code == 201, answer.text
    task: dict[str, Any] = answer.json()
    return task


def shown(console: ConsoleUnderTest, task_id: int) -> dict[str, Any]:
    task: dict[str, Any] = console.admin.get(f"/api/v1/tasks/{task_id}").json()
    return task


def test_a_kind_defined_in_a_test_runs_through_the_whole_pipeline(
    console: ConsoleUnderTest, echo_kind: TaskKind, tmp_path: Path
) -> None:
    task = created(console)
    assert (task["type"], task["status"]) == ("echo", "new")
    assert task["params"] == {"message": "hello"}

    assert tick(console).queued == 1
    assert shown(console, task["id"])["status"] == "processing_queued"
    assert drain(console, tmp_path) == 1

    done = shown(console, task["id"])
    assert done["status"] == "processed"
    assert done["stats"]["echo"] == "HELLO"
    assert done["progress"]["process"] == 1.0
    events = console.admin.get(f"/api/v1/tasks/{task['id']}/events").json()["items"]
    assert [(e["to_status"], e["actor"]) for e in events if e["to_status"]] == [
        ("new", "admin@example.test"),
        ("processing_queued", "scheduler"),
        ("processing", "test-worker"),
        ("processed", "test-worker"),
    ]
    listed = console.admin.get("/api/v1/tasks", params={"search": "type:echo"}).json()["items"]
    assert [item["id"] for item in listed] == [task["id"]]

    client, _ = signed_in(console, "viewer")
    page = client.get("/tasks?tab=completed").text
    assert ">hello</a>" in page
    assert '<td data-label="Type">echo</td>' in page
    assert '<td data-label="Changes">echoed HELLO</td>' in page
    assert 'aria-label="Echo progress of hello"' in page
    card = client.get(f"/tasks?tab=completed&task={task['id']}").text
    assert "<dt>Echo</dt><dd>says hello</dd>" in card
    assert "<dt>Result</dt><dd>echoed HELLO</dd>" in card
    assert "<dt>Explorer</dt>" not in card  # nothing runs it on an explorer

    text = io.StringIO()
    Console(file=text, width=120).print(task_panel(done, {}))
    assert "echoed HELLO" in text.getvalue()


def test_a_scheduled_run_of_the_kind_is_queued_when_its_start_time_comes(
    console: ConsoleUnderTest, echo_kind: TaskKind, tmp_path: Path
) -> None:
    # At 18:00 UTC, so that the tick a day later is more than the hidden daily Retention
    # template's 12 h of grace past its 03:00 run: that run is skipped, not queued beside ours.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    start = soon.replace(hour=18, minute=0, second=0)
    if start < soon:
        start += timedelta(days=1)
    task = created(console, start_time=start.isoformat(), grace_period=60)

    assert tick(console).queued == 0
    assert shown(console, task["id"])["wait_reason"] == "not_due"
    late = tick(console, start + timedelta(days=1))  # far past its grace: it never waits for
    assert (late.queued, late.canceled) == (1, 0)  # a runner, so it is never canceled for it
    assert drain(console, tmp_path) == 1
    assert shown(console, task["id"])["stats"]["echo"] == "HELLO"


def test_each_run_of_a_recurring_task_of_the_kind_is_queued_as_it_is_spawned(
    console: ConsoleUnderTest, echo_kind: TaskKind, tmp_path: Path
) -> None:
    template = created(console, name="hourly echo", recur={"frequency": "hourly"})
    first = datetime.fromisoformat(template["recur_next"])

    report = tick(console, first)
    assert (report.spawned, report.queued) == (1, 1)
    assert drain(console, tmp_path) == 1
    runs = console.admin.get(f"/api/v1/tasks/{template['id']}/runs").json()["items"]
    assert [(run["type"], run["status"], run["stats"].get("echo")) for run in runs] == [
        ("echo", "processed", "HELLO")
    ]


def test_the_api_applies_the_kinds_own_rules(
    console: ConsoleUnderTest, echo_kind: TaskKind
) -> None:
    def refusal(**body: Any) -> dict[str, Any]:
        answer = console.admin.post("/api/v1/tasks", json={"name": "x", "type": "echo", **body})
        assert answer.status_code == 400, answer.text
        error: dict[str, Any] = answer.json()["error"]
        return error

    assert refusal(params={})["details"]["field"] == "params.message"
    assert refusal(params={"message": "hi", "targets": "127.0.0.1"})["details"] == {
        "field": "params.targets"
    }
    explorer = refusal(params={"message": "hi"}, explorer_id=1)
    assert "does not run on an explorer" in explorer["message"]
    task = created(console)
    edited = console.admin.patch(f"/api/v1/tasks/{task['id']}", json={"params": {"message": "x"}})
    assert edited.json()["params"] == {"message": "x"}


def test_a_kind_nobody_registered_is_refused_by_the_api(console: ConsoleUnderTest) -> None:
    answer = console.admin.post(
        "/api/v1/tasks", json={"name": "x", "type": "echo", "params": {"message": "hi"}}
    )

    assert answer.status_code == 422
    assert "echo" in answer.text
    assert console.admin.get("/api/v1/tasks/counts").json()["counts"]["all"] == 0
