"""Saved queries' pure rules: the link to the matching items, the threshold, the change since
yesterday and the trend in words, and the sparkline's drawing."""

from __future__ import annotations

from datetime import UTC, datetime

from surveyor.console.web.dashboard import sparkline_points
from surveyor.core.queries import Insight, SavedQuery, describe_change, describe_trend

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def query(kind: str = "asset", search: str = "port:22", **values: object) -> SavedQuery:
    row: dict[str, object] = {
        "id": 1,
        "organization_id": 1,
        "name": "q",
        "kind": kind,
        "search": search,
        "threshold": None,
        "pinned": True,
        "created_by_user_id": None,
        "created_at": NOW,
        "updated_at": NOW,
        "last_count": None,
        "last_counted_at": None,
        **values,
    }
    return SavedQuery.from_row(row)


def test_the_link_opens_the_page_that_lists_the_matching_items() -> None:
    assert query().link == "/assets?search=port%3A22"
    assert query("service", 'product:"Open SSH"').link == "/assets?search=product%3A%22Open+SSH%22"
    assert query("task", "status:canceled").link == "/tasks?search=status%3Acanceled"
    assert query("task", "").link == "/tasks"


def test_only_a_count_above_the_threshold_is_over_it() -> None:
    assert query(threshold=5, last_count=6).over_threshold
    assert not query(threshold=5, last_count=5).over_threshold
    assert not query(threshold=None, last_count=6).over_threshold
    assert not query(threshold=5, last_count=None).over_threshold


def test_the_change_since_yesterday_needs_both_counts() -> None:
    assert Insight(query(last_count=7), (3, 7), day_ago=3).change_since_yesterday == 4
    assert Insight(query(last_count=7), (7,), day_ago=None).change_since_yesterday is None
    assert [describe_change(c) for c in (4, -1200, 0, None)] == [
        "+4",
        "-1,200",
        "no change",
        "no count a day ago",
    ]


def test_the_trend_is_told_in_words() -> None:
    assert describe_trend(()) == "not counted yet"
    assert describe_trend((5,)) == "one count so far: 5"
    assert describe_trend((1, 9, 4)) == "last 3 counts, from 1 to 4 (lowest 1, highest 9)"


def test_the_sparkline_spans_the_box_oldest_at_the_left_highest_at_the_top() -> None:
    points = [
        tuple(map(float, p.split(","))) for p in sparkline_points((0, 10, 5), 100, 22).split()
    ]
    assert points == [(0.0, 21.0), (50.0, 1.0), (100.0, 11.0)]
    assert sparkline_points((), 100, 22) == ""
    flat = sparkline_points((3, 3), 100, 22)
    assert flat == "0.0,11.0 100.0,11.0"
    assert sparkline_points((3,), 100, 22) == "0,11.0 100,11.0"
