"""The scheduler as a console service: tick, sleep until the next due moment, repeat.

It sleeps until the earliest next occurrence or start time, at most `longest_sleep`, and wakes
early when the change bus tells of a schedule change (`service.scheduling.schedule_changed`:
made in this process, or on PostgreSQL in any other). Blocking database work runs in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from surveyor.scheduler.leader import leadership_for
from surveyor.scheduler.tick import DEFAULT_BATCH_SIZE, Scheduler, TickReport
from surveyor.service.background import (
    BackgroundService,
    ServiceHost,
    finish_in_thread,
    run_passes,
)
from surveyor.service.scheduling import schedule_changed
from surveyor.store.change_bus import ChangeBus

log = logging.getLogger("surveyor.scheduler")

#: The longest the scheduler sleeps between two looks at the database.
LONGEST_SLEEP = 1.0
#: The pause after a failed tick (the database is unreachable, say) before trying again.
RETRY_AFTER_ERROR = 2.0


async def run_scheduler(
    scheduler: Scheduler,
    *,
    longest_sleep: float = LONGEST_SLEEP,
    on_tick: Callable[[TickReport], None] | None = None,
    changes: ChangeBus | None = None,
) -> None:
    """Tick until cancelled. A tick in progress is let finish before cancellation completes.
    Schedule changes on the bus `changes`, and the scheduler's clock jumping (a test's),
    cut a sleep short."""
    await run_passes(
        partial(_tick_once, scheduler, longest_sleep, on_tick),
        clock=scheduler.clock,
        changes=changes,
        wakes=schedule_changed,
    )


async def _tick_once(
    scheduler: Scheduler,
    longest_sleep: float,
    on_tick: Callable[[TickReport], None] | None,
) -> float:
    try:
        report = await finish_in_thread(scheduler.tick)
    except Exception:
        log.exception("a scheduler tick failed; trying again in %s s", RETRY_AFTER_ERROR)
        return RETRY_AFTER_ERROR
    if on_tick is not None:
        on_tick(report)
    return scheduler.seconds_until_next(report, longest=longest_sleep)


def scheduler_service(
    *,
    longest_sleep: float = LONGEST_SLEEP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_tick: Callable[[TickReport], None] | None = None,
) -> BackgroundService[ServiceHost]:
    """The background service running the scheduler on its host's database and clock, woken
    by its host's change bus."""

    async def scheduler(host: ServiceHost) -> None:
        instance = Scheduler(
            host.db,
            clock=host.clock,
            leadership=leadership_for(host.db.engine),
            batch_size=batch_size,
        )
        try:
            await run_scheduler(
                instance, longest_sleep=longest_sleep, on_tick=on_tick, changes=host.changes
            )
        finally:
            instance.close()

    return scheduler
