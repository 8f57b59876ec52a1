"""`GET /api/v1/events`: server-sent events that keep the console's pages live.

A client that accepts `text/event-stream` (every EventSource does) gets a live stream: it
subscribes to the console process's one `TaskFeed` (`console/live.py`) for the caller's
organization, and starts with `retry:` and a `ready` event. Task events carry their id, so
a client that reconnects (after a network blip or a console restart) sends `Last-Event-ID`
and gets what it missed. Live streams end when the console begins to stop (so it stops in
time) and, as a safety net, after `stream_seconds`; browsers reconnect at once. A stream asks
every `recheck_seconds` whether its credential still admits its listener, freshly from the
database: a revoked token or session, a deactivated account or a removed member ends it (a
member whose role changed keeps it while the new role may read).

Any other client gets what it missed and the answer ends: a poll, so that plain HTTP
clients and generated API tests never hang on an endless body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from surveyor.console.auth import bearer_or_cookie, resolve_credential
from surveyor.console.errors import ApiError, ErrorResponse
from surveyor.console.live import (
    FeedItem,
    TaskFeed,
    events_after,
    latest_event_id,
)
from surveyor.console.schemas import MAX_ID
from surveyor.console.state import ConsoleState, State, task_feed
from surveyor.store.accounts import Principal, Role
from surveyor.store.engine import Database

log = logging.getLogger("surveyor.console.events")
router = APIRouter(prefix="/api/v1", tags=["events"])


REPLAY_LIMIT = 500
#: The least role that may listen to an organization's news.
LISTENER_ROLE = Role.VIEWER
#: Whether the listener a stream was opened for may still listen.
StillAllowed = Callable[[], Awaitable[bool]]


def may_listen(principal: Principal | None, organization_id: int) -> bool:
    return (
        principal is not None
        and principal.organization_id == organization_id
        and principal.role.allows(LISTENER_ROLE)
    )


def still_allowed(state: ConsoleState, credential: str, organization_id: int) -> StillAllowed:
    """A fresh look at the credential (never the in-process memory of tokens)."""

    async def check() -> bool:
        try:
            principal = await asyncio.to_thread(resolve_credential, state, credential)
        except Exception:
            log.exception("could not recheck an event stream's listener; ending the stream")
            return False
        return may_listen(principal, organization_id)

    return check


def _replay(db: Database, organization_id: int, after: int, until: int) -> list[FeedItem]:
    with db.read() as conn:
        items = events_after(conn, after, organization_id=organization_id, limit=REPLAY_LIMIT)
    return [item for item in items if item.id is not None and item.id <= until]


def _missed(db: Database, organization_id: int, after: int | None) -> list[FeedItem]:
    """`ready` with the newest event id, then the events after `after`."""
    with db.read() as conn:
        latest = latest_event_id(conn)
        items = (
            events_after(conn, after, organization_id=organization_id, limit=REPLAY_LIMIT)
            if after is not None
            else []
        )
    ready = FeedItem("ready", organization_id, {"after": latest})
    return [ready, *(item for item in items if item.id is not None and item.id <= latest)]


async def _poll(db: Database, organization_id: int, after: int | None) -> AsyncIterator[str]:
    for item in await asyncio.to_thread(_missed, db, organization_id, after):
        yield item.encode()


#: How often a waiting stream looks whether the console is stopping.
STOP_CHECK_SECONDS = 0.5


async def _stream(
    feed: TaskFeed, organization_id: int, after: int | None, allowed: StillAllowed
) -> AsyncIterator[str]:
    queue, cursor = await feed.subscribe(organization_id)
    try:
        yield f"retry: {feed.retry_ms}\n\n"
        sent = cursor if after is None else after
        yield FeedItem("ready", organization_id, {"after": cursor}).encode()
        if after is not None and after < cursor:
            missed = await asyncio.to_thread(_replay, feed.db, organization_id, after, cursor)
            for old in missed:
                yield old.encode()
                sent = max(sent, old.id or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + feed.stream_seconds
        beat = loop.time() + feed.heartbeat_seconds
        recheck = loop.time() + feed.recheck_seconds
        while (remaining := deadline - loop.time()) > 0:
            if feed.stopping.is_set():
                # Also checked here, not only by the feed's poller: a stream must never hold
                # a stopping console up, whatever the poller is doing.
                return
            if loop.time() >= recheck:
                if not await allowed():
                    return
                recheck = loop.time() + feed.recheck_seconds
            try:
                async with asyncio.timeout(min(STOP_CHECK_SECONDS, remaining)):
                    item = await queue.get()
            except TimeoutError:
                if loop.time() >= beat:
                    beat = loop.time() + feed.heartbeat_seconds
                    yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            if item.id is not None:
                if item.id <= sent:
                    continue
                sent = item.id
            yield item.encode()
    finally:
        feed.unsubscribe(organization_id, queue)


def _event_id(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    value = int(raw.strip())
    return value if value <= MAX_ID else None


@router.get(
    "/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a stream of task news"},
        401: {"model": ErrorResponse},
    },
)
async def events(
    request: Request,
    state: State,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="send the task events after this id")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events for the caller's organization: `task` (a transition, edit or
    spawn, with the task's status and progress now), `progress` (a running task's progress
    moved) and `ready` (the stream is open). Authenticated by a bearer token or the web
    console's session cookie. Send `Accept: text/event-stream` for a live stream; without
    it the answer holds the events after `after` (or `Last-Event-ID`) and ends."""
    credential = bearer_or_cookie(request)
    principal = (
        await asyncio.to_thread(resolve_credential, state, credential) if credential else None
    )
    if credential is None or principal is None:
        raise ApiError(401, "unauthenticated", "this needs an API token or a console session")
    if state.stopping.is_set():
        raise ApiError(503, "stopping", "the console is stopping; try again in a moment")
    resume = _event_id(last_event_id)
    start = resume if resume is not None else after
    live = "text/event-stream" in request.headers.get("accept", "")
    stream = (
        _stream(
            task_feed(state),
            principal.organization_id,
            start,
            still_allowed(state, credential, principal.organization_id),
        )
        if live
        else _poll(state.db, principal.organization_id, start)
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
