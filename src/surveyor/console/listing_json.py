"""The hot listings' answers (tasks, a template's runs, a task's events, assets): what the
store read, written as the response model's JSON in one step.

What the store produced needs no second validation. A listing builds plain dicts in its
response model's field order, and `json_answer` encodes them once with orjson, in the worker
thread that did the read, and answers the bytes itself: FastAPI then neither validates nor
encodes the page again, nor takes a second thread to do so. The routes still declare their
response models, which the OpenAPI document shows; `tests/integration/test_listing_json.py`
checks that each answer is, byte for byte, what the model would have written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

#: Aware UTC times end in `Z`, as pydantic writes them.
_OPTIONS = orjson.OPT_UTC_Z


def json_answer(content: Mapping[str, Any], model: type[BaseModel]) -> Response:
    """`content` as the JSON of `model`. A value orjson does not write (an integer past 64
    bits, say, in a task's params) is left to `model`, which validates and writes it."""
    try:
        body = orjson.dumps(content, option=_OPTIONS)
    except orjson.JSONEncodeError:
        body = model.model_validate(content).model_dump_json().encode()
    return Response(body, media_type="application/json")
