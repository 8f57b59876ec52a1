"""The console's ASGI application: API routes, error format, body limits, start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surveyor import __version__, connectors
from surveyor.console import observe, web
from surveyor.console.errors import BodyTooLarge, error_response, install_error_handlers
from surveyor.console.routes import (
    accounts,
    assets,
    audit,
    credentials,
    enrollment,
    events,
    explorer_api,
    exports,
    imports,
    notifications,
    queries,
    reports,
    resources,
    tasks,
)
from surveyor.console.routes import settings as settings_routes
from surveyor.console.routing import add_routes
from surveyor.console.schemas import Health
from surveyor.console.state import ConsoleSettings, ConsoleState
from surveyor.console.web import imports as import_page
from surveyor.core.clock import Clock, SystemClock
from surveyor.security.secretbox import SecretKeyError, load_secret_box
from surveyor.service import launch
from surveyor.service.background import BackgroundService
from surveyor.service.credentials import key_ids_in_use
from surveyor.service.login import LoginThrottle
from surveyor.service.retention import ensure_retention_tasks
from surveyor.store.bootstrap import Bootstrap, bootstrap_if_empty
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from surveyor.store.start_lock import one_start_at_a_time
from surveyor.store.taskdata import remove_abandoned_temp_files

log = logging.getLogger("surveyor.console")


class BodyLimit:
    """Refuse request bodies over the limit with 413: at once when the declared length is
    over it, else as soon as more than the limit has arrived (`BodyTooLarge`, which the
    error handlers answer)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: Path prefixes allowed larger bodies (explorers' task data uploads).
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next(
            (size for prefix, size in self.larger.items() if scope["path"].startswith(prefix)),
            self.max_bytes,
        )
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        refusal = BodyTooLarge(limit)
        response = error_response(refusal.status_code, "too_large", refusal.detail)
        await response(scope, receive, send)


def _warn_of_other_keys(db: Database, key_id: str) -> None:
    """Say at start when credentials were sealed with a key this console does not hold
    (their verify and connector tasks will say so too)."""
    with db.read() as conn:
        others = {k: n for k, n in key_ids_in_use(conn).items() if k != key_id}
    for other, count in sorted(others.items()):
        log.warning(
            "%d credential secret(s) were encrypted with key %s; this console has key %s: "
            "set SURVEYOR_SECRET_KEY or SURVEYOR_SECRET_KEY_FILE to the consoles' shared key",
            count,
            other,
            key_id,
        )


OnBootstrap = Callable[[Bootstrap], None]


def prepare_database(db: Database, data_dir: Path, *, now: datetime) -> Bootstrap | None:
    """What a console does to its database as it starts, one console at a time: bring the
    schema up to date, create the first organization and admin on an empty database (what
    was created, or None), and give every organization its daily Retention task."""
    with one_start_at_a_time(db.engine):
        upgrade(db.engine)
        created = bootstrap_if_empty(db, data_dir, now=now)
        ensure_retention_tasks(db, now=now)
    return created


def create_app(
    settings: ConsoleSettings,
    *,
    database: Database | None = None,
    on_bootstrap: OnBootstrap | None = None,
    background: Sequence[BackgroundService[ConsoleState]] = (),
    clock: Clock | None = None,
) -> FastAPI:
    """Build the console. The database is migrated and bootstrapped when the app starts;
    the background services start after that and are cancelled when the app stops. Every
    "now" of the console is read from `clock` (the machine's by default)."""
    db = database or Database(make_engine(settings.database_url))
    connectors.load()
    state = ConsoleState(
        settings=settings, db=db, login_limiter=LoginThrottle(), clock=clock or SystemClock()
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for path in remove_abandoned_temp_files(settings.data_dir):
            log.warning("removed %s, left behind by a process that was killed", path)
        try:
            state.loaded_secret_box = load_secret_box(settings.data_dir)
        except SecretKeyError as exc:
            raise SystemExit(f"credentials' secret key: {exc}") from exc
        created = prepare_database(db, settings.data_dir, now=state.clock.now())
        if created is not None and on_bootstrap is not None:
            on_bootstrap(created)
        _warn_of_other_keys(db, state.secret_box.key_id)
        await asyncio.to_thread(state.changes.open, db)
        wake_polls = state.changes.subscribe(
            lambda _changes: state.explorer_work.notify(), where=launch.may_let_a_scan_launch
        )
        tasks = [
            asyncio.create_task(service(state), name=getattr(service, "__name__", "service"))
            for service in background
        ]
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            wake_polls()
            await asyncio.to_thread(state.changes.close)

    app = FastAPI(
        title="Surveyor",
        version=__version__,
        description="Network asset discovery console: tasks, explorers, sites and inventory.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = state
    install_error_handlers(app)

    # A request goes through the routes in this order until one matches, and each route
    # looked at costs a little: first what is asked most often (health checks, and the
    # explorers' polls and reports, a fleet's steady load).
    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Any:
        """200 once the console is ready (migrated, bootstrapped); 503 before."""
        if not state.ready:
            return error_response(503, "starting", "the console is starting")
        return {"status": "ok", "version": __version__}

    add_routes(
        app,
        explorer_api.router,
        tasks.router,
        resources.router,
        accounts.router,
        enrollment.router,
        exports.router,  # before assets: /assets/export is no asset id
        assets.router,
        imports.router,
        events.router,
        audit.router,
        credentials.router,
        settings_routes.router,
        notifications.router,
        reports.router,
        queries.router,
    )
    web.install(app)

    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger={
            explorer_api.UPLOAD_PATH_PREFIX: settings.max_upload_bytes,
            imports.IMPORT_PATH: settings.max_upload_bytes,
            import_page.UPLOAD_PATH: settings.max_upload_bytes,
        },
    )
    # Outermost: every answer (a refused body too) carries its request id and is timed.
    observe.install(app, state, upload_prefix=explorer_api.UPLOAD_PATH_PREFIX)
    return app
