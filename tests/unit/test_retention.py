"""Retention rules (core/retention.py): the settings' defaults and bounds, the moments they
cut at, and how a run says what it removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from surveyor.core import kinds
from surveyor.core.retention import (
    RetentionOutcome,
    RetentionSettingError,
    RetentionSettings,
    deletion_messages,
    outcome_brief,
    stale_message,
    summary_message,
)

NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


def test_the_defaults_keep_data_90_days_and_call_assets_stale_after_30() -> None:
    settings = RetentionSettings()
    assert (settings.task_data_days, settings.stale_after_days) == (90, 30)
    assert settings.data_cutoff(NOW) == NOW - timedelta(days=90)
    assert settings.stale_cutoff(NOW) == NOW - timedelta(days=30)


@pytest.mark.parametrize("days", [0, -1, 3651, True, 1.5])
def test_a_setting_out_of_bounds_is_refused_naming_it(days: object) -> None:
    with pytest.raises(RetentionSettingError) as refused:
        RetentionSettings(stale_after_days=days)  # type: ignore[arg-type]
    assert refused.value.field == "stale_after_days"
    assert "from 1 to 3650" in refused.value.message


def test_deleted_tasks_are_listed_in_groups() -> None:
    week = RetentionSettings(task_data_days=7)
    messages = deletion_messages([3, 5, 8, 13, 21], week, per_event=2)
    assert messages == [
        "deleted the data files of 2 tasks finished more than 7 days ago: 3, 5",
        "deleted the data files of 2 tasks finished more than 7 days ago: 8, 13",
        "deleted the data files of 1 task finished more than 7 days ago: 21",
    ]
    assert deletion_messages([], RetentionSettings()) == []


def test_a_run_counts_what_it_did_in_words_and_stats() -> None:
    outcome = RetentionOutcome((4, 9), bytes_freed=2048, marked_stale=1, no_longer_stale=3)
    assert outcome.stats() == {
        "data_files_deleted": 2,
        "bytes_freed": 2048,
        "assets_marked_stale": 1,
        "assets_no_longer_stale": 3,
    }
    assert stale_message(outcome, RetentionSettings()) == (
        "marked 1 asset not seen for 30 days stale; 3 assets are no longer stale "
        "(seen within the period)"
    )
    assert summary_message(outcome) == (
        "deleted 2 task data files (2048 bytes); marked 1 asset stale; "
        "task history and change summaries kept"
    )
    assert outcome_brief(outcome.stats()) == "2 data files deleted · 1 asset marked stale"
    assert outcome_brief({}) == ""


def test_the_retention_kind_is_processed_and_summarised() -> None:
    kind = kinds.kind_of("retention")
    assert kind.processor == kinds.RETENTION_PROCESSOR
    assert kind.queued_when_due
    assert kind.collector is kinds.Collector.NOBODY
    assert kind.outcome is not None
    assert kind.outcome({"stats": {"data_files_deleted": 1}}) == (
        "1 data file deleted · 0 assets marked stale"
    )
