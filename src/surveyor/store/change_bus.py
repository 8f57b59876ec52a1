"""The change bus: the task changes each transaction committed, told to whoever waits on them.

A process has one bus (the console's is `ConsoleState.changes`; `surveyor worker` makes its
own). `ChangeBus.open(db)` registers it with the process's `Database`: every write
transaction's `TaskChange`s (noted by the store, `store/changes.py`) are published once,
after the commit succeeded, never for a rollback. Subscribers choose the changes they want
(`subscribe(listener, where=…)`); a listener runs in the thread that committed (or in the
relay's thread), so it only sets a wake-up and returns.

On PostgreSQL the bus also crosses processes: inside each committing transaction it sends
`NOTIFY surveyor_changes` with a small payload (delivered by PostgreSQL only if that
transaction commits), and a listener thread (`PostgresRelay`) publishes what the other
processes' buses sent. Bursts are coalesced on both sides: one NOTIFY per transaction, its
changes without task ids when there are many, and every notification that has arrived is
published as one batch. The listener reconnects when its connection drops; what was
committed meanwhile is found by the subscribers' own periodic re-checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, func
from sqlalchemy import select as sql_select

from surveyor.store.changes import ChangeKind, Registrations, TaskChange
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.changes")

#: The PostgreSQL channel the buses of all processes talk on.
CHANNEL = "surveyor_changes"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7900
#: A transaction with more changes than this sends them coalesced (without task ids).
MAX_CHANGES_BY_TASK = 40

Listener = Callable[[Sequence[TaskChange]], None]
Interest = Callable[[TaskChange], bool]
Unsubscribe = Callable[[], None]


def everything(_change: TaskChange) -> bool:
    return True


@dataclass(frozen=True)
class _Subscription:
    listener: Listener
    where: Interest


class ChangeBus:
    """Publishes committed task changes to the subscribers whose interest they match."""

    def __init__(self) -> None:
        #: Tells this bus's own NOTIFYs apart from other processes'.
        self.origin = secrets.token_hex(6)
        self._subscriptions: Registrations[_Subscription] = Registrations()
        self._closers: list[Callable[[], None]] = []
        self.relay: PostgresRelay | None = None

    def subscribe(self, listener: Listener, *, where: Interest = everything) -> Unsubscribe:
        """Call `listener` with the matching changes of every published batch that has any,
        until the returned function is called."""
        return self._subscriptions.add(_Subscription(listener, where))

    def publish(self, changes: Sequence[TaskChange]) -> None:
        """Tell the subscribers about `changes` (committed ones)."""
        for subscription in self._subscriptions.snapshot():
            matching = [change for change in changes if subscription.where(change)]
            if not matching:
                continue
            try:
                subscription.listener(matching)
            except Exception:
                log.exception("a change bus subscriber failed")

    # The Database's publisher (store.engine.ChangePublisher)

    def committing(self, conn: Connection, changes: Sequence[TaskChange]) -> None:
        if self.relay is not None:
            self.relay.send(conn, changes)

    def committed(self, changes: Sequence[TaskChange]) -> None:
        self.publish(changes)

    def open(self, db: Database) -> None:
        """Publish `db`'s committed changes; on PostgreSQL also relay them to and from the
        buses of other processes (the listener is listening when this returns, unless the
        database could not be reached: then it keeps trying in the background)."""
        if db.dialect == "postgresql":
            self.relay = PostgresRelay(self, db.engine)
            self.relay.start()
            self._closers.append(self.relay.stop)
        self._closers.append(db.publish_changes_to(self))

    def close(self) -> None:
        """Stop publishing and relaying (what `open` started)."""
        while self._closers:
            self._closers.pop()()
        self.relay = None


# Payloads: {"from": origin, "changes": [[kind, org, task, status, type, previous,
# template, wait_reason, explorer, [fields]], …]}.


def _row(change: TaskChange) -> list[Any]:
    return [
        change.kind.value,
        change.organization_id,
        change.task_id,
        change.status,
        change.task_type,
        change.previous_status,
        int(change.template),
        change.wait_reason,
        change.explorer_id,
        sorted(change.fields),
    ]


def _from_row(row: Sequence[Any]) -> TaskChange:
    kind, org, task, status, task_type, previous, template, waiting, explorer, fields = row
    return TaskChange(
        kind=ChangeKind(kind),
        organization_id=int(org),
        task_id=None if task is None else int(task),
        task_type=str(task_type),
        status=str(status),
        previous_status=previous,
        explorer_id=explorer,
        template=bool(template),
        wait_reason=waiting,
        fields=frozenset(fields),
    )


def _coalesced(changes: Sequence[TaskChange]) -> list[TaskChange]:
    """The changes without their tasks: one per kind of change, its fields merged."""
    merged: dict[TaskChange, set[str]] = {}
    for change in changes:
        key = replace(change, task_id=None, explorer_id=None, fields=frozenset())
        merged.setdefault(key, set()).update(change.fields)
    return [replace(key, fields=frozenset(fields)) for key, fields in merged.items()]


def encode_payloads(origin: str, changes: Sequence[TaskChange]) -> list[str]:
    """The NOTIFY payloads for one transaction's `changes`: usually one, each under the
    size PostgreSQL accepts; progress-only edits are left out (nobody waits for them)."""
    wanted = list(dict.fromkeys(change for change in changes if not change.progress_only))
    if len(wanted) > MAX_CHANGES_BY_TASK:
        wanted = _coalesced(wanted)
    payloads: list[str] = []
    rows: list[list[Any]] = []
    size = 0
    for change in wanted:
        row = _row(change)
        encoded = len(json.dumps(row, separators=(",", ":"))) + 1
        if rows and size + encoded > MAX_PAYLOAD_BYTES - 40:
            payloads.append(_payload(origin, rows))
            rows, size = [], 0
        rows.append(row)
        size += encoded
    if rows:
        payloads.append(_payload(origin, rows))
    return payloads


def _payload(origin: str, rows: list[list[Any]]) -> str:
    return json.dumps({"from": origin, "changes": rows}, separators=(",", ":"))


def decode_payload(payload: str) -> tuple[str, list[TaskChange]]:
    """The origin and the changes of a NOTIFY payload; ValueError if it is not one."""
    try:
        message = json.loads(payload)
        return str(message["from"]), [_from_row(row) for row in message["changes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a change bus payload: {payload[:100]!r}") from exc


class PostgresRelay:
    """Carries a bus's changes to the other processes on the same PostgreSQL, and theirs
    to it: NOTIFY inside committing transactions, LISTEN on a connection of its own."""

    #: How often a quiet listener makes sure its connection still works.
    CHECK_SECONDS = 30.0
    #: Reconnection delays: from the first, doubling up to the last.
    RETRY_SECONDS = (0.1, 5.0)

    def __init__(self, bus: ChangeBus, engine: Engine) -> None:
        self.bus = bus
        self.url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        #: How many times the listener has connected and listened (tests wait on it).
        self.connections = 0
        self.backend_pid: int | None = None
        self._connected = threading.Condition()
        self._stop = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="change-bus-listener", daemon=True)
        self._connection: Any = None

    def send(self, conn: Connection, changes: Sequence[TaskChange]) -> None:
        """NOTIFY the other processes of `changes` when `conn`'s transaction commits."""
        for payload in encode_payloads(self.bus.origin, changes):
            conn.execute(sql_select(func.pg_notify(CHANNEL, payload)))

    def start(self) -> None:
        try:
            self._connect()
        except Exception:
            log.warning("cannot listen for changes of other processes yet; retrying", exc_info=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        self._thread.join(timeout=10)
        self._close_connection()
        self._wake_reader.close()
        self._wake_writer.close()

    def wait_connected(self, count: int, timeout: float) -> bool:
        """Wait until the listener has connected `count` times in all (for tests)."""
        with self._connected:
            return self._connected.wait_for(lambda: self.connections >= count, timeout)

    def _connect(self) -> None:
        import psycopg

        connection = psycopg.connect(
            self.url,
            autocommit=True,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        try:
            connection.execute(f"LISTEN {CHANNEL}")
            pid = connection.info.backend_pid
        except Exception:
            connection.close()
            raise
        with self._connected:
            self._connection = connection
            self.backend_pid = pid
            self.connections += 1
            self._connected.notify_all()

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a connection that already failed
                connection.close()

    def _run(self) -> None:
        delay = self.RETRY_SECONDS[0]
        while not self._stop.is_set():
            if self._connection is None:
                try:
                    self._connect()
                except Exception:
                    log.debug("cannot listen for changes yet", exc_info=True)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.RETRY_SECONDS[1])
                    continue
                log.info("listening for changes of other processes again")
            delay = self.RETRY_SECONDS[0]
            try:
                self._listen()
            except Exception:
                if self._stop.is_set():
                    return
                log.warning(
                    "lost the connection that listens for changes of other processes; reconnecting",
                    exc_info=True,
                )
                self._close_connection()

    def _listen(self) -> None:
        """Publish what arrives until stopped; raises when the connection fails."""
        connection = self._connection
        while not self._stop.is_set():
            # What has arrived, also while another statement ran (psycopg keeps it).
            self._publish(connection.notifies(timeout=0))
            readable, _, _ = select.select(
                [connection.fileno(), self._wake_reader], [], [], self.CHECK_SECONDS
            )
            if not readable:
                connection.execute("SELECT 1")

    def _publish(self, notifies: Iterable[Any]) -> None:
        changes: list[TaskChange] = []
        for notify in notifies:
            try:
                origin, found = decode_payload(notify.payload)
            except ValueError:
                log.warning("ignored a malformed change notification", exc_info=True)
                continue
            if origin != self.bus.origin:
                changes.extend(found)
        if changes:
            self.bus.publish(changes)


class AsyncSignal:
    """Wakes the coroutines waiting on it; `notify` may be called from any thread.

    A waiter arms the signal before it looks at the database, then waits on what it armed:
    a change committed while it looked wakes it at once instead of being missed.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._parked = 0
        self._parked_changed = threading.Condition()

    def arm(self) -> asyncio.Event:
        """What to wait on for the next `notify` (in the running event loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._event is None:
            self._loop, self._event = loop, asyncio.Event()
        return self._event

    def notify(self) -> None:
        loop = self._loop
        if loop is None:
            return  # nobody has armed it: whoever does looks at the database afterwards
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop and self._event is not None:
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def wait(self, armed: asyncio.Event, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True when notified since `armed` was armed."""
        if armed.is_set():
            return True
        self._count_parked(+1)
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await armed.wait()
        except TimeoutError:
            return False
        finally:
            self._count_parked(-1)
        return True

    @contextlib.contextmanager
    def parked(self) -> Iterator[None]:
        """Count the caller as waiting for as long as it stays in the block (`wait_parked`),
        for waiters that wait on something of their own."""
        self._count_parked(+1)
        try:
            yield
        finally:
            self._count_parked(-1)

    def _count_parked(self, delta: int) -> None:
        with self._parked_changed:
            self._parked += delta
            self._parked_changed.notify_all()

    def wait_parked(self, count: int, timeout: float) -> bool:
        """Wait until `count` coroutines are waiting (for tests, from another thread)."""
        with self._parked_changed:
            return self._parked_changed.wait_for(lambda: self._parked >= count, timeout)
