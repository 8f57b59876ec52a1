"""`/api/v1/explorer/…`: the routes explorers call (SPEC §6). Explorers only ever connect
out to the console; the console never dials an explorer.

- `POST /enroll` (enrollment token) → the explorer's id, name and secret (shown once);
- `POST /poll` (explorer secret, with version and host info: the check-in) → work, held
  open up to `long_poll_seconds` until a scan is launched on this explorer;
- `POST /tasks/{id}/progress` → `{"stop": bool}`; `POST /tasks/{id}/stopped`;
  `POST /tasks/{id}/failed`; `PUT /task-data/{id}` (a streamed gzip JSONL body with its
  SHA-256 in `X-Surveyor-Content-SHA256`). Every task report carries the attempt token.

A held poll wakes when the change bus tells of a task change that may let a scan launch
(`launch.may_let_a_scan_launch`: made in this console, or on PostgreSQL in any process), or
when the supervisor finds a launchable scan, and otherwise re-checks the database every
`poll_recheck_seconds` (explorers and zones change too). A held poll whose
connection drops is noted in the explorer's row, so every console counts the explorer
offline once `launch.POLL_RETURN_GRACE` passes without a new poll.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection
from starlette.requests import ClientDisconnect

from surveyor.console.errors import ApiError, BodyTooLarge, error_responses
from surveyor.console.schemas import IdPath, Strict
from surveyor.console.state import ConsoleState, State
from surveyor.core.explorer_protocol import LONG_POLL_SECONDS, HostInfo
from surveyor.core.jsonl_limits import LimitExceeded
from surveyor.core.resources import Explorer as ExplorerRow
from surveyor.core.task import Task
from surveyor.service import explorers as explorer_service
from surveyor.service import launch
from surveyor.service.explorers import EnrollmentRefused, ReportRefused
from surveyor.store import taskdata
from surveyor.store.task_data_store import keep_task_data

router = APIRouter(prefix="/api/v1/explorer", tags=["explorer protocol"])
_ERRORS = error_responses(400, 401, 404, 409, 413, 422)
#: How often an explorer reports progress while it scans (the console asks for it).
REPORT_INTERVAL_SECONDS = 0.5
#: Task data uploads go here; only these requests may exceed the usual body limit.
UPLOAD_PATH_PREFIX = "/api/v1/explorer/task-data/"
_UPLOAD_WRITE_BYTES = 1 << 20
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ExplorerSecret",
    description="The explorer's secret (`svx_…`), or an enrollment token (`sve_…`) to enroll.",
)


class ExplorerMessage(Strict):
    """Explorer messages ignore fields they do not know, so newer explorers can talk to
    older consoles."""

    model_config = ConfigDict(extra="ignore")


class HostIn(ExplorerMessage):
    version: str = Field(default="", max_length=50)
    hostname: str = Field(default="", max_length=255)
    os: str = Field(default="", max_length=200)
    addresses: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("addresses")
    @classmethod
    def _short_addresses(cls, value: list[str]) -> list[str]:
        return [address[:100] for address in value]

    def host_info(self) -> HostInfo:
        return HostInfo(self.version, self.hostname, self.os, tuple(self.addresses))


class EnrollIn(HostIn):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")


class EnrollOut(BaseModel):
    explorer_id: int
    organization_id: int
    name: str
    secret: str = Field(description="shown once; the explorer keeps it in its state directory")


class PollIn(HostIn):
    wait: float = Field(
        default=LONG_POLL_SECONDS, ge=0, le=300, description="seconds to hold the poll"
    )


class Assignment(BaseModel):
    id: int
    type: str
    name: str
    attempt: int
    attempt_token: str
    params: dict[str, Any]
    scope_cap: int
    report_interval: float
    report_retry_max: float
    #: A connector run's credential, secrets included, for this attempt only.
    credential: dict[str, str] | None = None


class PollOut(BaseModel):
    task: Assignment | None


class ReportIn(ExplorerMessage):
    attempt_token: str = Field(min_length=1, max_length=64)


class ProgressIn(ReportIn):
    collect: float = Field(ge=0, le=1, description="scan progress, 0..1")
    stats: dict[str, int | float] = Field(default_factory=dict)

    @field_validator("stats")
    @classmethod
    def _few_stats(cls, value: dict[str, int | float]) -> dict[str, int | float]:
        if len(value) > 32 or any(len(key) > 64 for key in value):
            raise ValueError("at most 32 stats with names of at most 64 characters")
        return value


class ProgressOut(BaseModel):
    stop: bool


class FailedIn(ReportIn):
    error: str = Field(min_length=1, max_length=2000)


class TaskStatusOut(BaseModel):
    id: int
    status: str


class UploadOut(TaskStatusOut):
    size_data: int
    data_sha256: str | None
    already_stored: bool


#: The bearer credentials of a request, as sent (checked by `authenticated`).
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticated(
    state: ConsoleState, credentials: HTTPAuthorizationCredentials | None
) -> ExplorerRow:
    """The explorer whose secret the request carries; 401 otherwise (reads the database)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "unauthenticated",
            "this needs the explorer's secret: 'Authorization: Bearer svx_…'",
        )
    with state.db.read() as conn:
        explorer = explorer_service.authenticate(conn, credentials.credentials)
    if explorer is None:
        raise ApiError(
            401,
            "unknown_explorer",
            "the explorer secret is not known here: the explorer was deleted, or enrolled "
            "with another console; enroll it again with a new enrollment token",
        )
    return explorer


