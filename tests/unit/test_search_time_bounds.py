"""`created_within`: the bounds on creation time a task search's top-level terms set, the
hint a count uses to share its work (store/task_search.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from surveyor.core.search import parse, resolve
from surveyor.store.task_search import TASK_SEARCH, created_within

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def bounds(text: str) -> tuple[datetime | None, datetime | None]:
    condition = resolve(parse(text), TASK_SEARCH, NOW)
    assert condition is not None
    return created_within(condition)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("created_at:<90days", (NOW - 90 * DAY, None)),
        ("name:audit created_at:<90days status:processed", (NOW - 90 * DAY, None)),
        ("created_at:>30days", (None, NOW - 30 * DAY)),
        ("created_at:<90days created_at:<30days", (NOW - 30 * DAY, None)),
        ("created_at:<90days created_at:>30days", (NOW - 90 * DAY, NOW - 30 * DAY)),
        # Under OR or NOT a term bounds nothing for every match.
        ("created_at:<90days OR name:audit", (None, None)),
        ("NOT created_at:<90days", (None, None)),
        # Other time keys are not creation time.
        ("updated_at:<1day", (None, None)),
        ("name:audit", (None, None)),
    ],
)
def test_the_top_level_terms_bound_creation_time(
    text: str, expected: tuple[datetime | None, datetime | None]
) -> None:
    assert bounds(text) == expected


def test_a_day_bounds_both_sides_also_inside_another_and() -> None:
    day = datetime(2026, 11, 1, tzinfo=UTC)
    assert bounds("created_at:2026-11-01") == (day, day + DAY)
    assert bounds("name:audit (created_at:2026-11-01 status:processed)") == (day, day + DAY)
