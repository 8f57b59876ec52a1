"""Hypothesis strategies for search queries: terms combined with OR, AND and NOT."""

from __future__ import annotations

from hypothesis import strategies as st


def combined(terms: st.SearchStrategy[str], *, max_leaves: int) -> st.SearchStrategy[str]:
    """Queries of `terms` joined by OR, AND (a space) and NOT, nested, in parentheses."""
    return st.recursive(
        terms,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda pair: f"({pair[0]} OR {pair[1]})"),
            st.tuples(inner, inner).map(lambda pair: f"({pair[0]} {pair[1]})"),
            inner.map(lambda query: f"NOT ({query})"),
        ),
        max_leaves=max_leaves,
    )
