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

from surveyor.core import retention
from surveyor.core.field_error import FieldError
from surveyor.core.scan_params import (
    DEFAULT_TCP_PORTS,
    ScanParamsError,
    scan_params_brief,
    validate_scan_params,
)
from surveyor.core.targets import (
    EMPTY_TARGETS,
    TargetError,
    TargetSet,
    build_scope,
    check_scope_cap,
    parse_targets,
)
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
#: The processor that scores a site's assets for how unusual they are (an Outlier calculation).
OUTLIER_PROCESSOR = "outlier"
#: The processor that applies an organization's retention (a Retention run).
RETENTION_PROCESSOR = "retention"
#: The processor that computes and stores a report (processing/reports.py).
REPORT_PROCESSOR = "report"
#: The processor that counts what an organization's pinned queries find (a Query task).
QUERY_PROCESSOR = "query"


class Collector(StrEnum):
    """Who collects a kind's data before it is processed."""

    #: An explorer the launch rule chooses; it reports progress and uploads the data.
    EXPLORER = "explorer"
    #: The console: the data comes with the request that creates the task (an import), or a
    #: runner in the console collects it.
    CONSOLE = "console"
    #: The explorer the task names, when it names one (the system it reads is reachable only
    #: from inside the network); a runner in the console when it names none.
    EXPLORER_OR_CONSOLE = "explorer_or_console"
    #: There is nothing to collect: once due, the task goes straight to the processing queue.
    NOBODY = "nobody"


class ParamsError(FieldError):
    """Params a kind refuses: the params key at fault ("" for the whole), a message a user
    can act on, and the offending token when one is to blame."""


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
    #: The credential the task will use (its id) and the credential kind it must be, checked
    #: against the organization's credentials when the task is created or edited.
    credential: tuple[int, str] | None = None


