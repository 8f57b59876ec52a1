"""Live news for the console's pages: one poller per console process.

`TaskFeed` polls the database once a second while anyone listens, and at once when the
change bus tells of a task change other than progress: new task events (every transition,
edit and spawn is one, with a growing id), the progress of running tasks, and the state of
the explorers (online or not, and what each runs). It fans them out to the subscribed
streams of each organization, so the cost of a poll does not grow with the number of open
pages. `GET /api/v1/events` (`console/routes/events.py`) turns a subscription into
server-sent events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.console.presenters import ring_values
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.tasks import TaskStatus
from surveyor.service.explorers import current_tasks_of
from surveyor.service.launch import is_online
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store
from surveyor.store.change_bus import AsyncSignal, ChangeBus
from surveyor.store.changes import TaskChange
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.console.live")

#: Statuses whose progress moves while nothing else about the task changes.
MOVING = frozenset({TaskStatus.ACTIVE, TaskStatus.CONNECTING, TaskStatus.PROCESSING})
#: Events are re-read this far behind the newest one seen, so a transaction that commits
#: after a later one (possible on PostgreSQL) is still delivered, once.
LOOKBACK_IDS = 200


def is_news(change: TaskChange) -> bool:
    """Whether pages should hear of `change` at once; progress waits for the next poll."""
    return not change.progress_only


@dataclass(frozen=True)
class FeedItem:
    """One message for the streams of an organization."""

    event: str
    organization_id: int
    data: Mapping[str, Any]
    id: int | None = None

    def encode(self) -> str:
        lines = [] if self.id is None else [f"id: {self.id}"]
        lines += [f"event: {self.event}", f"data: {json.dumps(self.data, default=str)}"]
        return "\n".join(lines) + "\n\n"


def _task_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    status = TaskStatus(row["status"])
    collect, process = ring_values(status, row["progress_collect"], row["progress_process"])
    return {
        "status": status.value,
        "status_label": status.label,
        "collect": collect,
        "process": process,
    }


def _event_item(row: Mapping[str, Any]) -> FeedItem:
    return FeedItem(
        "task",
        row["organization_id"],
        {
            "event_id": row["id"],
            "task_id": row["task_id"],
            "kind": row["kind"],
            "from_status": row["from_status"],
            "to_status": row["to_status"],
            "to_status_label": TaskStatus(row["to_status"]).label if row["to_status"] else None,
            "tab": row["tab"],
            "hidden": bool(row["hidden"]),
            "at": row["at"].isoformat(),
            "actor": row["actor"],
            "message": row["message"],
            **_task_fields(row),
        },
        id=row["id"],
    )


def latest_event_id(conn: Connection) -> int:
    return task_store.latest_event_id(conn)


def events_after(
    conn: Connection, after: int, *, organization_id: int | None = None, limit: int = 1000
) -> list[FeedItem]:
    rows = task_store.events_with_tasks(conn, after, organization_id=organization_id, limit=limit)
    return [_event_item(row) for row in rows]


def moving_tasks(conn: Connection, organization_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Running tasks of these organizations, with their progress."""
    return task_store.progress_of_tasks_in(conn, MOVING, organization_ids)


#: What the Explorers page shows of one explorer that can change by itself: id, online,
#: current task (or None).
ExplorerState = tuple[int, bool, int | None]


def explorer_states(
    conn: Connection, organization_ids: Iterable[int], *, now: datetime, window: float
) -> dict[int, tuple[ExplorerState, ...]]:
    """Each organization's explorers, whether online and what each runs, in two queries."""
    wanted = list(organization_ids)
    running = current_tasks_of(conn, wanted)
    states: dict[int, list[ExplorerState]] = {org: [] for org in wanted}
    for (
        explorer_id,
        organization_id,
        last_checkin_at,
        poll_dropped_at,
    ) in explorer_store.checkins_of(conn, wanted):
        online = is_online(last_checkin_at, now=now, window=window, poll_dropped_at=poll_dropped_at)
        states[organization_id].append((explorer_id, online, running.get(explorer_id)))
    return {org: tuple(found) for org, found in states.items()}


def _explorers_item(organization_id: int, states: tuple[ExplorerState, ...]) -> FeedItem:
    return FeedItem(
        "explorers",
        organization_id,
        {
            "explorers": [
                {"id": explorer_id, "online": online, "current_task_id": current}
                for explorer_id, online, current in states
            ]
        },
    )


@dataclass
class _Poll:
    items: list[FeedItem] = field(default_factory=list)


