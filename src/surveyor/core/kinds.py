"""Task kinds: what each type of task is and does, declared once.

A kind says which statuses its tasks pass through (SPEC §2), who collects their data, how their
params are checked, which processing merges that data, and how a task is summarised in lists
and on its card. The launch rule, the scheduler, the processing queue, the API and the pages
ask the kind; none of them tests a type by name or keeps a list of types. Adding a kind is
declaring a `TaskKind` and registering it (docs/task-kinds.md).

Processing is named, not imported: `TaskKind.processor` names a processor that
`surveyor.processing` registers, so this pure core imports nothing above it. The registry can
change at run time (a test registers a kind of its own, and removes it afterwards); every
question is answered from the registry as it is when asked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from surveyor.core.scan_params import (
    DEFAULT_TCP_PORTS,
    ScanParamsError,
    scan_params_brief,
    validate_scan_params,
)
from surveyor.core.targets import EMPTY_TARGETS, TargetSet
from surveyor.core.tasks import (
    COLLECTING_STATUSES,
    PROCESSING_PATH,
    TEMPLATE_TRANSITIONS,
    IllegalTransition,
    TaskStatus,
    TaskType,
    TransitionKind,
    standard_transitions,
)

S = TaskStatus

#: The processor that merges task data records (SPEC §7) into the site's inventory.
INVENTORY_PROCESSOR = "inventory"


class Collector(StrEnum):
    """Who collects a kind's data before it is processed."""

    #: An explorer the launch rule chooses; it reports progress and uploads the data.
    EXPLORER = "explorer"
    #: The console: the data comes with the request that creates the task (an import), or a
    #: runner in the console collects it.
    CONSOLE = "console"
    #: There is nothing to collect: once due, the task goes straight to the processing queue.
    NOBODY = "nobody"