def current_explorer(credentials: Credentials, state: State) -> ExplorerRow:
    return authenticated(state, credentials)


Explorer = Annotated[ExplorerRow, Depends(current_explorer)]


def _refused(exc: ReportRefused) -> ApiError:
    status = 404 if exc.code == "unknown_task" else 409
    details = {"current_status": exc.status} if exc.status else {}
    return ApiError(status, exc.code, exc.message, details)


@router.post("/enroll", status_code=201, response_model=EnrollOut, responses=_ERRORS)
def enroll(
    body: EnrollIn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    state: State,
) -> Any:
    """Enroll with an organization's enrollment token; the answer holds the explorer's own
    secret, which the console keeps only as a digest."""
    if credentials is None:
        raise ApiError(
            401, "unauthenticated", "enrolling needs an enrollment token: 'Authorization: Bearer'"
        )
    try:
        with state.db.write() as conn:
            explorer, secret = explorer_service.enroll(
                conn,
                credentials.credentials,
                name=body.name,
                host=body.host_info(),
                now=state.clock.now(),
            )
    except EnrollmentRefused as exc:
        raise ApiError(401, "enrollment_refused", str(exc)) from exc
    return {
        "explorer_id": explorer.id,
        "organization_id": explorer.organization_id,
        "name": explorer.name,
        "secret": secret,
    }


def _arrive(
    state: ConsoleState, credentials: HTTPAuthorizationCredentials | None, host: HostInfo
) -> tuple[ExplorerRow, datetime]:
    """A poll's explorer, checked in: one trip to a worker thread for both."""
    explorer = authenticated(state, credentials)
    return explorer, _check_in(state, explorer, host)


def _check_in(state: ConsoleState, explorer: ExplorerRow, host: HostInfo) -> datetime:
    now = state.clock.now()
    with state.db.write() as conn:
        explorer_service.check_in(conn, explorer, host, now=now)
    return now


def _poll_dropped(state: ConsoleState, explorer: ExplorerRow, checked_in_at: datetime) -> None:
    with state.db.write() as conn:
        explorer_service.poll_dropped(
            conn, explorer, checked_in_at=checked_in_at, now=state.clock.now()
        )


def _next_work(state: ConsoleState, explorer_id: int) -> dict[str, Any] | None:
    now = state.clock.now()
    with state.db.read() as conn:
        if not launch.may_have_work(conn, explorer_id, now=now):
            return None
    with state.db.write() as conn:
        task = launch.next_work(conn, explorer_id, now=now)
        if task is None:
            return None
        told = launch.assignment(conn, task, box=state.loaded_secret_box, now=now)
        if told is None:
            return None
        return {
            **told,
            "report_interval": REPORT_INTERVAL_SECONDS,
            # Retries of reports must come well within the silence timeout.
            "report_retry_max": max(0.25, state.settings.explorer_silence_seconds / 4),
        }


