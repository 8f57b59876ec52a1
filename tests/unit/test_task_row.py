"""`Task` is every column of the tasks table, typed: built from a row, and back to it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Float, Integer

from surveyor.core.task import TASK_COLUMNS, Task
from surveyor.core.tasks import Tab, TaskStatus, WaitReason
from surveyor.store.schema import UTCDateTime, tasks

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def every_column() -> dict[str, Any]:
    """A row of the tasks table with a distinct, non-empty value in every column."""
    row: dict[str, Any] = {}
    for number, column in enumerate(tasks.columns, start=1):
        kind = column.type
        if isinstance(kind, UTCDateTime):
            value: Any = AT + timedelta(minutes=number)
        elif isinstance(kind, JSON):
            value = {"column": column.name}
        elif isinstance(kind, Boolean):
            value = True
        elif isinstance(kind, Float):
            value = number / 100
        elif isinstance(kind, Integer):
            value = number
        else:
            value = f"{column.name} text"
        row[column.name] = value
    row.update(
        status=TaskStatus.PROCESSING_QUEUED.value,
        tab=Tab.PROCESSING.value,
        wait_reason=WaitReason.EXPLORER_BUSY.value,
        type="scan",
    )
    return row


def test_a_task_has_one_field_for_each_column_of_the_tasks_table() -> None:
    assert list(TASK_COLUMNS) == [column.name for column in tasks.columns]


def test_a_row_with_every_column_becomes_a_task_and_back_unchanged() -> None:
    row = every_column()

    task = Task.from_row(row)

    assert task.as_row() == row
    assert task.status is TaskStatus.PROCESSING_QUEUED
    assert task.tab is Tab.PROCESSING
    assert task.wait_reason is WaitReason.EXPLORER_BUSY
    assert task.params == {"column": "params"}


def test_a_row_missing_a_column_is_refused_naming_it() -> None:
    row = every_column()
    del row["lease_owner"]

    with pytest.raises(KeyError, match="lease_owner"):
        Task.from_row(row)


def test_a_removed_task_has_no_tab_nor_wait_reason() -> None:
    row = {**every_column(), "tab": None, "wait_reason": None, "removed_at": AT}

    task = Task.from_row(row)

    assert (task.tab, task.wait_reason, task.removed_at) == (None, None, AT)
    assert task.as_row() == row


def test_a_task_is_changed_by_replacing_it_not_in_place() -> None:
    task = Task.from_row(every_column())

    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "renamed"  # type: ignore[misc]
    renamed = dataclasses.replace(task, name="renamed")

    assert (task.name, renamed.name) == ("name text", "renamed")
