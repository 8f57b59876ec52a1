"""The JSON error format `{"error": {"code", "message", "details"}}` and its handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from surveyor.core.search import SearchError
from surveyor.core.tasks import IllegalTransition
from surveyor.store.records import Conflict
from surveyor.store.tasks import InvalidCursor, StaleTask, TaskNotFound


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

    @app.exception_handler(TaskNotFound)
    async def task_not_found(_request: Request, exc: TaskNotFound) -> JSONResponse:
        return error_response(404, "not_found", f"task {exc.args[0]} does not exist")

    @app.exception_handler(StaleTask)
    async def stale_task(_request: Request, exc: StaleTask) -> JSONResponse:
        return error_response(
            409, "busy", "the task kept changing while we tried to update it; try again"
        )
