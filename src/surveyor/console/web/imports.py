"""The Import page: choose or drop a file, pick the site (and the format), upload it and
watch the import task go Processing → Processed.

The upload is a page route (session cookie and CSRF token), not the bearer-token API, but it
receives, checks and creates through the same `receive_import` as `POST /api/v1/imports`,
so the rules and messages are the API's. The page's script sends the file itself as the
body (with the fields in the query and the CSRF token in a header) and gets JSON back, to
show an upload progress bar; without JavaScript the form is a normal multipart POST that
redirects to the task, or shows the form again with the error at its field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import UploadFile

from surveyor.console.errors import ApiError
from surveyor.console.import_upload import receive_import
from surveyor.console.live import latest_event_id
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PagePrincipal, require_role
from surveyor.store import records
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)

#: Where the form posts (the console's body limit lets uploads here be as large as the API's).
UPLOAD_PATH = "/imports"
#: The formats the page offers; "" leaves it to the console to tell from the content.
FORMATS = (
    ("", "Auto-detect"),
    ("jsonl", "Surveyor JSONL"),
    ("nmap", "nmap XML"),
    ("masscan", "masscan"),
    ("csv", "CSV"),
)
_CHUNK = 1 << 20


def _sites_and_latest(state: ConsoleState, principal: Principal) -> tuple[list[Any], int]:
    """The sites to choose from, and the newest task event (the live updates start there)."""
    with state.db.read() as conn:
        sites = records.list_sites(conn, principal.organization_id, limit=1000)
        return sites, latest_event_id(conn)


def _page(
    request: Request,
    state: ConsoleState,
    principal: Principal,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    *,
    status: int = 200,
) -> Response:
    sites, after = _sites_and_latest(state, principal)
    return render(
        request,
        "imports.html",
        {
            "sites": sites,
            "after": after,
            "formats": FORMATS,
            "values": values,
            "errors": errors,
        },
        status=status,
    )


@router.get("/imports")
def import_page(request: Request, principal: PagePrincipal, state: State) -> Response:
    require_role(principal, Role.OPERATOR)
    return _page(request, state, principal, {"site": "", "name": "", "format": ""}, {})


def _task_state(state: ConsoleState, principal: Principal, task_id: int) -> dict[str, Any] | None:
    with state.db.read() as conn:
        task = task_store.get_task(conn, principal.organization_id, task_id)
    if task is None:
        return None
    return {
        "id": task.id,
        "status": task.status.value,
        "status_label": task.status.label,
        "change_summary": task.change_summary,
        "error": task.error,
    }


@router.get("/imports/{task_id}/state")
async def import_state(
    task_id: int, request: Request, principal: PagePrincipal, state: State
) -> Response:
    """Where a task is: the page's script asks when the live updates say its import moved."""
    found = await asyncio.to_thread(_task_state, state, principal, task_id)
    if found is None:
        return JSONResponse({"error": {"message": "there is no such task"}}, 404)
    return JSONResponse(found, headers={"Cache-Control": "no-store"})


def error_field(error: ApiError) -> str:
    """The form input an upload's refusal is shown at."""
    field = error.details.get("field")
    return field if field in ("site", "name", "format") else "file"


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


@router.post(UPLOAD_PATH)
async def upload_import(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """Create the import task from the uploaded file. The page's script gets JSON (201 with
    the task, or the error and its field); a plain form post is redirected to the task."""
    try:
        require_role(principal, Role.OPERATOR)
        return await _upload(request, principal, state)
    finally:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # The CSRF check read the form; its spooled file is closed whatever happened.
            await (await request.form()).close()


async def _upload(request: Request, principal: Principal, state: ConsoleState) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        values = {key: _text(form.get(key), 200) for key in ("site", "name", "format")}
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await asyncio.to_thread(
                _page, request, state, principal, values, {"file": "choose a file"}, status=400
            )
        chunks = _file_chunks(upload)
        file_type = "application/octet-stream"
        wants_json = False
    else:
        query = request.query_params
        values = {key: _text(query.get(key), 200) for key in ("site", "name", "format")}
        chunks = request.stream()
        file_type = content_type
        wants_json = True
    try:
        task = await receive_import(
            state,
            principal,
            chunks,
            content_type=file_type,
            site=values["site"] or None,
            name=values["name"] or None,
            description="",
            format=values["format"] or None,
        )
    except ApiError as error:
        field = error_field(error)
        if wants_json:
            return JSONResponse(
                {"error": {"field": field, "message": error.message}}, status_code=error.status
            )
        return await asyncio.to_thread(
            _page, request, state, principal, values, {field: error.message}, status=error.status
        )
    url = f"/tasks?tab=all&task={task.id}"
    if wants_json:
        return JSONResponse(
            {
                "task": {"id": task.id, "name": task.name, "status": task.status.value},
                "url": url,
                "assets_url": "/assets",
            },
            status_code=201,
        )
    return RedirectResponse(url, status_code=303)
