"""The one error a search query can raise: a message for the user, where, and why."""

from __future__ import annotations

from typing import Any


class SearchError(ValueError):
    """A query that cannot be parsed or does not fit the catalogue (an API 400).

    `position` is a 0-based character offset into the query text; `details` carries
    machine-readable extras such as `valid_keys` for an unknown key.
    """

    def __init__(self, message: str, position: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.details: dict[str, Any] = details or {}
