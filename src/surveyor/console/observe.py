"""What an operator watches: a request id per request (logged, and sent back in
`X-Request-Id`), the access log, request latency by route template, and `GET /metrics`."""

from __future__ import annotations

import contextvars
import logging
import os
import random
import re
import time

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surveyor.console.auth import require
from surveyor.console.state import ConsoleState
from surveyor.service.metrics import StoreCollector
from surveyor.store.accounts import Role

access_log = logging.getLogger("surveyor.access")

#: The current request's id, for every log line written while it is handled.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

#: An incoming id is kept when it is this sane; anything else is replaced by a fresh one.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (`record.request_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class Observatory:
    """The metrics one console keeps in memory, in a registry of its own."""

    def __init__(self, state: ConsoleState) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "surveyor_http_request_duration_seconds",
            "Request latency by method, route template and status class.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "surveyor_upload_bytes",
            "Bytes of task data explorers uploaded.",
            registry=self.registry,
        )
        self.registry.register(
            StoreCollector(
                state.db, state.clock, online_window=state.settings.online_window_seconds
            )
        )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class Observe:
    """ASGI middleware: request id, access log line, latency histogram. Cheap: no body is
    read, one histogram observation and (when on) one log line per request."""

    def __init__(
        self, app: ASGIApp, observatory: Observatory, *, upload_prefix: str, access: bool
    ) -> None:
        self.app = app
        self.observatory = observatory
        self.upload_prefix = upload_prefix
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = incoming.decode("latin-1")
        if not _SANE_ID.fullmatch(rid):
            rid = f"{random.getrandbits(64):016x}"  # a label, not a secret
        token = request_id.set(rid)
        header = (b"x-request-id", rid.encode("ascii"))
        status = 500
        started = time.perf_counter()
        uploaded = 0
        upload = scope["path"].startswith(self.upload_prefix)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        async def counting_receive() -> Message:
            nonlocal uploaded
            message = await receive()
            if message["type"] == "http.request":
                uploaded += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counting_receive if upload else receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.observatory.latency.labels(scope["method"], route, f"{status // 100}xx").observe(
                elapsed
            )
            if upload and uploaded:
                self.observatory.upload_bytes.inc(uploaded)
            if self.access:
                # The path only: never the query string (it may carry a secret) or headers.
                access_log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)


def metrics_are_public() -> bool:
    return os.environ.get("SURVEYOR_METRICS_PUBLIC", "") == "1"


def access_log_on() -> bool:
    return os.environ.get("SURVEYOR_ACCESS_LOG", "1") != "0"


def install(app: FastAPI, state: ConsoleState, *, upload_prefix: str) -> None:
    """Register the middleware and the `/metrics` route on the console."""
    observatory = Observatory(state)
    app.state.observatory = observatory
    public = metrics_are_public()
    guard = [] if public else [Depends(require(Role.ADMIN))]

    @app.get("/metrics", dependencies=guard, include_in_schema=False, tags=["operations"])
    def metrics() -> Response:
        """Prometheus text format; an admin's token unless SURVEYOR_METRICS_PUBLIC=1."""
        return Response(generate_latest(observatory.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        Observe, observatory=observatory, upload_prefix=upload_prefix, access=access_log_on()
    )
