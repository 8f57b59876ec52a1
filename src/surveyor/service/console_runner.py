"""The console's runner: a background service that collects the tasks the console runs
itself (connector runs naming no explorer; `service/console_runs.py` keeps their statuses).

It claims a due task when the change bus tells of one (and every `sweep_seconds` anyway),
runs the connector in a thread, writes the task data file beside the other tasks' data, and
reports progress once a `report_seconds`; a stop the user asks for reaches the connector at
the next report. A task's credential is opened only for the run that needs it
(`open_credential`), and its secret stays in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.connectors.run import EncodedRun
from surveyor.core import kinds
from surveyor.core.task import Task
from surveyor.scan.taskdata import FAST_COMPRESS_LEVEL, write_encoded
from surveyor.service import console_runs
from surveyor.service.background import ServiceHost
from surveyor.service.credentials import CredentialUnusable
from surveyor.store.change_bus import AsyncSignal
from surveyor.store.changes import ChangeKind, TaskChange
from surveyor.store.task_data_store import keep_task_data
from surveyor.store.taskdata import create_temp_file, sha256_of, task_data_path

log = logging.getLogger("surveyor.console.runner")


#: Opens the credential a task names: its fields, secrets decrypted; raises
#: CredentialUnusable. Called in a write transaction (it may note the credential's use).
CredentialOpener = Callable[[Connection, Task, str], Mapping[str, str]]


@dataclass(frozen=True)
class RunnerSettings:
    #: How often a run's progress is stored (and a stop request noticed).
    report_seconds: float = 1.0
    #: A console run nobody reported on for this long is canceled by any console.
    silence_seconds: float = 60.0
    #: How often the runner looks for due tasks without being woken.
    sweep_seconds: float = 5.0
    #: How many tasks one console runs at once.
    max_runs: int = 4
    #: Seconds one network operation of a connector may take.
    timeout: float = 10.0


def wakes_runner(change: TaskChange) -> bool:
    """A change that may make a console run due: a task of a kind the console runs that
    was created, or edited while waiting (its start time, its explorer)."""
    if change.template or change.task_type not in kinds.run_in_console():
        return False
    return change.kind is ChangeKind.CREATED or change.status == "new"


class _Progress:
    """What the connector's thread has fetched, read by the reporting loop."""

    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        if not self.total:
            return 0.0
        return min(0.99, self.done / self.total)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"objects": self.done}
        if self.total is not None:
            stats["announced"] = self.total
        return stats


async def run_one(
    host: ServiceHost,
    task: Task,
    open_credential: CredentialOpener,
    settings: RunnerSettings,
) -> None:
    """Collect one claimed task to its end: queued, stopped or canceled."""
    params = dict(task.params or {})
    name = str(params.get("connector"))
    try:
        connector = connector_named(name)
        with host.db.write() as conn:
            fields = open_credential(conn, task, connector.credential_kind)
        options = {
            k: v for k, v in params.items() if k not in ("connector", "credential_id", "server")
        }
        config = ConnectorConfig(
            server=str(params.get("server")),
            options=connector.check_options(options),
            credential=fields,
            timeout=settings.timeout,
        )
    except (ConnectorError, ValueError) as exc:
        await _fail(host, task, str(exc))
        return
    except CredentialUnusable as exc:
        await _fail(host, task, f"cannot read {params.get('server')}: {exc}")
        return
    progress = _Progress()
    folder = host.data_dir / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = create_temp_file(folder, prefix=f"run-{task.id}-", suffix=".jsonl.gz")
    os.close(handle)
    counted = {"hosts": 0}

    def collect() -> None:
        run = EncodedRun(connector, config, progress, clock=host.clock)
        write_encoded(run, temp, level=FAST_COMPRESS_LEVEL)
        counted["hosts"] = run.hosts

    worker = asyncio.ensure_future(asyncio.to_thread(collect))
    try:
        while True:
            done, _ = await asyncio.wait({worker}, timeout=settings.report_seconds)
            if done:
                break
            try:
                stop = await asyncio.to_thread(_report, host, task, progress)
            except console_runs.RunLost:
                config.stopped.set()
                await asyncio.wait({worker})
                temp.unlink(missing_ok=True)
                return
            if stop:
                config.stopped.set()
        try:
            worker.result()
        except ConnectorError as exc:
            temp.unlink(missing_ok=True)
            await _fail(host, task, str(exc))
            return
        except Exception as exc:  # a connector's own bug must not leave the task running
            log.exception("connector run of task %s failed", task.id)
            temp.unlink(missing_ok=True)
            await _fail(host, task, f"the {name} connector failed unexpectedly: {exc}")
            return
        await asyncio.to_thread(_finish, host, task, temp, counted["hosts"], progress.stats())
    finally:
        config.stopped.set()
        with contextlib.suppress(BaseException):
            if not worker.done():
                await asyncio.wait({worker})
        temp.unlink(missing_ok=True)


