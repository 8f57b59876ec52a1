"""Keyset pagination: a page's size, the page itself, and its opaque cursor: the last row's
sort key and id as compact JSON in URL-safe base64 without padding. Each listing checks what
it decodes and says, in its own error, what is wrong with a cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_Read = TypeVar("_Read")
_Item = TypeVar("_Item")

#: The most rows one page of a listing holds.
MAX_PAGE_SIZE = 1000


def page_size(limit: int) -> int:
    """How many rows a page asked for with `limit` holds: at least one, at most
    `MAX_PAGE_SIZE`."""
    return max(1, min(limit, MAX_PAGE_SIZE))


def keyset_page(
    rows: Sequence[_Read],
    limit: int,
    make: Callable[[_Read], _Item],
    cursor_after: Callable[[_Item], str],
) -> tuple[list[_Item], str | None]:
    """The items of a page of `limit` (`make` of each row), read one row past the page to
    know whether more follow, and then the cursor after its last item (else None)."""
    items = [make(row) for row in rows[:limit]]
    return items, cursor_after(items[-1]) if len(rows) > limit else None


def encode_cursor(values: Sequence[object]) -> str:
    """The cursor holding `values` (JSON values)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """What `encode_cursor` put in the cursor; `ValueError` for one that is not a cursor."""
    padded = cursor + "=" * (-len(cursor) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))
