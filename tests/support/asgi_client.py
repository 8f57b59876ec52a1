"""An in-process HTTP client for the console app: Starlette's `TestClient`, except that a
request reaches the app in one trip to the client's event loop thread.

Starlette's transport makes about nine blocking calls into the loop thread per request
(events, a stream, a cancel scope, the app, each body part, the close), which cost the
in-process API tests more CPU than the app itself: 3.3 to 3.6 ms a request against 1.3 to 1.6
ms here, for the same `GET /api/v1/tasks`. Here the app runs as one task; what it sends comes
back through a thread-safe queue, and the loop is called again only when a client closes a
streamed response early. Everything else (lifespan, cookies, redirects, websockets, a
client used without `with`) is the `TestClient`'s own."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote

import anyio
import httpx2
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient
from starlette.types import Message

#: Put on a request's queue once its app task has ended.
_ENDED: Message = {"type": "surveyor.ended"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InProcessClient(TestClient):
    """`TestClient`, with requests passed to the app in one trip while it is open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = _OneTripTransport(self, self._transport)

    @classmethod
    def beside(cls, running: TestClient, **kwargs: Any) -> InProcessClient:
        """A client of its own (its own cookies and headers, like a second browser) for the
        app that `running` has started, passed to it on `running`'s loop."""
        client = cls(running.app, **kwargs)
        client.portal = running.portal
        client.app_state.update(running.app_state)
        return client


class _OneTripTransport(httpx2.BaseTransport):
    def __init__(self, client: TestClient, fallback: Any) -> None:
        self.client = client
        #: Starlette's transport: its settings, and the requests this one does not take.
        self.fallback = fallback

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        portal = self.client.portal
        if portal is None or request.url.scheme not in {"http", "https"}:
            response: httpx2.Response = self.fallback.handle_request(request)
            return response
        return _Exchange(portal, self.client.app, self._scope(request), request.read()).run(
            request, raise_server_exceptions=self.fallback.raise_server_exceptions
        )

    def _scope(self, request: httpx2.Request) -> dict[str, Any]:
        url = request.url
        return {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": self.fallback.root_path,
            "scheme": url.scheme,
            "query_string": url.query,
            "headers": [
                (key.lower().encode(), value.encode())
                for key, value in request.headers.multi_items()
            ],
            "client": self.fallback.client,
            "server": [url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[url.scheme]],
            "extensions": {},
            "state": self.fallback.app_state.copy(),
        }


class _Exchange:
    """One request: the app runs as a task of the portal's loop; what it sends is read here."""

    def __init__(
        self, portal: BlockingPortal, app: Any, scope: dict[str, Any], body: bytes
    ) -> None:
        self.portal = portal
        self.app = app
        self.scope = scope
        self.body = body
        self.sent: queue.SimpleQueue[Message] = queue.SimpleQueue()
        # Made on the loop by the task itself: set once the response is complete or the
        # client has gone (the app's next `receive` then tells of the disconnect).
        self.finished: anyio.Event | None = None
        self.cancel_scope: anyio.CancelScope | None = None
        self.task: Future[None] | None = None

    async def _run_app(self) -> None:
        self.finished = anyio.Event()
        self.cancel_scope = anyio.CancelScope()
        body_given = False

        async def receive() -> Message:
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            assert self.finished is not None
            await self.finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            self.sent.put(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                assert self.finished is not None
                self.finished.set()

        try:
            with self.cancel_scope:
                await self.app(self.scope, receive, send)
        finally:
            self.sent.put(_ENDED)

    def run(self, request: httpx2.Request, *, raise_server_exceptions: bool) -> httpx2.Response:
        self.task = self.portal.start_task_soon(self._run_app)
        message = self.sent.get()
        while message["type"] not in {"http.response.start", _ENDED["type"]}:
            message = self.sent.get()
        if message is _ENDED:
            failure = self.task.exception()
            if raise_server_exceptions:
                raise failure or AssertionError("TestClient did not receive any response.")
            return httpx2.Response(500, request=request)
        headers = [(key.decode(), value.decode()) for key, value in message.get("headers", [])]
        return httpx2.Response(
            message["status"],
            headers=headers,
            stream=_Body(self, raise_server_exceptions),
            request=request,
        )

    def close_early(self) -> None:
        """The client closed the response before its end: the app is told and stopped."""
        self.portal.call(self._stop)
        assert self.task is not None
        self.task.exception()

    async def _stop(self) -> None:
        assert self.finished is not None
        assert self.cancel_scope is not None
        self.finished.set()
        self.cancel_scope.cancel()


class _Body(httpx2.SyncByteStream):
    def __init__(self, exchange: _Exchange, raise_server_exceptions: bool) -> None:
        self.exchange = exchange
        self.raise_server_exceptions = raise_server_exceptions
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            message = self.exchange.sent.get()
            if message is _ENDED:
                break
            if message["type"] == "http.response.body":
                chunk = bytes(message.get("body", b""))
                if chunk:
                    yield chunk
        self.ended = True
        assert self.exchange.task is not None
        failure = self.exchange.task.exception()
        if failure is not None and self.raise_server_exceptions:
            raise failure

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.exchange.close_early()
