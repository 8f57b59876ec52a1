"""The explorer supervisor: a background service of every console.

Once a round (every `sweep_seconds`, and at once when its clock jumps: a test's) it
cancels running scans whose explorer fell silent, forces stops that were never confirmed
(`service/explorers.supervise`), refreshes the wait reasons and grace periods of waiting
scans (`service/launch`), and calls `on_launchable` when a scan could launch now, which
wakes explorers' held polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from surveyor.core.clock import Clock
from surveyor.service import explorers as explorer_service
from surveyor.service import launch
from surveyor.store.change_bus import AsyncSignal
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.console.explorers")


@dataclass(frozen=True)
class SupervisorSettings:
    """How long a running scan may go without a report, how long a stop may go unconfirmed,
    how recent a check-in keeps an explorer online, and how often the supervisor looks."""

    silence_seconds: float
    stop_seconds: float
    online_window_seconds: int
    sweep_seconds: float


def supervise_once(
    db: Database, settings: SupervisorSettings, watching_since: datetime, now: datetime
) -> int:
    """One round of the supervisor at `now`; returns how many scans could launch now."""
    timeouts = explorer_service.Timeouts(
        silence_seconds=settings.silence_seconds,
        stop_seconds=settings.stop_seconds,
        watching_since=watching_since,
    )
    with db.read() as conn:
        due = explorer_service.supervision_due(conn, now=now, timeouts=timeouts)
        waiting = launch.waiting_scans_need_update(
            conn, now=now, online_window=settings.online_window_seconds
        )
    if due:
        with db.write() as conn:
            for task in explorer_service.supervise(conn, now=now, timeouts=timeouts):
                log.info("task %s is now %s", task.id, task.status)
    if waiting.needs_write:
        with db.write() as conn:
            return launch.refresh_waiting_scans(
                conn, now=now, online_window=settings.online_window_seconds
            )
    return waiting.launchable


async def run_supervisor(
    db: Database,
    settings: SupervisorSettings,
    *,
    clock: Clock,
    on_launchable: Callable[[], None],
) -> None:
    """Supervise until cancelled, on `clock`: timeouts of running scans, wait reasons and
    grace periods of waiting ones, and `on_launchable` when a scan could launch."""
    watching_since = clock.now()
    jumped = AsyncSignal()
    unsubscribe = clock.on_jump(jumped.notify)
    try:
        while True:
            armed = jumped.arm()
            try:
                launchable = await asyncio.to_thread(
                    supervise_once, db, settings, watching_since, clock.now()
                )
            except Exception:
                log.exception("the explorer supervisor failed; trying again")
                launchable = 0
            if launchable:
                on_launchable()
            await jumped.wait(armed, settings.sweep_seconds)
    finally:
        unsubscribe()
