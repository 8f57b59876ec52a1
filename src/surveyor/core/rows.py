"""What `from_row` of the frozen rows reads: a row by column name (a database row mapping
or a plain dict)."""

from __future__ import annotations

from typing import Any, Protocol


class Row(Protocol):
    def __getitem__(self, column: str, /) -> Any: ...
