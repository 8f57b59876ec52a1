"""The opaque cursors of keyset pagination: the last row's sort key and id as compact JSON in
URL-safe base64 without padding. Each listing checks what it decodes and says, in its own
error, what is wrong with a cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any


def encode_cursor(values: Sequence[object]) -> str:
    """The cursor holding `values` (JSON values)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """What `encode_cursor` put in the cursor; `ValueError` for one that is not a cursor."""
    padded = cursor + "=" * (-len(cursor) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))
