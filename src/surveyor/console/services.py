"""The background services a console process runs beside its API.

Each service is an async function taking the console state and working until it is
cancelled; blocking database work runs in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

from collections.abc import Sequence

from surveyor.console.app import BackgroundService


def console_services(*, embedded: bool) -> Sequence[BackgroundService]:
    """What `surveyor console` runs; `embedded` adds what only `surveyor up` runs
    (everything in one process on this machine)."""
    from surveyor.console.routes.explorer_api import explorer_supervisor
    from surveyor.processing.worker import processing_workers
    from surveyor.scheduler.loop import scheduler_service

    services: list[BackgroundService] = [scheduler_service()]
    services.append(explorer_supervisor)
    # Processing workers run inside every console unless SURVEYOR_WORKERS=0.
    services.append(processing_workers)
    return services
