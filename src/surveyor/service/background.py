"""What a background service is, and what the process running it hands it.

A background service (the scheduler, the processing workers, the explorer supervisor) is an
async function that works until it is cancelled; blocking database work runs in a thread
(`asyncio.to_thread`). It is given its process's shared state: the scheduler and the
processing workers need only a `ServiceHost` (the console's state is one), so neither
imports the console.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from surveyor.core.clock import Clock
from surveyor.store.change_bus import ChangeBus
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
