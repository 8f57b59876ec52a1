"""The transition table and the tabs, checked against SPEC §2 and §3 transcribed by hand."""

from __future__ import annotations

import itertools

import pytest

from surveyor.core.kinds import allowed_transitions, check_transition
from surveyor.core.tasks import (
    EXPLORER_OCCUPYING_STATUSES,
    STATUS_LABELS,
    TAB_SPECS,
    IllegalTransition,
    Tab,
    TaskStatus,
    TaskType,
    tab_of,
)

S = TaskStatus

# SPEC §2, written out edge by edge rather than derived from the module under test.
PIPELINE_EDGES = {
    TaskType.SCAN: {
        ("new", "active"),
        ("active", "scanned"),
        ("scanned", "processing_queued"),
        ("processing_queued", "processing"),
        ("processing", "processed"),
    },
    TaskType.CONNECTOR: {
        ("new", "connecting"),
        ("connecting", "connected"),
        ("connected", "processing_queued"),
        ("processing_queued", "processing"),
        ("processing", "processed"),
    },
    TaskType.IMPORT: {
        ("new", "processing_queued"),
        ("processing_queued", "processing"),
        ("processing", "processed"),
    },
}
for system in ("report", "outlier", "query", "retention"):
    PIPELINE_EDGES[TaskType(system)] = PIPELINE_EDGES[TaskType.IMPORT]

STOP_EDGES = {
    TaskType.SCAN: {("active", "stopping"), ("stopping", "stopped"), ("new", "stopped")},
    TaskType.CONNECTOR: {("connecting", "stopping"), ("stopping", "stopped"), ("new", "stopped")},
}
#: What a stopped scan or connector run collected can be processed (reprocess).
STOPPED_REPROCESS = {("stopped", "processing_queued")}
CANCEL_FROM = {
    "new",
    "active",
    "scanned",
    "connecting",
    "connected",
    "processing_queued",
    "processing",
}
COMMON_EDGES = {
    ("processing", "processing_queued"),
    ("processed", "processing_queued"),
    ("canceled", "processing_queued"),
}
TEMPLATE_EDGES = {("new", "paused"), ("paused", "new")}


def expected_edges(task_type: TaskType) -> set[tuple[str, str]]:
    pipeline = PIPELINE_EDGES[task_type]
    statuses_used = {s for edge in pipeline for s in edge}
    stops = STOP_EDGES.get(task_type, {("new", "stopped")})
    if task_type in STOP_EDGES:
        stops = stops | STOPPED_REPROCESS
    cancels = {(s, "canceled") for s in CANCEL_FROM if s in statuses_used}
    return pipeline | stops | cancels | COMMON_EDGES


ALL_PAIRS = list(itertools.product(TaskStatus, TaskStatus))


@pytest.mark.parametrize("task_type", list(TaskType))
def test_every_listed_transition_is_allowed_and_every_other_refused(task_type: TaskType) -> None:
    expected = expected_edges(task_type)
    for current, requested in ALL_PAIRS:
        pair = (current.value, requested.value)
        if pair in expected:
            check_transition(task_type, template=False, current=current, requested=requested)
        else:
            with pytest.raises(IllegalTransition) as refused:
                check_transition(task_type, template=False, current=current, requested=requested)
            assert refused.value.current is current
    table = {(a.value, b.value) for a, b in allowed_transitions(task_type, template=False)}
    assert table == expected


@pytest.mark.parametrize("task_type", list(TaskType))
def test_recurring_templates_only_pause_and_resume(task_type: TaskType) -> None:
    for current, requested in ALL_PAIRS:
        if (current.value, requested.value) in TEMPLATE_EDGES:
            check_transition(task_type, template=True, current=current, requested=requested)
        else:
            with pytest.raises(IllegalTransition):
                check_transition(task_type, template=True, current=current, requested=requested)


def test_a_refusal_names_both_statuses_for_the_user() -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition(TaskType.SCAN, template=False, current=S.PROCESSED, requested=S.ACTIVE)
    assert "processed" in str(refused.value)
    assert "active" in str(refused.value)
    assert refused.value.requested is S.ACTIVE


def test_terminal_statuses_lead_nowhere_but_reprocess() -> None:
    for task_type in TaskType:
        table = allowed_transitions(task_type, template=False)
        for terminal in (S.PROCESSED, S.STOPPED, S.CANCELED):
            targets = {after for (before, after) in table if before is terminal}
            assert targets <= {S.PROCESSING_QUEUED}


def test_only_scans_and_connector_runs_can_process_what_they_collected_before_a_stop() -> None:
    for task_type in TaskType:
        table = allowed_transitions(task_type, template=False)
        reprocess = (S.STOPPED, S.PROCESSING_QUEUED) in table
        assert reprocess is (task_type in (TaskType.SCAN, TaskType.CONNECTOR))


# SPEC §3: which tab each status of a standard task and of a template belongs to.
STANDARD_TAB = {
    "active": "active",
    "connecting": "active",
    "stopping": "active",
    "scanned": "processing",
    "connected": "processing",
    "processing_queued": "processing",
    "processing": "processing",
    "new": "scheduled",
    "canceled": "failed",
    "stopped": "failed",
    "processed": "completed",
    "paused": None,
}
TEMPLATE_TAB = {"new": "recurring", "paused": "recurring"}


@pytest.mark.parametrize("status", list(TaskStatus))
def test_every_status_lands_in_exactly_the_tab_the_spec_says(status: TaskStatus) -> None:
    expected = STANDARD_TAB[status.value]
    assert (tab_of(status, template=False) or None) == (Tab(expected) if expected else None)
    holding = [
        spec.tab for spec in TAB_SPECS.values() if status in spec.statuses and not spec.templates
    ]
    assert len(holding) == (1 if expected else 0)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_templates_show_only_in_the_recurring_tab(status: TaskStatus) -> None:
    expected = TEMPLATE_TAB.get(status.value)
    assert tab_of(status, template=True) == (Tab(expected) if expected else None)


def test_tab_orders_follow_the_spec() -> None:
    newest_first = {tab.value: spec.newest_first for tab, spec in TAB_SPECS.items()}
    assert newest_first == {
        "active": True,
        "processing": False,
        "scheduled": False,
        "failed": True,
        "completed": True,
        "recurring": False,
    }


def test_every_status_has_the_label_the_ui_shows() -> None:
    assert STATUS_LABELS[S.PROCESSING_QUEUED] == "Processing, queued"
    assert {s.label for s in TaskStatus} >= {
        "New",
        "Active",
        "Scanned",
        "Connecting",
        "Connected",
        "Processing",
        "Processed",
        "Stopping",
        "Stopped",
        "Canceled",
        "Paused",
    }


def test_a_task_occupies_its_explorer_from_its_launch_until_its_data_is_in_the_console() -> None:
    # SPEC §2: scanning or connecting, stopping, and uploading (`scanned`, `connected`).
    assert {s.value for s in EXPLORER_OCCUPYING_STATUSES} == {
        "active",
        "connecting",
        "stopping",
        "scanned",
        "connected",
    }
    for task_type in (TaskType.SCAN, TaskType.CONNECTOR):
        table = allowed_transitions(task_type, template=False)
        # every way out of the occupying statuses leads to one that frees the explorer,
        # or to another occupying one
        for before, after in table:
            if before in EXPLORER_OCCUPYING_STATUSES and after not in EXPLORER_OCCUPYING_STATUSES:
                assert after in {S.PROCESSING_QUEUED, S.STOPPED, S.CANCELED}, (before, after)