@router.post("/poll", response_model=PollOut, responses=_ERRORS)
async def poll(body: PollIn, request: Request, credentials: Credentials, state: State) -> Any:
    """Check in and wait for work: answered as soon as a scan is launched on this explorer,
    or empty after `wait` seconds (capped by the console, and to half the online window so
    a waiting explorer stays online). A poll whose connection drops is noted in the
    database: an explorer that does not poll again soon counts as offline at once."""
    settings = state.settings
    loop = asyncio.get_running_loop()
    wait = min(body.wait, settings.long_poll_seconds, settings.online_window_seconds / 2)
    deadline = loop.time() + wait
    explorer, checked_in_at = await asyncio.to_thread(_arrive, state, credentials, body.host_info())
    watch = state.poll_watch()
    # The watch looks for every held poll at once, and wakes this one if it may have work;
    # it wakes every held poll when the console begins to stop. A dropped connection ends
    # the wait too: nothing wakes a held poll while it has no news.
    held = watch.hold(explorer)
    gone = asyncio.ensure_future(_until_disconnected(request))
    try:
        look = watch.woken(held)
        while True:
            if state.stopping.is_set():
                return {"task": None}
            if gone.done():
                await asyncio.to_thread(_poll_dropped, state, explorer, checked_in_at)
                return {"task": None}
            if look:
                assignment = await asyncio.to_thread(_next_work, state, explorer.id)
                if assignment is not None:
                    return {"task": assignment}
            now = loop.time()
            if now >= deadline:
                return {"task": None}
            look = await watch.wait(held, deadline - now, unless=gone)
    finally:
        gone.cancel()
        watch.release(held)


async def _until_disconnected(request: Request) -> None:
    """Return once the client has gone: the poll's body is read, so the next message the
    server gives is `http.disconnect`."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/tasks/{task_id}/progress", response_model=ProgressOut, responses=_ERRORS)
def report_progress(task_id: IdPath, body: ProgressIn, explorer: Explorer, state: State) -> Any:
    """Progress of the scan (at least once a second); the answer says whether to stop."""
    try:
        with state.db.write() as conn:
            stop = explorer_service.report_progress(
                conn,
                explorer,
                task_id,
                body.attempt_token,
                collect=body.collect,
                stats=body.stats,
                now=state.clock.now(),
            )
    except ReportRefused as exc:
        raise _refused(exc) from exc
    return {"stop": stop}


@router.post("/tasks/{task_id}/stopped", response_model=TaskStatusOut, responses=_ERRORS)
def confirm_stopped(task_id: IdPath, body: ReportIn, explorer: Explorer, state: State) -> Any:
    """The explorer halted the scan it was told to stop."""
    try:
        with state.db.write() as conn:
            task = explorer_service.confirm_stop(
                conn, explorer, task_id, body.attempt_token, now=state.clock.now()
            )
    except ReportRefused as exc:
        raise _refused(exc) from exc
    return {"id": task.id, "status": task.status.value}


@router.post("/tasks/{task_id}/failed", response_model=TaskStatusOut, responses=_ERRORS)
def report_failure(task_id: IdPath, body: FailedIn, explorer: Explorer, state: State) -> Any:
    """The scan could not finish; the task is canceled with the explorer's reason."""
    try:
        with state.db.write() as conn:
            task = explorer_service.report_failure(
                conn, explorer, task_id, body.attempt_token, error=body.error, now=state.clock.now()
            )
    except ReportRefused as exc:
        raise _refused(exc) from exc
    return {"id": task.id, "status": task.status.value}


def _upload_out(task: Task, *, already_stored: bool) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": task.status.value,
        "size_data": task.size_data,
        "data_sha256": task.data_sha256,
        "already_stored": already_stored,
    }


async def _receive_into(
    request: Request, incoming: taskdata.IncomingTaskData, *, idle_seconds: float
) -> None:
    """Write the body into `incoming`. A body that stops arriving (a network path that
    died without a reset) is given up after `idle_seconds`, so its partial file goes."""
    pending = bytearray()
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), idle_seconds)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiError(
                408,
                "upload_stalled",
                f"no data arrived for {idle_seconds:g} s; nothing was stored, send it again",
            ) from None
        pending += chunk
        if len(pending) >= _UPLOAD_WRITE_BYTES:
            await asyncio.to_thread(incoming.write, bytes(pending))
            pending.clear()
    if pending:
        await asyncio.to_thread(incoming.write, bytes(pending))
    await asyncio.to_thread(incoming.finish)


