"""The search language of SPEC §11: parse, resolve against a catalogue, evaluate.

Pure: no SQL, no I/O. The store compiles the same resolved conditions to SQL
(`surveyor.store.search_sql`).
"""

from surveyor.core.search.conditions import Condition, resolve, validate
from surveyor.core.search.errors import SearchError
from surveyor.core.search.evaluate import evaluate, matches
from surveyor.core.search.fields import Catalogue, FieldKind, SearchField
from surveyor.core.search.parser import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    Operator,
    Query,
    mentions_key,
    parse,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "Catalogue",
    "Condition",
    "FieldKind",
    "Operator",
    "Query",
    "SearchError",
    "SearchField",
    "evaluate",
    "matches",
    "mentions_key",
    "parse",
    "resolve",
    "validate",
]