def _report(host: ServiceHost, task: Task, progress: _Progress) -> bool:
    with host.db.write() as conn:
        return console_runs.report(
            conn,
            task,
            collect=progress.fraction,
            stats=progress.stats(),
            now=host.clock.now(),
        )


def _finish(host: ServiceHost, task: Task, temp: Any, hosts: int, stats: Mapping[str, Any]) -> None:
    size = temp.stat().st_size
    digest = sha256_of(temp)
    final = task_data_path(host.data_dir, task.id)
    try:
        with host.db.write() as conn:
            console_runs.finish(
                conn,
                task,
                size=size,
                sha256=digest,
                hosts=hosts,
                stats=stats,
                store=lambda: _kept(conn, task.id, temp.replace(final) or final),
                now=host.clock.now(),
            )
    except console_runs.RunLost:
        return
    except BaseException:
        final.unlink(missing_ok=True)
        raise


def _kept(conn: Connection, task_id: int, path: Path) -> Path:
    """The data in place, and in the database when it keeps task data."""
    keep_task_data(conn, task_id, path)
    return path


async def _fail(host: ServiceHost, task: Task, error: str) -> None:
    def write() -> None:
        with contextlib.suppress(console_runs.RunLost), host.db.write() as conn:
            console_runs.fail(conn, task, error=error, now=host.clock.now())

    await asyncio.to_thread(write)


def _claim(host: ServiceHost) -> Task | None:
    with host.db.write() as conn:
        return console_runs.claim(conn, now=host.clock.now())


def _settle(host: ServiceHost, silence: timedelta) -> None:
    with host.db.write() as conn:
        for task in console_runs.settle_silent_runs(conn, now=host.clock.now(), silence=silence):
            log.info("console run of task %s ended: %s", task.id, task.status)


async def run_console_runner(
    host: ServiceHost,
    open_credential: CredentialOpener,
    settings: RunnerSettings | None = None,
) -> None:
    """Run due console tasks until cancelled, at most `max_runs` at once."""
    settings = settings or RunnerSettings()
    woken = AsyncSignal()
    unsubscribe = host.changes.subscribe(lambda _changes: woken.notify(), where=wakes_runner)
    running: set[asyncio.Task[None]] = set()
    silence = timedelta(seconds=settings.silence_seconds)
    try:
        while True:
            armed = woken.arm()
            await asyncio.to_thread(_settle, host, silence)
            while len(running) < settings.max_runs:
                task = await asyncio.to_thread(_claim, host)
                if task is None:
                    break
                job = asyncio.ensure_future(run_one(host, task, open_credential, settings))
                running.add(job)
                job.add_done_callback(running.discard)
                job.add_done_callback(lambda _job: woken.notify())
            await woken.wait(armed, settings.sweep_seconds)
    finally:
        unsubscribe()
        for job in running:
            job.cancel()
        for job in list(running):
            with contextlib.suppress(BaseException):
                await job
