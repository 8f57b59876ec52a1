"""The search bar of the tasks and assets pages: compiling a query, and showing where it
went wrong (the message, and the query with the character at fault marked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection

from surveyor.core.search import SearchError, parse
from surveyor.core.search.parser import Query
from surveyor.store.search_sql import SqlCatalogue, compile_query

MAX_SEARCH_LENGTH = 2000


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
    if not text.strip():
        return None
    if len(text) > MAX_SEARCH_LENGTH:
        raise SearchError(
            f"the search is longer than {MAX_SEARCH_LENGTH} characters", MAX_SEARCH_LENGTH, {}
        )
    return parse(text)


def compile_search(
    conn: Connection, query: Query | None, catalogue: SqlCatalogue
) -> ColumnElement[bool] | None:
    if query is None:
        return None
    return compile_query(query, catalogue, dialect_name=conn.dialect.name, now=datetime.now(UTC))
