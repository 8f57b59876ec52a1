"""What a background service is, and what the process running it hands it.

A background service (the scheduler, the processing workers, the explorer supervisor) is an
async function that works until it is cancelled; blocking database work runs in a thread
(`asyncio.to_thread`). It is given its process's shared state: the scheduler and the
processing workers need only a `ServiceHost` (the console's state is one), so neither
imports the console.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from surveyor.core.clock import Clock
from surveyor.store.change_bus import AsyncSignal, ChangeBus, Interest
from surveyor.store.engine import Database


class ServiceHost(Protocol):
    """The database, the change bus, the data directory and the clock of the process."""

    @property
    def db(self) -> Database: ...

    @property
    def changes(self) -> ChangeBus: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...


Host = TypeVar("Host")
#: A service run beside the API (or alone), given the process's state of type `Host`.
BackgroundService = Callable[[Host], Coroutine[Any, Any, None]]

_T = TypeVar("_T")


async def finish_in_thread(work: Callable[[], _T]) -> _T:
    """What `work` returns, run in a thread. Cancelled meanwhile, it lets `work` finish
    first (a pass never stops between its transactions), then the cancellation goes on."""
    running = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await running
        raise


async def run_passes(
    one_pass: Callable[[], Awaitable[float]],
    *,
    clock: Clock,
    changes: ChangeBus | None,
    wakes: Interest,
) -> None:
    """Pass after pass until cancelled, each pass saying how many seconds to sleep before
    the next; the clock jumping (a test's) and a change on the bus `changes` that `wakes`
    cut a sleep short."""
    wake = AsyncSignal()
    unsubscribes = [clock.on_jump(wake.notify)]
    if changes is not None:
        unsubscribes.append(changes.subscribe(lambda _changes: wake.notify(), where=wakes))
    try:
        while True:
            armed = wake.arm()
            delay = await one_pass()
            if delay > 0:
                await wake.wait(armed, delay)
    finally:
        for unsubscribe in unsubscribes:
            unsubscribe()