@router.put("/task-data/{task_id}", response_model=UploadOut, responses=_ERRORS)
async def upload_task_data(
    task_id: IdPath,
    request: Request,
    explorer: Explorer,
    state: State,
    attempt_token: Annotated[str, Header(alias="X-Surveyor-Attempt-Token", max_length=64)],
    sha256: Annotated[str, Header(alias="X-Surveyor-Content-SHA256", pattern=r"^[0-9a-f]{64}$")],
    partial: Annotated[
        bool,
        Header(
            alias="X-Surveyor-Partial",
            description="true: the data covers only part of the scope (the scan was stopped)",
        ),
    ] = False,
) -> Any:
    """Receive the task data (gzip JSONL, streamed). It is stored only if its SHA-256 matches
    the header and it is task data within the limits; the same data uploaded again is
    answered, not stored. While the task is being stopped, this is what the scan found before
    it halted: it is kept, marked partial, and the task becomes `stopped`. Data the console
    will never store (too large, not task data) cancels the task with the reason (or just
    ends a stopping one `stopped`), so the explorer does not send it again."""

    def begin() -> explorer_service.UploadStart:
        with state.db.write() as conn:
            return explorer_service.begin_upload(
                conn, explorer, task_id, attempt_token, sha256=sha256, now=state.clock.now()
            )

    try:
        start = await asyncio.to_thread(begin)
    except ReportRefused as exc:
        raise _refused(exc) from exc
    if start.already_stored:
        return _upload_out(start.task, already_stored=True)
    with taskdata.IncomingTaskData(state.settings.data_dir, task_id) as incoming:
        try:
            await _receive_into(request, incoming, idle_seconds=state.settings.upload_idle_seconds)
        except ClientDisconnect:
            raise ApiError(400, "incomplete_upload", "the upload ended early") from None
        except BodyTooLarge as exc:
            too_large = f"it is larger than {exc.limit} bytes (the limit SURVEYOR_MAX_UPLOAD_BYTES)"
            await asyncio.to_thread(
                _refuse_invalid, state, explorer, task_id, attempt_token, too_large
            )
            raise
        if incoming.sha256 != sha256:
            raise ApiError(
                400,
                "checksum_mismatch",
                f"the data received has SHA-256 {incoming.sha256}, not {sha256}; "
                "nothing was stored",
            )
        limits = state.settings.task_data_limits
        try:
            problem = await asyncio.to_thread(
                taskdata.task_data_problem, incoming.temp_path, limits
            )
        except LimitExceeded as exc:
            refused = f"{exc} (the limit {exc.setting})"
            await asyncio.to_thread(
                _refuse_invalid, state, explorer, task_id, attempt_token, refused
            )
            status, code = (413, "too_large") if exc.too_large else (422, "invalid_data")
            raise ApiError(
                status, code, f"the task data is refused: {refused}", exc.details
            ) from None
        if problem is not None:
            await asyncio.to_thread(
                _refuse_invalid, state, explorer, task_id, attempt_token, problem
            )
            raise ApiError(422, "invalid_data", f"this is not Surveyor task data: {problem}")

        def finish() -> explorer_service.UploadStart:
            with state.db.write() as conn:
                return explorer_service.finish_upload(
                    conn,
                    explorer,
                    task_id,
                    attempt_token,
                    size=incoming.size,
                    sha256=sha256,
                    store=lambda: _committed(conn, task_id, incoming),
                    now=state.clock.now(),
                    partial=partial,
                )

        try:
            done = await asyncio.to_thread(finish)
        except ReportRefused as exc:
            raise _refused(exc) from exc
    return _upload_out(done.task, already_stored=done.already_stored)


def _committed(conn: Connection, task_id: int, incoming: taskdata.IncomingTaskData) -> Path:
    """The received file in place, and in the database when it keeps task data (in the
    transaction that records the upload, so every console and worker finds it)."""
    path = incoming.commit()
    keep_task_data(conn, task_id, path)
    return path


def _refuse_invalid(
    state: ConsoleState, explorer: ExplorerRow, task_id: int, token: str, problem: str
) -> None:
    with state.db.write() as conn:
        explorer_service.refuse_invalid_data(
            conn, explorer, task_id, token, problem=problem, now=state.clock.now()
        )