class TaskFeed:
    """The console process's one poller, fanning task news out to subscribed streams."""

    def __init__(
        self,
        db: Database,
        *,
        stopping: threading.Event | None = None,
        poll_seconds: float = 1.0,
        stream_seconds: float = 120.0,
        heartbeat_seconds: float = 15.0,
        recheck_seconds: float = 2.0,
        retry_ms: int = 1500,
        max_backlog: int = 5000,
        online_window: float = 60.0,
        changes: ChangeBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.clock = clock
        self.changes = changes
        #: Wakes the poller when the bus tells of news (tests wait for it to wait).
        self.news = AsyncSignal()
        self.online_window = online_window
        self.stopping = stopping or threading.Event()
        self.poll_seconds = poll_seconds
        self.stream_seconds = stream_seconds
        self.heartbeat_seconds = heartbeat_seconds
        #: How often a stream asks again whether its listener may still listen (a revoked
        #: token, a removed or deactivated member): at most 5 s, the promise of the API.
        self.recheck_seconds = recheck_seconds
        self.retry_ms = retry_ms
        self.max_backlog = max_backlog
        self._subscribers: dict[int, set[asyncio.Queue[FeedItem | None]]] = {}
        self._cursor = 0
        #: Events up to here happened before anyone listened (the lookback re-reads them).
        self._floor = 0
        self._seen: deque[int] = deque(maxlen=4 * LOOKBACK_IDS)
        #: What the streams last heard of each running task; None until the first poll,
        #: which only takes note (the pages were rendered with those values).
        self._progress: dict[int, tuple[str, float, float]] | None = None
        #: What the streams last heard of each organization's explorers (first poll: note).
        self._explorers: dict[int, tuple[ExplorerState, ...]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def subscribe(self, organization_id: int) -> tuple[asyncio.Queue[FeedItem | None], int]:
        """A queue of this organization's news from now on, and the event id 'now' is."""
        if self._runner is None or self._runner.done():
            self._cursor = self._floor = await asyncio.to_thread(self._latest)
            self._seen.clear()
            self._progress = None
            self._explorers = {}
        queue: asyncio.Queue[FeedItem | None] = asyncio.Queue()
        self._subscribers.setdefault(organization_id, set()).add(queue)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="task-feed")
        return queue, self._cursor

    def unsubscribe(self, organization_id: int, queue: asyncio.Queue[FeedItem | None]) -> None:
        listeners = self._subscribers.get(organization_id)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del self._subscribers[organization_id]

    def _latest(self) -> int:
        with self.db.read() as conn:
            return latest_event_id(conn)

    async def _run(self) -> None:
        unsubscribe = (
            self.changes.subscribe(lambda _changes: self.news.notify(), where=is_news)
            if self.changes is not None
            else None
        )
        try:
            while self._subscribers:
                if self.stopping.is_set():
                    self._end_all()
                    return
                armed = self.news.arm()
                try:
                    poll = await asyncio.to_thread(self._poll, set(self._subscribers))
                except Exception:
                    log.exception("the live event feed could not read the database; retrying")
                    poll = _Poll()
                for item in poll.items:
                    self._publish(item)
                await self.news.wait(armed, self.poll_seconds)
        finally:
            if unsubscribe is not None:
                unsubscribe()

    def _end_all(self) -> None:
        for organization_id, listeners in list(self._subscribers.items()):
            for queue in list(listeners):
                self.unsubscribe(organization_id, queue)
                queue.put_nowait(None)

    def _publish(self, item: FeedItem) -> None:
        for queue in list(self._subscribers.get(item.organization_id, ())):
            if queue.qsize() >= self.max_backlog:
                # A stream that cannot keep up is ended; its browser reconnects and catches up.
                self.unsubscribe(item.organization_id, queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(item)

    def _poll(self, organization_ids: set[int]) -> _Poll:
        poll = _Poll()
        with self.db.read() as conn:
            fresh = [
                item
                for item in events_after(conn, max(0, self._cursor - LOOKBACK_IDS))
                if item.id is not None and item.id > self._floor and item.id not in self._seen
            ]
            running = moving_tasks(conn, organization_ids) if organization_ids else []
            fleet = (
                explorer_states(
                    conn, organization_ids, now=self.clock.now(), window=self.online_window
                )
                if organization_ids
                else {}
            )
        for item in fresh:
            assert item.id is not None
            self._seen.append(item.id)
            self._cursor = max(self._cursor, item.id)
            poll.items.append(item)
        current: dict[int, tuple[str, float, float]] = {}
        for row in running:
            fields = _task_fields(row)
            current[row["id"]] = (fields["status"], fields["collect"], fields["process"])
            if self._progress is not None and self._progress.get(row["id"]) != current[row["id"]]:
                poll.items.append(
                    FeedItem("progress", row["organization_id"], {"task_id": row["id"], **fields})
                )
        self._progress = current
        for organization_id, states in fleet.items():
            heard = self._explorers.get(organization_id)
            if heard is not None and heard != states:
                poll.items.append(_explorers_item(organization_id, states))
        self._explorers = fleet
        return poll