#: Checks a task's params (raising ParamsError) and returns them normalized.
ParamsValidator = Callable[[Mapping[str, Any], ParamsContext], ValidParams]
#: One line about a task (its row as stored, or as the API shows it); "" says nothing.
TaskBrief = Callable[[Mapping[str, Any]], str]
#: The source a task's params name (a connector's `connector`).
TaskSource = Callable[[Mapping[str, Any]], str]

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: The collectors that launch a task on a runner (an explorer, or the console's own).
_RUNNERS = frozenset({Collector.EXPLORER, Collector.EXPLORER_OR_CONSOLE})


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
    #: Its params' `targets` (minus `excludes`) bound its data: host records outside them are
    #: ignored, and silent assets inside them go offline (a scan). False: its `targets`, if
    #: any, say where to read from, not what the answers cover (an SNMP connector run learns
    #: of neighbours beyond the devices it asks, and marks nothing offline). Such data tells
    #: what another system knows, not what probing found: it probed no port either, so no
    #: known service is gone for not being listed.
    scope_from_targets: bool = True
    #: What the task will do, in one line (lists and the card).
    brief: TaskBrief = no_brief
    #: What processing made of it, in one line; None: the change summary's counts.
    outcome: TaskBrief | None = None
    #: The `source` of its data's host records that name none (SPEC §9, "Sources"), from
    #: its params: `scan` for a scan; a connector's is the connector's name. None: its type.
    source: TaskSource | None = None

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
        if self.collector in _RUNNERS and not collecting:
            raise ValueError(f"the kind '{self.type}' has a runner but never collects")
        if self.collector is Collector.NOBODY and collecting:
            raise ValueError(f"the kind '{self.type}' collects, so someone must collect it")
        if self.creatable and self.params is None:
            raise ValueError(f"users create the kind '{self.type}', so it needs a params check")

    @property
    def collecting(self) -> TaskStatus | None:
        """The status while its collector works (`active` for a scan), None if nothing runs."""
        return self.path[1] if self.path[1] in COLLECTING_STATUSES else None

    @property
    def collected(self) -> TaskStatus | None:
        """The status once its collector is done and the data is on its way (`scanned`)."""
        return self.path[2] if self.collecting is not None else None

    def runs_on_explorer(self, explorer_id: int | None, hosted_zone_id: int | None) -> bool:
        """Whether a task of this kind with this runner is collected by an explorer."""
        if self.collector is Collector.EXPLORER:
            return True
        if self.collector is Collector.EXPLORER_OR_CONSOLE:
            return explorer_id is not None
        return False

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
    """Types the launch rule hands to any explorer that may run them (scans)."""
    return types_where(lambda kind: kind.collector is Collector.EXPLORER)


def pinned_to_explorers() -> list[str]:
    """Types that run on an explorer only when the task names it (connector runs); with no
    explorer named, the console runs them (`run_in_console`)."""
    return types_where(lambda kind: kind.collector is Collector.EXPLORER_OR_CONSOLE)


def run_in_console() -> list[str]:
    """Types the console's own runner collects when the task names no explorer."""
    return pinned_to_explorers()


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


#: Checks one connector's own options (raising ValueError naming the option) and returns
#: them with defaults filled in. `surveyor.connectors` registers one per connector, so this
#: pure core never imports a connector.
ConnectorOptionsCheck = Callable[[Mapping[str, Any]], dict[str, Any]]
_connector_options: dict[str, tuple[ConnectorOptionsCheck, str]] = {}
#: Params every connector run has; the rest are the connector's options (SPEC §9).
_CONNECTOR_KEYS = ("connector", "credential_id", "server")
_SERVER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?")


def register_connector_options(
    name: str, check: ConnectorOptionsCheck, credential_kind: str
) -> None:
    """Make a connector known to the params check of connector runs: how its options are
    checked, and the kind of credential it reads."""
    with _registry_lock:
        _connector_options[name] = (check, credential_kind)


def unregister_connector_options(name: str) -> None:
    with _registry_lock:
        _connector_options.pop(name, None)


def connector_option_names() -> list[str]:
    with _registry_lock:
        return sorted(_connector_options)


def _connector_params(params: Mapping[str, Any], context: ParamsContext) -> ValidParams:
    name = params.get("connector")
    with _registry_lock:
        found = _connector_options.get(name) if isinstance(name, str) else None
        known = ", ".join(sorted(_connector_options)) or "none"
    if found is None:
        shown = f"{name!r}" if isinstance(name, str) else "missing"
        raise ParamsError("connector", f"connector is {shown}; choose one of: {known}")
    credential = params.get("credential_id")
    if type(credential) is not int or credential < 1:
        raise ParamsError("credential_id", "credential_id must be the id of a credential")
    server = params.get("server")
    if not isinstance(server, str) or not server.strip():
        raise ParamsError("server", "server is required: host or host:port of the system to read")
    server = server.strip()
    address = _SERVER.fullmatch(server)
    if address is None or len(server) > 255:
        raise ParamsError("server", f"server {server!r} is not host or host:port", server)
    if address.group(1) is not None and not 1 <= int(address.group(1)) <= 65535:
        raise ParamsError("server", f"the port of {server!r} must be from 1 to 65535", server)
    check, credential_kind = found
    options = {key: value for key, value in params.items() if key not in _CONNECTOR_KEYS}
    try:
        checked = check(options)
    except ValueError as exc:
        raise ParamsError("", f"{name} connector: {exc}") from exc
    targets = None
    if "targets" in checked:
        try:
            targets = parse_targets(checked["targets"])
            check_scope_cap(build_scope(targets), context.scope_cap)
        except TargetError as exc:
            raise ParamsError("targets", str(exc), exc.token) from exc
    return ValidParams(
        {"connector": name, "credential_id": credential, "server": server, **checked},
        targets=targets,
        credential=(credential, credential_kind),
    )


def _connector_brief(params: Mapping[str, Any]) -> str:
    name = params.get("connector") or "connector"
    server = params.get("server") or ""
    return f"{str(name).upper()} from {server}" if server else str(name).upper()


#: A connector run reads another system (a directory, a DNS zone, a switch) on the explorer
#: it names, or in the console when it names none; its data is merged like a scan's.
CONNECTOR = register(
    TaskKind(
        type=TaskType.CONNECTOR.value,
        label="Connector run",
        path=(S.NEW, S.CONNECTING, S.CONNECTED, *PROCESSING_PATH),
        collector=Collector.EXPLORER_OR_CONSOLE,
        processor=INVENTORY_PROCESSOR,
        params=_connector_params,
        creatable=True,
        scope_from_targets=False,
        source=_connector_source,
        brief=params_brief(_connector_brief),
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


def _outlier_outcome(task: Mapping[str, Any]) -> str:
    stats = task.get("stats") or {}
    if "assets" not in stats:
        return ""
    return f"{stats['assets']} assets scored · highest {stats.get('highest', 0)}"


def _retention_outcome(task: Mapping[str, Any]) -> str:
    return retention.outcome_brief(task.get("stats") or {})


def _report_outcome(task: Mapping[str, Any]) -> str:
    """A report task's first summary figures ("6 assets · 5 online · 1 offline")."""
    stats = task.get("stats") or {}
    return " · ".join(f"{value} {str(label).lower()}" for label, value in list(stats.items())[:3])


_OUTCOMES: dict[str, TaskBrief] = {
    OUTLIER_PROCESSOR: _outlier_outcome,
    RETENTION_PROCESSOR: _retention_outcome,
    REPORT_PROCESSOR: _report_outcome,
}


#: The system kinds (SPEC §10): their paths are SPEC §2's. A kind with no processor yet
#: waits in `new`.
REPORT, OUTLIER, QUERY, RETENTION = (
    register(
        TaskKind(
            type=task_type.value,
            label=label,
            path=_PROCESSING_ONLY,
            collector=Collector.NOBODY,
            processor=processor,
            outcome=_OUTCOMES.get(processor or ""),
        )
    )
    for task_type, label, processor in (
        # Computes and stores the report its params name (processing/reports.py).
        (TaskType.REPORT, "Report", REPORT_PROCESSOR),
        # Scores a site's assets (processing/outliers.py), queued when its inventory changes.
        (TaskType.OUTLIER, "Outlier calculation", OUTLIER_PROCESSOR),
        # Counts the pinned queries (processing/queries.py), queued after each processing.
        (TaskType.QUERY, "Query", QUERY_PROCESSOR),
        # Deletes old task data and marks unseen assets stale (processing/retention.py), daily.
        (TaskType.RETENTION, "Retention", RETENTION_PROCESSOR),
    )
)
