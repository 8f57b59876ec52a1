"""The console's shared state and settings, handed to route handlers as a dependency."""

from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from surveyor.console.live import TaskFeed
from surveyor.console.poll_watch import PollWatch
from surveyor.console.principals import PrincipalCache
from surveyor.core.clock import Clock, SystemClock
from surveyor.core.explorer_protocol import LONG_POLL_SECONDS
from surveyor.core.jsonl_limits import DEFAULT_LIMITS, JsonlLimits
from surveyor.security.secretbox import SecretBox
from surveyor.store.bootstrap import BootstrapSettingRefused, FirstStartSettings
from surveyor.store.change_bus import AsyncSignal, ChangeBus
from surveyor.store.engine import Database
from surveyor.store.task_data_store import TaskDataStoreSettingError, check_store_settings

if TYPE_CHECKING:
    from surveyor.service.login import LoginThrottle
    from surveyor.store.explorers import LaunchWork

MAX_BODY_BYTES = 1 << 20
#: Task data uploads from explorers may be far larger than other request bodies.
MAX_UPLOAD_BYTES = 4 << 30
#: A connection must have sent a request's headers this many seconds after it opened (or
#: after the previous response), or it is closed.
HEADER_TIMEOUT_SECONDS = 10


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


def trusted_proxies_from(raw: str) -> tuple[str, ...]:
    """The networks of `SURVEYOR_TRUSTED_PROXIES` (addresses or CIDRs, comma-separated)."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise SystemExit(
                f"SURVEYOR_TRUSTED_PROXIES lists addresses or networks (such as 10.0.0.5 or "
                f"10.0.0.0/24), separated by commas; {item!r} is neither"
            ) from exc
    return tuple(networks)


@dataclass(frozen=True)
class ConsoleSettings:
    data_dir: Path
    database_url: str
    online_window_seconds: int = 60
    max_body_bytes: int = MAX_BODY_BYTES
    # Explorer protocol (SPEC §6): how long a poll for work is held open, how often the
    # console re-checks the database meanwhile, how long a running task may go without a
    # report before it is canceled, how long a stop may go unconfirmed before it is forced,
    # how often those timeouts are checked, the largest task data upload, and how long an
    # upload may send nothing before it is given up (its partial file removed).
    long_poll_seconds: float = LONG_POLL_SECONDS
    poll_recheck_seconds: float = 2.0
    explorer_silence_seconds: float = 60.0
    stop_confirm_seconds: float = 30.0
    explorer_sweep_seconds: float = 1.0
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    upload_idle_seconds: float = 60.0
    #: Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (the
    #: client address decides login rate limits); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # What uploaded and imported task data may be: record size, nesting, expansion.
    task_data_limits: JsonlLimits = DEFAULT_LIMITS
    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS

    @classmethod
    def from_environment(cls, data_dir: Path, database_url: str) -> ConsoleSettings:
        """The settings of `surveyor up` and `surveyor console`; a bad value stops the start
        with a message naming it, weak first-start secrets included (checked at every start,
        so a weak token that once created an admin is noticed)."""
        try:
            FirstStartSettings.from_environment()
        except BootstrapSettingRefused as exc:
            raise SystemExit(str(exc)) from exc
        try:
            check_store_settings()
        except TaskDataStoreSettingError as exc:
            raise SystemExit(f"task data store: {exc}") from exc
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            online_window_seconds=_env_int("SURVEYOR_ONLINE_WINDOW", 60),
            max_body_bytes=_env_int("SURVEYOR_MAX_BODY_BYTES", MAX_BODY_BYTES),
            long_poll_seconds=_env_int("SURVEYOR_LONG_POLL", LONG_POLL_SECONDS),
            explorer_silence_seconds=_env_int("SURVEYOR_EXPLORER_SILENCE_TIMEOUT", 60),
            stop_confirm_seconds=_env_int("SURVEYOR_STOP_TIMEOUT", 30),
            max_upload_bytes=_env_int("SURVEYOR_MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
            upload_idle_seconds=_env_int("SURVEYOR_UPLOAD_IDLE_TIMEOUT", 60),
            trusted_proxies=trusted_proxies_from(os.environ.get("SURVEYOR_TRUSTED_PROXIES", "")),
            task_data_limits=JsonlLimits.from_environment(os.environ),
            header_timeout_seconds=_env_int("SURVEYOR_HEADER_TIMEOUT", HEADER_TIMEOUT_SECONDS),
        )


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    db: Database
    login_limiter: LoginThrottle
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    #: The console's one sense of time: handlers, services, the scheduler, processing
    #: workers and the explorer supervisor take their "now" from it (tests inject a fake).
    clock: Clock = field(default_factory=SystemClock)
    ready: bool = False
    #: The task changes this console's transactions commit (and on PostgreSQL, those of
    #: every other process): explorers' polls, the scheduler, processing workers and the
    #: live event stream subscribe to it.
    changes: ChangeBus = field(default_factory=ChangeBus)
    #: Wakes explorers' held polls: a task change that may let a scan launch, or the
    #: supervisor finding a launchable one.
    explorer_work: AsyncSignal = field(default_factory=AsyncSignal)
    #: The key of credentials' secrets, loaded when the console starts (`secret_box`).
    loaded_secret_box: SecretBox | None = None
    #: The live event stream's poller (`task_feed`, made on first use).
    task_feed: TaskFeed | None = None
    #: Set when the server begins to stop, so that requests held open (explorers' polls)
    #: end before the server's graceful shutdown period runs out.
    stopping: threading.Event = field(default_factory=threading.Event)
    #: The one look for work of every held poll (`poll_watch`, made on first use).
    held_polls: PollWatch | None = None

    def begin_stopping(self) -> None:
        """The console begins to stop: held polls and event streams end (on the event
        loop's thread, where the server is told to stop)."""
        self.stopping.set()
        if self.held_polls is not None:
            self.held_polls.wake_all()

    def poll_watch(self) -> PollWatch:
        """Wakes explorers' held polls that may be handed work (`console/poll_watch.py`)."""
        if self.held_polls is None:
            from surveyor.service import launch

            def look() -> LaunchWork:
                with self.db.read() as conn:
                    return launch.work_to_hand(conn, now=self.clock.now())

            self.held_polls = PollWatch(
                self.explorer_work, look, recheck=self.settings.poll_recheck_seconds
            )
        return self.held_polls

    @property
    def secret_box(self) -> SecretBox:
        """Seals and opens credentials' secrets (`security/secretbox.py`): the key of the
        data directory, `SURVEYOR_SECRET_KEY` or `SURVEYOR_SECRET_KEY_FILE`."""
        if self.loaded_secret_box is None:
            raise RuntimeError("the secret key is loaded when the console starts")
        return self.loaded_secret_box

    @property
    def data_dir(self) -> Path:
        """Where task data is stored (a `ServiceHost` of the background services)."""
        return self.settings.data_dir


async def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


#: A handler's or page's parameter that is the console's state.
State = Annotated[ConsoleState, Depends(console_state)]


def task_feed(state: ConsoleState) -> TaskFeed:
    """This console's feed (created on first use)."""
    if state.task_feed is None:
        state.task_feed = TaskFeed(
            state.db,
            stopping=state.stopping,
            online_window=state.settings.online_window_seconds,
            changes=state.changes,
            clock=state.clock,
        )
    return state.task_feed
