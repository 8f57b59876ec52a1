"""`POST /api/v1/imports`: a file becomes an `import` task.

The file is the raw request body, or the `file` part of a `multipart/form-data` body (what
browsers and most HTTP tools send; its `site`, `name`, `format` and `description` parts
count as the query parameters of the same names). `console/import_upload.receive_import`
(which the Import page's upload calls too) stores it, tells its format (Surveyor JSONL, nmap
XML, masscan output, CSV; gzip or plain), turns it into task data, checks every record and
creates the task: a broken file is a 400 naming where and what, data over a size limit a
413 naming the limit, and nothing is kept. A good file becomes an import task in
`processing_queued`, merged by the same workers as scans.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from surveyor.console.auth import Operator
from surveyor.console.errors import error_responses
from surveyor.console.import_upload import receive_import
from surveyor.console.routes.tasks import task_out
from surveyor.console.schemas import TaskOut
from surveyor.console.state import State
from surveyor.formats.records import Format

IMPORT_PATH = "/api/v1/imports"
router = APIRouter(prefix=IMPORT_PATH, tags=["imports"])
_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 422)


@router.post("", status_code=201, response_model=TaskOut, responses=_ERRORS)
async def create_import(
    request: Request,
    principal: Operator,
    state: State,
    site: Annotated[
        str | None,
        Query(max_length=200, description="Site id or name (default: the first site)."),
    ] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    description: Annotated[str, Query(max_length=10_000)] = "",
    format: Annotated[
        Format | None,
        Query(description="The file's format; detected from its first bytes when left out."),
    ] = None,
) -> TaskOut:
    """Import a file into a site: Surveyor JSONL, nmap XML, masscan (-oJ, -oX, -oL) or CSV,
    gzip or plain, as the request body or the `file` part of a form."""
    task = await receive_import(
        state,
        principal,
        request.stream(),
        content_type=request.headers.get("content-type", ""),
        site=site,
        name=name,
        description=description,
        format=format,
    )
    return task_out(task)