class ParamsError(ValueError):
    """Params a kind refuses: the params key at fault ("" for the whole), a message a user
    can act on, and the offending token when one is to blame."""

    def __init__(self, field: str, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.token = token


@dataclass(frozen=True)
class ParamsContext:
    """What a params validator may consult besides the params: the task's site (its scope
    and excludes) and the organization's caps on one task."""

    site_scope: str
    site_excludes: str
    scope_cap: int
    probe_cap: int


@dataclass(frozen=True)
class ValidParams:
    """Params as they will be stored. `targets` (minus `excludes`) is what the task will
    reach on the network, checked against the site's allowed scope; None when it reaches
    nothing there."""

    params: dict[str, Any]
    targets: TargetSet | None = None
    excludes: TargetSet = EMPTY_TARGETS


#: Checks a task's params (raising ParamsError) and returns them normalized.
ParamsValidator = Callable[[Mapping[str, Any], ParamsContext], ValidParams]
#: One line about a task (its row as stored, or as the API shows it); "" says nothing.
TaskBrief = Callable[[Mapping[str, Any]], str]
#: The source a task's params name (a connector's `connector`).
TaskSource = Callable[[Mapping[str, Any]], str]

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def no_brief(_task: Mapping[str, Any]) -> str:
    return ""


def params_brief(describe: Callable[[Mapping[str, Any]], str]) -> TaskBrief:
    """A brief of a task made from its params alone."""

    def brief(task: Mapping[str, Any]) -> str:
        return describe(task.get("params") or {})

    return brief


@dataclass(frozen=True)
class TaskKind:
    """One type of task: its statuses, collector, params, processing and summaries."""

    #: The API value (`type` of a task, SPEC §4), stored in `tasks.type`.
    type: str
    #: Its name in pages and the CLI ("Scan"); also names its collection ("Scan started").
    label: str
    #: Its statuses from `new` to `processed` (SPEC §2); the transition table follows.
    path: tuple[TaskStatus, ...]
    collector: Collector
    #: The name of the processor that processes its data (registered by `surveyor.processing`);
    #: None while nothing processes it (its tasks are never claimed).
    processor: str | None
    #: Checks and normalizes its params; None: it takes none.
    params: ParamsValidator | None = None
    #: Users create it with `POST /api/v1/tasks` (its `type`); other kinds are created by
    #: their own route (an import) or by the system.
    creatable: bool = False
    #: What its stored params mean when they leave a key out (a scan probes the default ports).
    param_defaults: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    #: What the task will do, in one line (lists and the card).
    brief: TaskBrief = no_brief
    #: What processing made of it, in one line; None: the change summary's counts.
    outcome: TaskBrief | None = None
    #: The `source` of its data's host records that name none (SPEC §9, "Sources"), from
    #: its params: `scan` for a scan; a connector's is the connector's name. None: its type.
    source: TaskSource | None = None
    #: Its data is what probing found (a scan, an import of scans): its params' `targets`
    #: are the scope that answers are kept from and silent assets go offline in, and known
    #: services on probed ports that did not answer are gone. False for what another
    #: system knows (a connector's directory, zone or ARP table): nothing is outside its
    #: scope, nothing goes offline and no service is gone for not being listed.
    probes: bool = True

    def default_source(self, params: Mapping[str, Any]) -> str:
        """The source of its host records that name none."""
        return self.source(params) if self.source is not None else self.type

    def __post_init__(self) -> None:
        if not _TYPE_NAME.fullmatch(self.type):
            raise ValueError(
                f"a kind's type is 1-40 lower-case letters, digits or _: {self.type!r}"
            )
        path = self.path
        if len(path) < 4 or path[0] is not S.NEW or path[-3:] != PROCESSING_PATH:
            raise ValueError(
                f"the kind '{self.type}' must go from new to processing_queued, processing, "
                f"processed; its path is {' → '.join(path)}"
            )
        collecting = path[1:-3]
        if collecting and (len(collecting) != 2 or collecting[0] not in COLLECTING_STATUSES):
            raise ValueError(
                f"the kind '{self.type}' collects between new and processing_queued with a "
                "collecting status and a collected one (active, scanned; connecting, connected)"
            )
        if self.collector is Collector.EXPLORER and not collecting:
            raise ValueError(f"the kind '{self.type}' runs on explorers but never collects")
        if self.collector is Collector.NOBODY and collecting:
            raise ValueError(f"the kind '{self.type}' collects, so someone must collect it")
        if self.creatable and self.params is None:
            raise ValueError(f"users create the kind '{self.type}', so it needs a params check")

    @property
    def collecting(self) -> TaskStatus | None:
        """The status while its collector works (`active` for a scan), None if nothing runs."""
        return self.path[1] if self.path[1] in COLLECTING_STATUSES else None

    @property
    def launched(self) -> bool:
        """A runner launches it: its tasks wait in `new` until an explorer or a runner in the
        console takes them, and are canceled when none has within their grace period."""
        return self.collecting is not None

    @property
    def queued_when_due(self) -> bool:
        """Nothing is collected and something processes it: once due, a task is queued."""
        return self.collector is Collector.NOBODY and self.processor is not None

    def transitions(self, *, template: bool) -> dict[tuple[TaskStatus, TaskStatus], TransitionKind]:
        """Its complete transition table (templates only pause and resume)."""
        return dict(TEMPLATE_TRANSITIONS if template else standard_transitions(self.path))


class UnknownKind(ValueError):
    """A task type no registered kind declares."""

    def __init__(self, task_type: str) -> None:
        super().__init__(f"there is no kind of task '{task_type}'")
        self.task_type = task_type


_registry: dict[str, TaskKind] = {}
_registry_lock = threading.Lock()


def register(kind: TaskKind) -> TaskKind:
    """Declare `kind` to every part of Surveyor; registering the same kind again is a no-op,
    a different kind of the same type is refused."""
    with _registry_lock:
        known = _registry.get(kind.type)
        if known is not None and known != kind:
            raise ValueError(f"another kind of task '{kind.type}' is already registered")
        _registry[kind.type] = kind
    return kind


def unregister(task_type: str) -> None:
    """Forget a kind (tasks of that type stay stored; nothing launches or processes them)."""
    with _registry_lock:
        _registry.pop(task_type, None)


def registered() -> tuple[TaskKind, ...]:
    """Every registered kind, in registration order."""
    with _registry_lock:
        return tuple(_registry.values())


def find_kind(task_type: str) -> TaskKind | None:
    return _registry.get(task_type)


def kind_of(task_type: str) -> TaskKind:
    """The kind of tasks of `task_type`; raises UnknownKind."""
    kind = _registry.get(task_type)
    if kind is None:
        raise UnknownKind(task_type)
    return kind


def label_of(task_type: str) -> str:
    """A type's name in words: its kind's label, or the type itself for an unknown one."""
    kind = _registry.get(task_type)
    return kind.label if kind is not None else task_type.capitalize()


def types_where(predicate: Callable[[TaskKind], bool]) -> list[str]:
    """The types of the registered kinds that satisfy `predicate`, sorted (for SQL)."""
    return sorted(kind.type for kind in registered() if predicate(kind))


def launched_on_explorers() -> list[str]:
    """Types the launch rule hands to explorers."""
    return types_where(lambda kind: kind.collector is Collector.EXPLORER)


def launched_types() -> list[str]:
    """Types that wait in `new` for a runner (canceled when none takes them in time)."""
    return types_where(lambda kind: kind.launched)


def queued_when_due() -> list[str]:
    """Types that go from `new` to the processing queue once due."""
    return types_where(lambda kind: kind.queued_when_due)


def processed_types() -> list[str]:
    """Types whose tasks the processing queue hands to workers."""
    return types_where(lambda kind: kind.processor is not None)


def creatable_types() -> list[str]:
    """Types users create through the task API."""
    return types_where(lambda kind: kind.creatable)


def allowed_transitions(
    task_type: str, *, template: bool
) -> dict[tuple[TaskStatus, TaskStatus], TransitionKind]:
    """The complete transition table of one type of task; raises UnknownKind."""
    return kind_of(task_type).transitions(template=template)


def check_transition(
    task_type: str, *, template: bool, current: TaskStatus, requested: TaskStatus
) -> TransitionKind:
    """Return the kind of an allowed transition or raise `IllegalTransition`."""
    path = kind_of(task_type).path
    table = TEMPLATE_TRANSITIONS if template else standard_transitions(path)
    transition = table.get((current, requested))
    if transition is None:
        raise IllegalTransition(current, requested)
    return transition


# The kinds Surveyor ships.


def _scan_params(params: Mapping[str, Any], context: ParamsContext) -> ValidParams:
    try:
        checked = validate_scan_params(
            params,
            default_targets=context.site_scope,
            default_excludes=context.site_excludes,
            scope_cap=context.scope_cap,
            probe_cap=context.probe_cap,
        )
    except ScanParamsError as exc:
        raise ParamsError(exc.field, exc.message, exc.token) from exc
    return ValidParams(checked.to_json(), targets=checked.targets, excludes=checked.excludes)


_PROCESSING_ONLY = (S.NEW, *PROCESSING_PATH)

SCAN = register(
    TaskKind(
        type=TaskType.SCAN.value,
        label="Scan",
        path=(S.NEW, S.ACTIVE, S.SCANNED, *PROCESSING_PATH),
        collector=Collector.EXPLORER,
        processor=INVENTORY_PROCESSOR,
        params=_scan_params,
        creatable=True,
        param_defaults=MappingProxyType({"tcp_ports": DEFAULT_TCP_PORTS}),
        brief=params_brief(scan_params_brief),
    )
)


def _connector_source(params: Mapping[str, Any]) -> str:
    """A connector run's records come from the connector its params name."""
    name = params.get("connector")
    return name if isinstance(name, str) and name else TaskType.CONNECTOR.value


#: Nothing creates connector runs yet, nor runs them; the data they will upload is merged
#: like a scan's, except that it probed nothing (`probes`).
CONNECTOR = register(
    TaskKind(
        type=TaskType.CONNECTOR.value,
        label="Connector run",
        path=(S.NEW, S.CONNECTING, S.CONNECTED, *PROCESSING_PATH),
        collector=Collector.CONSOLE,
        processor=INVENTORY_PROCESSOR,
        source=_connector_source,
        probes=False,
    )
)
#: An uploaded file of task data (`POST /api/v1/imports`), queued as it is created.
IMPORT = register(
    TaskKind(
        type=TaskType.IMPORT.value,
        label="Import",
        path=_PROCESSING_ONLY,
        collector=Collector.CONSOLE,
        processor=INVENTORY_PROCESSOR,
    )
)
#: The system kinds (SPEC §10): their paths are SPEC §2's; nothing processes them yet, so
#: their tasks wait in `new`.
REPORT, OUTLIER, QUERY, RETENTION = (
    register(
        TaskKind(
            type=task_type.value,
            label=label,
            path=_PROCESSING_ONLY,
            collector=Collector.NOBODY,
            processor=None,
        )
    )
    for task_type, label in (
        (TaskType.REPORT, "Report"),
        (TaskType.OUTLIER, "Outlier calculation"),
        (TaskType.QUERY, "Query"),
        (TaskType.RETENTION, "Retention"),
    )
)
