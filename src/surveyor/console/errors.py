"""The JSON error format `{"error": {"code", "message", "details"}}` and its handlers.

Every error is answered in this format, the unexpected ones too: an exception no handler
knows becomes a 500 `internal` (a full disk a 507 `disk_full` saying where to free space),
answered by Starlette's outermost middleware, so errors raised inside other middleware are
covered; the exception then continues to the server, which logs its traceback. A client
that left before its request body arrived is no failure: a bare 499, and no traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from surveyor.core.search import SearchError
from surveyor.core.tasks import IllegalTransition
from surveyor.store.records import Conflict
from surveyor.store.task_data_store import TaskDataStoreError
from surveyor.store.tasks import InvalidCursor, StaleTask, TaskNotFound

#: SQLite's result code for "database or disk is full".
_SQLITE_FULL = 13
#: PostgreSQL's SQLSTATE `disk_full`.
_POSTGRES_DISK_FULL = "53100"
#: The access log's status of a request whose client left before its body arrived (nginx's).
CLIENT_CLOSED_REQUEST = 499


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An error the API answers with; `code` is stable for programs, `message` is for people."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class BodyTooLarge(StarletteHTTPException):
    """A request body over its limit, raised while the body is read. An HTTP exception,
    so that no body parser turns it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A router's OpenAPI `responses`: each of `statuses` answered in the error format."""
    return {status: {"model": ErrorResponse} for status in statuses}


def not_found(kind: str, object_id: object) -> ApiError:
    return ApiError(404, "not_found", f"{kind} {object_id} does not exist")


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
}


def _describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    fields = []
    for err in errors:
        location = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        fields.append({"field": ".".join(location), "problem": err.get("msg", "invalid")})
    if fields:
        first = fields[0]
        where = f"'{first['field']}'" if first["field"] else "the request body"
        message = f"{where}: {first['problem']}"
        if len(fields) > 1:
            message += f" (and {len(fields) - 1} more problem{'s' if len(fields) > 2 else ''})"
    else:
        message = "the request is not valid"
    return message, fields


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, unexpected_error)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
        # A browser leaving a page cancels its fetches (the schedule preview of the new-task
        # form, say): nothing failed here and nobody is left to answer, so no traceback.
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "there is no such path in the API"
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, fields = _describe_validation(list(exc.errors()))
        return error_response(422, "invalid_request", message, {"fields": fields})

    @app.exception_handler(SearchError)
    async def search_error(_request: Request, exc: SearchError) -> JSONResponse:
        return error_response(
            400, "invalid_search", exc.message, {"position": exc.position, **exc.details}
        )

    @app.exception_handler(IllegalTransition)
    async def illegal_transition(_request: Request, exc: IllegalTransition) -> JSONResponse:
        return error_response(
            409,
            "illegal_transition",
            str(exc),
            {"current_status": exc.current.value, "requested_status": exc.requested.value},
        )

    @app.exception_handler(InvalidCursor)
    async def invalid_cursor(_request: Request, exc: InvalidCursor) -> JSONResponse:
        return error_response(400, "invalid_cursor", str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(TaskDataStoreError)
    async def task_data_store_error(_request: Request, exc: TaskDataStoreError) -> JSONResponse:
        # Nothing was recorded (the transaction that would have rolled back): send it again.
        return error_response(503, "task_data_store_unavailable", str(exc))

    @app.exception_handler(TaskNotFound)
    async def task_not_found(_request: Request, exc: TaskNotFound) -> JSONResponse:
        return error_response(404, "not_found", f"task {exc.args[0]} does not exist")

    @app.exception_handler(StaleTask)
    async def stale_task(_request: Request, exc: StaleTask) -> JSONResponse:
        return error_response(
            409, "busy", "the task kept changing while we tried to update it; try again"
        )


def disk_full(exc: BaseException) -> bool:
    """Whether the exception, or one it came from, says a disk is full: ENOSPC or EDQUOT,
    SQLite's "database or disk is full", PostgreSQL's `disk_full`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return True
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
            continue
        current = current.__cause__ or current.__context__
    return False


def _where_to_free_space(request: Request, exc: BaseException) -> str:
    console = getattr(request.app.state, "console", None)
    if console is None:
        return "the console's disk is full: free some space and try again"
    database = console.db.engine.url
    if isinstance(exc, DBAPIError) and database.get_backend_name() != "sqlite":
        return "the database server's disk is full: free space there and try again"
    folder = console.settings.data_dir
    if isinstance(exc, DBAPIError) and database.database:
        folder = Path(database.database).parent
    return f"the console's disk is full: free space in {folder} and try again"


#: The server closes the connection after an unexpected exception; saying so keeps a client
#: from sending its next request on it.
_CLOSING = {"Connection": "close"}


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an exception no other handler took (the server logs its traceback)."""
    if disk_full(exc):
        return error_response(
            507, "disk_full", _where_to_free_space(request, exc), headers=_CLOSING
        )
    return error_response(
        500,
        "internal",
        "the console failed while answering this request; the details are in its log",
        headers=_CLOSING,
    )
