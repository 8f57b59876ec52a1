"""The search bar of the tasks and assets pages: compiling a query, and showing where it
went wrong (the message, and the query with the character at fault marked)."""

from __future__ import annotations

from dataclasses import dataclass, field

from surveyor.core.search import MAX_QUERY_LENGTH, SearchError, parse
from surveyor.core.search.parser import Query

MAX_SEARCH_LENGTH = MAX_QUERY_LENGTH


@dataclass(frozen=True)
class SearchProblem:
    """A search that did not parse or fit the catalogue, split around the position."""

    message: str
    position: int
    before: str
    at: str
    after: str
    valid_keys: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, text: str, error: SearchError) -> SearchProblem:
        position = max(0, min(error.position, len(text)))
        valid = error.details.get("valid_keys") or []
        return cls(
            message=error.message,
            position=position,
            before=text[:position],
            at=text[position : position + 1],
            after=text[position + 1 :],
            valid_keys=[str(key) for key in valid],
        )


def parse_search(text: str) -> Query | None:
    """The parsed query, or None for an empty search; raises SearchError."""
    query = parse(text)
    return query if query.root is not None else None
