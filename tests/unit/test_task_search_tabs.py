"""`tabs_of_search`: the tabs a search can find tasks in, judged by the statuses it allows.
It may name a tab where nothing matches, but must never leave out one where a task matches
(the reference evaluator decides what matches)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from surveyor.core.search import evaluate, parse
from surveyor.core.tasks import TaskStatus, tab_of
from surveyor.store.task_search import TASK_SEARCH, tabs_of_search
from tests.support.search_queries import combined

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
STATUSES = [status.value for status in TaskStatus]


def test_a_status_names_its_tabs_and_other_keys_leave_every_tab() -> None:
    assert tabs_of_search("status:processed site:dc-3", NOW) == {"completed"}
    assert tabs_of_search("status:=new", NOW) == {"scheduled", "recurring"}
    assert tabs_of_search("status:canceled OR status:stopped", NOW) == {"failed"}
    assert tabs_of_search("NOT status:processed name:x", NOW) == {
        "active",
        "processing",
        "scheduled",
        "failed",
        "recurring",
    }
    assert tabs_of_search("status:=processed NOT status:processed", NOW) == set()
    # a status OR something else, a NOT over another key, a bare word: any tab
    for text in (
        "status:processed OR name:x",
        "NOT (status:new OR name:x)",
        "NOT (status:processed name:x)",
        "processed",
        "",
    ):
        assert tabs_of_search(text, NOW) is None, text


def _record(status: str, name: str) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(TASK_SEARCH.fields)
    return record | {"status": status, "name": name}


# Needles cut from status names (and a few others), so that terms match some statuses.
needles = st.sampled_from(STATUSES).flatmap(
    lambda status: st.tuples(st.integers(0, len(status)), st.integers(0, len(status))).map(
        lambda cut: status[min(cut) : max(cut)]
    )
) | st.sampled_from(["x", "sca", "ed", "ing"])
terms = st.tuples(st.sampled_from(["status:", "status:=", "name:", ""]), needles).map(
    lambda term: f'{term[0]}"{term[1]}"' if term[1] else f"{term[0]}x"
)
queries = combined(terms, max_leaves=6)


@settings(max_examples=400)
@given(
    query=queries,
    tasks=st.lists(
        st.tuples(st.sampled_from(STATUSES), st.booleans(), st.sampled_from(["", "x", "scan"])),
        min_size=1,
        max_size=12,
    ),
)
def test_no_tab_where_a_task_matches_is_left_out(
    query: str, tasks: list[tuple[str, bool, str]]
) -> None:
    tabs = tabs_of_search(query, NOW)
    if tabs is None:
        return
    for status, template, name in tasks:
        tab = tab_of(TaskStatus(status), template=template)
        if tab is not None and evaluate(parse(query), _record(status, name), TASK_SEARCH, NOW):
            assert tab.value in tabs, (query, status, template)
