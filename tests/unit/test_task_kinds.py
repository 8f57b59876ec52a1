"""Task kinds: the shipped declarations, what each part of the pipeline takes from them, and a
registry that takes a kind at run time and forgets it again."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from surveyor.core import kinds
from surveyor.core.kinds import (
    Collector,
    ParamsContext,
    ParamsError,
    TaskKind,
    UnknownKind,
    ValidParams,
)
from surveyor.core.tasks import IllegalTransition, TaskStatus, TaskType, TransitionKind

S = TaskStatus
SITE = ParamsContext(
    site_scope="127.0.0.0/24", site_excludes="", scope_cap=65536, probe_cap=65536 * 1000
)


def no_params(params: Mapping[str, Any], _context: ParamsContext) -> ValidParams:
    return ValidParams(dict(params))


def chore(**fields: Any) -> TaskKind:
    """A kind nobody collects, like the system kinds; `fields` override."""
    declared: dict[str, Any] = {
        "type": "chore",
        "label": "Chore",
        "path": (S.NEW, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED),
        "collector": Collector.NOBODY,
        "processor": "chore",
        "params": no_params,
        "creatable": True,
    }
    return TaskKind(**{**declared, **fields})


@pytest.fixture
def registered_chore() -> Iterator[TaskKind]:
    kind = kinds.register(chore())
    yield kind
    kinds.unregister(kind.type)


def test_every_type_of_the_spec_has_a_kind_with_its_collector() -> None:
    collectors = {kind.type: kind.collector for kind in kinds.registered()}

    assert collectors == {
        "scan": Collector.EXPLORER,
        "connector": Collector.EXPLORER_OR_CONSOLE,
        "import": Collector.CONSOLE,
        "report": Collector.NOBODY,
        "outlier": Collector.NOBODY,
        "query": Collector.NOBODY,
        "retention": Collector.NOBODY,
    }
    assert set(collectors) == {str(task_type) for task_type in TaskType}


def test_each_part_of_the_pipeline_takes_the_types_it_took_before_kinds() -> None:
    assert kinds.launched_on_explorers() == ["scan"]
    assert kinds.pinned_to_explorers() == ["connector"]  # only on the explorer it names
    assert kinds.run_in_console() == ["connector"]  # ... or in the console
    assert kinds.launched_types() == ["connector", "scan"]  # canceled after their grace
    assert kinds.processed_types() == [
        "connector",
        "import",
        "outlier",
        "query",
        "report",
        "retention",
        "scan",
    ]
    # System kinds with a processor go to the queue once due; the others wait for theirs.
    assert kinds.queued_when_due() == ["outlier", "query", "report", "retention"]
    assert kinds.creatable_types() == ["connector", "scan"]


def test_a_scan_collects_on_an_explorer_and_probes_the_default_ports_unless_told() -> None:
    scan = kinds.kind_of("scan")

    assert scan.collecting is S.ACTIVE
    assert scan.param_defaults["tcp_ports"] == "default"
    assert kinds.kind_of("import").collecting is None


def test_a_kind_registered_at_run_time_is_known_everywhere_until_unregistered() -> None:
    kind = kinds.register(chore())
    try:
        assert kinds.kind_of("chore") is kind
        assert "chore" in kinds.queued_when_due()
        assert "chore" in kinds.processed_types()
        assert "chore" in kinds.creatable_types()
        assert "chore" not in kinds.launched_types()
        assert kinds.label_of("chore") == "Chore"
    finally:
        kinds.unregister("chore")

    assert kinds.find_kind("chore") is None
    assert "chore" not in kinds.queued_when_due()
    with pytest.raises(UnknownKind, match="chore"):
        kinds.check_transition("chore", template=False, current=S.NEW, requested=S.STOPPED)


def test_registering_the_same_kind_twice_is_harmless_but_another_of_that_type_is_refused(
    registered_chore: TaskKind,
) -> None:
    assert kinds.register(chore()) == registered_chore

    with pytest.raises(ValueError, match="already registered"):
        kinds.register(chore(label="Another chore"))
    assert kinds.kind_of("chore").label == "Chore"


def test_a_kind_nobody_collects_goes_straight_to_processing_and_stops_only_before(
    registered_chore: TaskKind,
) -> None:
    table = kinds.allowed_transitions("chore", template=False)

    assert table[(S.NEW, S.PROCESSING_QUEUED)] is TransitionKind.PROGRESS
    assert table[(S.NEW, S.STOPPED)] is TransitionKind.STOP
    assert not any(S.STOPPING in edge for edge in table)
    with pytest.raises(IllegalTransition):
        kinds.check_transition("chore", template=False, current=S.NEW, requested=S.ACTIVE)
    assert registered_chore.queued_when_due
    assert not registered_chore.launched


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"type": "Chore"}, "lower-case"),
        ({"type": ""}, "lower-case"),
        ({"path": (S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED)}, "from new"),
        ({"path": (S.NEW, S.PROCESSING_QUEUED, S.PROCESSING)}, "from new"),
        (
            {"path": (S.NEW, S.SCANNED, S.ACTIVE, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED)},
            "collecting status",
        ),
        ({"collector": Collector.EXPLORER}, "never collects"),
        (
            {"path": (S.NEW, S.ACTIVE, S.SCANNED, S.PROCESSING_QUEUED, S.PROCESSING, S.PROCESSED)},
            "someone must collect",
        ),
        ({"params": None}, "params check"),
    ],
)
def test_a_kind_that_cannot_work_is_refused_when_declared(
    fields: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        chore(**fields)


def test_scan_params_are_checked_and_normalized_by_the_scan_kind() -> None:
    validate = kinds.kind_of("scan").params
    assert validate is not None

    checked = validate({"targets": "127.0.0.1-127.0.0.3", "tcp_ports": "22,80"}, SITE)

    assert checked.params["scope_size"] == 3
    assert checked.params["tcp_ports"] == "22,80"
    assert checked.targets is not None
    assert checked.targets.text == "127.0.0.1-127.0.0.3"
    with pytest.raises(ParamsError) as refused:
        validate({"targets": "127.0.0.1", "tcp_ports": "22,99999"}, SITE)
    assert refused.value.field == "tcp_ports"
    assert refused.value.token == "99999"


def test_a_scan_is_summarised_by_its_targets_ports_and_rate() -> None:
    scan = kinds.kind_of("scan")
    task = {"params": {"targets": "127.0.0.0/30", "tcp_ports": "22", "rate": 50, "scope_size": 4}}

    assert scan.brief(task) == "127.0.0.0/30 · TCP 22 · 50 probes/s · 4 addresses"
    assert scan.outcome is None  # its change summary's counts say what processing did
    assert kinds.label_of("no-such-kind") == "No-such-kind"
