"""The background services a console process runs beside its API, wired to its state.

Each service is an async function taking the console state and working until it is
cancelled (`service/background.py`); the services themselves live in their own packages and
know nothing of the console.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from surveyor.console.state import ConsoleState
from surveyor.core.task import Task
from surveyor.notifications.delivery import notification_service
from surveyor.processing.worker import processing_workers
from surveyor.scheduler.loop import scheduler_service
from surveyor.service.background import BackgroundService
from surveyor.service.console_runner import run_console_runner
from surveyor.service.credentials import open_for_run
from surveyor.service.supervisor import SupervisorSettings, run_supervisor


async def explorer_supervisor(state: ConsoleState) -> None:
    """Timeouts of running scans, wait reasons and grace periods of waiting ones, and a
    wake-up for explorers' held polls when a scan could launch (`service/supervisor.py`)."""
    settings = SupervisorSettings(
        silence_seconds=state.settings.explorer_silence_seconds,
        stop_seconds=state.settings.stop_confirm_seconds,
        online_window_seconds=state.settings.online_window_seconds,
        sweep_seconds=state.settings.explorer_sweep_seconds,
    )
    await run_supervisor(
        state.db, settings, clock=state.clock, on_launchable=state.explorer_work.notify
    )


async def connector_runner(state: ConsoleState) -> None:
    """Connector runs that name no explorer, run by the console itself, each with its
    credential opened for that run (`service/console_runner.py`)."""

    def open_credential(conn: Connection, task: Task, kind: str) -> Mapping[str, str]:
        return open_for_run(
            conn,
            task.organization_id,
            state.secret_box,
            int(task.params["credential_id"]),
            kind=kind,
            site_id=task.site_id,
            now=state.clock.now(),
        )

    await run_console_runner(state, open_credential)


def console_services(*, embedded: bool) -> Sequence[BackgroundService[ConsoleState]]:
    """What `surveyor console` runs; `embedded` adds what only `surveyor up` runs
    (everything in one process on this machine)."""
    services: list[BackgroundService[ConsoleState]] = [scheduler_service()]
    services.append(explorer_supervisor)
    services.append(connector_runner)
    services.append(notification_service())
    # Processing workers run inside every console unless SURVEYOR_WORKERS=0.
    services.append(processing_workers)
    return services
