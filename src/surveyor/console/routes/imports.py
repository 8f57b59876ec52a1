"""`POST /api/v1/imports`: a Surveyor JSONL file (gzip or plain) becomes an `import` task.

The file is the raw request body. `console/import_upload.receive_import` (which the Import
page's upload calls too) stores and checks it and creates the task: a bad record is a 400
naming its line, data over a size limit a 413 naming the limit, and nothing is kept. A good
file becomes an import task in `processing_queued`, merged by the same workers as scans.
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
) -> TaskOut:
    """Import a Surveyor JSONL file (gzip or plain, as the request body) into a site."""
    task = await receive_import(
        state,
        principal,
        request.stream(),
        content_type=request.headers.get("content-type", ""),
        site=site,
        name=name,
        description=description,
    )
    return task_out(task)
