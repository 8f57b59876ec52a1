"""Reading task data (SPEC §7): gzip or plain JSONL, checked record by record.

A file is a `config` record, one `host` record per answering host, and a `summary` record.
`survey` reads the whole file once before anything is merged: it checks every record (an
error names the line), counts the host records and learns how each MAC was used, so that
the merge that follows never stops half way on bad data. `answers` then reads the file again
and yields what each host record means for the merge.

What the data says about its own scope (the `config` record's targets) is checked but never
trusted: the scope that filters host records and bounds offline marking is the one the
console stored for the task (`task_scope`), passed in by the merge. The ports the data says
it probed are trusted no further: a task that stored its ports (a scan) probed at most those
(`task_ports`), so data claiming more cannot make known services on other ports gone.

Memory does not grow with the file: it is read within the task data limits, the parsed host
records wait in a spool file, and what is learned of MACs in a temporary SQLite file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import marshal
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from surveyor.core.fingerprint import (
    NO_DETAILS,
    FingerprintError,
    HostDetails,
    IgnoreReason,
    MacUse,
    MacVerdict,
    Observation,
    Service,
    answers_every_port,
    judge_mac,
    merge_observations,
    normalize_address,
    normalize_hostname,
    normalize_mac,
    primary_address,
    service_name,
    service_signature,
    sort_addresses,
    without_mac,
)
from surveyor.core.identify import (
    STACK_ATTRIBUTE,
    Identification,
    ServiceIdentity,
    identify_answer,
    identify_cached,
    service_product,
    stack_text,
)
from surveyor.core.jsonl_limits import DEFAULT_LIMITS, JsonlLimits, LimitExceeded
from surveyor.core.ports import PortError, parse_ports
from surveyor.core.targets import Scope, TargetError, build_scope, parse_targets
from surveyor.store.taskdata import NotJson, Unreadable, create_temp_file, task_data_values

MAX_BANNER = 2048
MAX_SHORT_TEXT = 200
MAX_LONG_TEXT = 1000
#: Bounds on the optional host fields (SPEC §7): tags and attributes of one host.
MAX_TAGS = 50
MAX_TAG = 100
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME = 100
MAX_ATTRIBUTE_VALUE = 1000
MAX_CPES = 20
#: `scan`, `ldap`, `import:nmap`, ...: lower-case letters, digits and `:._-`.
MAX_SOURCE = 40
_SOURCE = re.compile(r"[a-z0-9][a-z0-9:._-]*")
RECORD_TYPES = ("config", "host", "summary")


class TaskDataError(ValueError):
    """Task data that cannot be merged; `line` is the 1-based line at fault, when one is,
    and `exceeded` the limit it is over, when that is the problem."""

    def __init__(
        self, message: str, line: int | None = None, *, exceeded: LimitExceeded | None = None
    ) -> None:
        self.line = line
        self.problem = message
        self.exceeded = exceeded
        super().__init__(f"line {line}: {message}" if line is not None else message)

    @classmethod
    def over_limit(cls, exceeded: LimitExceeded) -> TaskDataError:
        problem = f"{exceeded.problem} (the limit {exceeded.setting})"
        return cls(problem, exceeded.line, exceeded=exceeded)


@dataclass(frozen=True)
class ScanConfig:
    """What merging uses of the `config` record: the ports the scan probed (among those
    its task asked for, `asked`) and when it started."""

    #: (proto, port) pairs probed; None when neither the task nor the data says.
    probed: frozenset[tuple[str, int]] | None = None
    started_at: datetime | None = None

    @property
    def probed_count(self) -> int | None:
        return len(self.probed) if self.probed is not None else None

    def asked(self, ports: frozenset[tuple[str, int]] | None) -> ScanConfig:
        """What was probed, given the ports the task asked for (None: it stored none): those
        the data says it probed among them, or all of them when the data does not say."""
        if ports is None:
            return self
        probed = ports if self.probed is None else ports & self.probed
        return ScanConfig(probed, self.started_at)


@dataclass(frozen=True)
class Survey:
    """What a first read of a whole file found: enough to merge it in any order of batches.

    Its temporary files go when it is used as a context manager, or by `discard`.
    """

    config: ScanConfig
    host_records: int
    finished_at: datetime | None
    #: False when the summary says the scan was stopped (`stopped` or `partial`): the data
    #: does not cover its scope, so what did not answer may not have been asked.
    complete: bool = True
    #: The task's own scope (targets minus excludes, as the console stored them): host
    #: records outside it are ignored. None: the task has no scope (an import).
    scope: Scope | None = None
    #: How the MACs of the file were used (None when no record has a MAC).
    macs: MacTable | None = None
    #: The parsed host records, kept for the merge so it need not parse the file again.
    spool: Spool | None = None
    #: The limits the file was read within (and is read again within, without a spool).
    limits: JsonlLimits = DEFAULT_LIMITS

    @property
    def observed_at(self) -> datetime | None:
        return self.finished_at or self.config.started_at

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()
        if self.macs is not None:
            self.macs.discard()

    def __enter__(self) -> Survey:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.discard()


class Spool:
    """Parsed host records in a temporary file (marshal), from the survey to the merge."""

    def __init__(self, folder: Path) -> None:
        fd, self.path = create_temp_file(folder, prefix=".spool-", suffix=".tmp")
        # Held open (and so locked) until discarded, so no starting console removes it.
        self._out: BinaryIO = open(fd, "wb", buffering=1 << 20)  # noqa: SIM115
        self.count = 0

    def add(self, observation: Observation) -> None:
        packed = marshal.dumps(_pack(observation))
        self._out.write(len(packed).to_bytes(4, "little"))
        self._out.write(packed)
        self.count += 1

    def finish(self) -> None:
        self._out.flush()

    def read(self, *, skip: int = 0) -> Iterator[Observation]:
        """The records in file order, after the first `skip`."""
        with self.path.open("rb", buffering=1 << 20) as spooled:
            for index in range(self.count):
                size = int.from_bytes(spooled.read(4), "little")
                if index < skip:
                    spooled.seek(size, 1)
                    continue
                yield _unpack(marshal.loads(spooled.read(size)))  # noqa: S302 (our own file)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class MacTable:
    """The MACs of a file's host records, in a temporary SQLite file, from the survey to the
    merge: how many records carry each MAC and whether they all show the same services, then
    the verdict on each repeated MAC and, for a host that answered on several addresses, its
    records merged into one observation."""

    _BATCH = 10_000

    def __init__(self, folder: Path) -> None:
        # The descriptor holds the lock that keeps a starting console from removing the file.
        self._lock, self.path = create_temp_file(folder, prefix=".macs-", suffix=".tmp")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-8192"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(
            """
            CREATE TABLE uses (mac TEXT PRIMARY KEY, records INTEGER NOT NULL,
                               signature INTEGER NOT NULL, one_face INTEGER NOT NULL)
                WITHOUT ROWID;
            CREATE TABLE parts (mac TEXT NOT NULL, line INTEGER NOT NULL, packed BLOB NOT NULL,
                                PRIMARY KEY (mac, line)) WITHOUT ROWID;
            CREATE TABLE verdicts (mac TEXT PRIMARY KEY, verdict TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE merged (mac TEXT PRIMARY KEY, packed BLOB NOT NULL) WITHOUT ROWID;
            """
        )
        self._uses: list[tuple[str, int]] = []
        self._parts: list[tuple[str, int, bytes]] = []

    def add(self, observation: Observation) -> None:
        """Note a host record that carries a MAC."""
        assert observation.mac is not None
        signature = hash(service_signature(observation.services))
        self._uses.append((observation.mac, signature))
        self._parts.append((observation.mac, observation.line, marshal.dumps(_pack(observation))))
        if len(self._uses) >= self._BATCH:
            self._flush()

    def _write(self, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(statement, rows)
        self._db.execute("COMMIT")

    def _flush(self) -> None:
        # A MAC keeps its first signature; one_face stays 1 while every record matches it.
        self._write(
            "INSERT INTO uses VALUES (?1, 1, ?2, 1) ON CONFLICT (mac) DO UPDATE SET "
            "records = records + 1, one_face = one_face AND signature = excluded.signature",
            self._uses,
        )
        self._write("INSERT INTO parts VALUES (?, ?, ?)", self._parts)
        self._uses.clear()
        self._parts.clear()

    def judge(self) -> None:
        """Judge every repeated MAC, and merge the records of each that names one host."""
        self._flush()
        repeated = self._db.execute("SELECT mac, records, one_face FROM uses WHERE records > 1")
        while rows := repeated.fetchmany(self._BATCH):
            verdicts = [(mac, judge_mac(MacUse(n, bool(face))).value) for mac, n, face in rows]
            self._write("INSERT INTO verdicts VALUES (?, ?)", verdicts)
        parts = self._db.execute(
            "SELECT parts.mac, parts.packed FROM parts JOIN verdicts USING (mac) "
            "WHERE verdicts.verdict = ? ORDER BY parts.mac, parts.line",
            (MacVerdict.IDENTITY.value,),
        )
        hosts = (
            (mac, merge_observations([_unpack(marshal.loads(packed)) for _, packed in group]))  # noqa: S302
            for mac, group in itertools.groupby(parts, key=lambda row: row[0])
        )
        while batch := list(itertools.islice(hosts, self._BATCH)):
            packed = [(mac, marshal.dumps(_pack(host))) for mac, host in batch]
            self._write("INSERT INTO merged VALUES (?, ?)", packed)

    def verdict(self, mac: str) -> tuple[MacVerdict, Observation | None]:
        """The verdict on a MAC (a MAC of one record names its host) and, for a host that
        answered on several addresses, its merged observation."""
        found = self._db.execute(
            "SELECT verdict, packed FROM verdicts LEFT JOIN merged USING (mac) WHERE mac = ?",
            (mac,),
        ).fetchone()
        if found is None:
            return MacVerdict.IDENTITY, None
        verdict, packed = found
        merged = _unpack(marshal.loads(packed)) if packed is not None else None  # noqa: S302
        return MacVerdict(verdict), merged

    def discard(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._lock)


def _pack(observation: Observation) -> tuple[Any, ...]:
    details = observation.details
    return (
        observation.line,
        observation.addresses,
        observation.mac,
        observation.hostnames,
        observation.os,
        tuple(tuple(s) for s in observation.services),
        observation.services_truncated,
        observation.source,
        None
        if details is None
        else (
            details.mac_vendor,
            details.os_accuracy,
            details.os_version,
            details.device_type,
            details.description,
            details.tags,
            details.attributes,
            details.seen_by,
        ),
        observation.uptime_seconds,
        observation.distance,
        observation.lists_services,
    )


#: `Service(*values)` without the Python-level `__new__` of a named tuple.
_new_service = functools.partial(tuple.__new__, Service)


def _unpack(packed: tuple[Any, ...]) -> Observation:
    (
        line,
        addresses,
        mac,
        hostnames,
        os_name,
        packed_services,
        truncated,
        source,
        details,
        uptime,
        distance,
        lists_services,
    ) = packed
    return Observation(
        addresses=addresses,
        mac=mac,
        hostnames=hostnames,
        services=tuple(map(_new_service, packed_services)),
        os=os_name,
        line=line,
        services_truncated=truncated,
        source=source,
        details=None if details is None else HostDetails(*details),
        uptime_seconds=uptime,
        distance=distance,
        lists_services=lists_services,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """One host record, as the merge takes it.

    `observation` is None when the record's host was already merged with an earlier record
    of the same MAC; `ignored` says why a bogus answer is dropped.
    """

    line: int
    observation: Observation | None = None
    ignored: IgnoreReason | None = None
    address: str = ""


def read_records(
    path: Path, limits: JsonlLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line, gzip or plain, read within `limits`;
    malformed lines and data over the limits raise TaskDataError."""
    try:
        for number, record in task_data_values(path, limits):
            if not isinstance(record, dict):
                raise TaskDataError("a record must be a JSON object", number)
            kind = record.get("type")
            if kind not in RECORD_TYPES:
                raise TaskDataError(
                    f"'type' must be one of {', '.join(RECORD_TYPES)}, not {kind!r}", number
                )
            yield number, record
    except NotJson as exc:
        raise TaskDataError(f"not valid JSON ({exc})", exc.line) from None
    except LimitExceeded as exc:
        raise TaskDataError.over_limit(exc) from None
    except Unreadable as exc:
        raise TaskDataError(
            f"the file is not complete gzip or text ({exc})", exc.after + 1 if exc.after else None
        ) from None


def survey(
    path: Path,
    *,
    spool_in: Path | None = None,
    scope: Scope | None = None,
    ports: frozenset[tuple[str, int]] | None = None,
    limits: JsonlLimits = DEFAULT_LIMITS,
) -> Survey:
    """Check every record of the file and gather what merging needs; raises TaskDataError.

    With `spool_in`, the parsed host records are kept in a temporary file in that folder
    for `answers`. What is learned of MACs waits in a temporary file in that folder (else
    beside the file). The caller discards the survey (or uses it as a context manager).
    The file is read within `limits`. With `scope`, host records outside it count for
    nothing but the record count: `answers` marks them ignored. With `ports` (the task's,
    `task_ports`), the config record's ports count only among them.
    """
    config: ScanConfig | None = None
    summary = Summary()
    summary_line: int | None = None
    hosts = 0
    spool = Spool(spool_in) if spool_in is not None else None
    macs: MacTable | None = None
    try:
        for line, record in read_records(path, limits):
            kind = record["type"]
            if summary_line is not None:
                raise TaskDataError(
                    f"a '{kind}' record follows the summary (line {summary_line}); "
                    "the summary must be the last record",
                    line,
                )
            if config is None:
                if kind != "config":
                    raise TaskDataError(f"the first record must be 'config', not '{kind}'", line)
                config = parse_config(record, line).asked(ports)
                continue
            if kind == "config":
                raise TaskDataError("a second 'config' record; a file holds one scan", line)
            if kind == "summary":
                summary = parse_summary(record, line)
                if summary.hosts is not None and summary.hosts != hosts:
                    raise TaskDataError(
                        f"the summary counts {summary.hosts} hosts but the file holds {hosts}; "
                        "it may be incomplete",
                        line,
                    )
                summary_line = line
                continue
            observation = parse_host(record, line)
            hosts += 1
            if spool is not None:
                spool.add(observation)
            if observation.mac is not None and in_scope(observation, scope):
                if macs is None:
                    macs = MacTable(spool_in or path.parent)
                macs.add(observation)
        if config is None:
            raise TaskDataError("the file holds no records")
        if summary_line is None:
            raise TaskDataError("the file ends without its 'summary' record; it may be incomplete")
        if spool is not None:
            spool.finish()
        if macs is not None:
            macs.judge()
    except BaseException:
        if spool is not None:
            spool.discard()
        if macs is not None:
            macs.discard()
        raise
    return Survey(
        config,
        hosts,
        summary.finished_at,
        complete=summary.complete,
        scope=scope,
        macs=macs,
        spool=spool,
        limits=limits,
    )


def in_scope(observation: Observation, scope: Scope | None) -> bool:
    """Whether a host record belongs to the scope: one of its addresses, or one of its
    names (a hostname target), is in it. Everything is in scope when there is none."""
    if scope is None:
        return True
    return any(scope.contains(a) for a in observation.addresses) or any(
        scope.contains(name) for name in observation.hostnames
    )


def task_scope(params: Mapping[str, Any]) -> Scope | None:
    """The scope of a task as the console stored it: its params' targets minus excludes
    (resolved at creation, the site's excludes included). None when it has no targets: an
    import, or a connector that reads a directory rather than a range."""
    targets = params.get("targets")
    if not targets:
        return None
    try:
        return build_scope(
            parse_targets(targets, ipv6_min_prefix=None),
            parse_targets(params.get("excludes") or "", field="excludes", ipv6_min_prefix=None),
        )
    except TargetError as exc:
        raise TaskDataError(f"the task's own {exc.field} cannot be read: {exc.message}") from None


def task_ports(
    params: Mapping[str, Any], *, defaults: Mapping[str, Any]
) -> frozenset[tuple[str, int]] | None:
    """The ports a task asked to probe, as the console stored them: its params'
    `tcp_ports`, or its kind's default when they leave them out (`defaults`: a scan probes
    the default list). None when it has neither (an import): then the data's own config
    record says what was probed."""
    ports = params.get("tcp_ports")
    if ports in (None, "", []):
        ports = defaults.get("tcp_ports")
    if ports in (None, "", []):
        return None
    try:
        return frozenset(("tcp", port) for port in parse_ports(ports))
    except PortError as exc:
        raise TaskDataError(f"the task's own tcp_ports cannot be read: {exc.message}") from None


def _observations(
    path: Path, spool: Spool | None, limits: JsonlLimits, *, skip: int = 0
) -> Iterator[Observation]:
    if spool is not None:
        yield from spool.read(skip=skip)
        return
    index = 0
    for line, record in read_records(path, limits):
        if record["type"] == "host":
            index += 1
            if index > skip:
                yield parse_host(record, line)


def answers(path: Path, surveyed: Survey, *, skip: int = 0) -> Iterator[Answer]:
    """What each host record means for the merge, in file order, after the first `skip`."""
    for observation in _observations(path, surveyed.spool, surveyed.limits, skip=skip):
        yield answer_for(observation, surveyed)


def answer_for(observation: Observation, surveyed: Survey) -> Answer:
    """Apply the task-wide verdicts (outside the task's scope, bogus answers, shared MACs,
    multi-address hosts). A host known by name only is listed by its name."""
    address = primary_address(observation.addresses)
    if not in_scope(observation, surveyed.scope):
        return Answer(observation.line, ignored=IgnoreReason.OUT_OF_SCOPE, address=address)
    if answers_every_port(observation, surveyed.config.probed_count):
        return Answer(observation.line, ignored=IgnoreReason.EVERY_PORT, address=address)
    mac = observation.mac
    if mac is not None and surveyed.macs is not None:
        verdict, merged = surveyed.macs.verdict(mac)
        if verdict is MacVerdict.BOGUS:
            return Answer(observation.line, ignored=IgnoreReason.SHARED_MAC, address=address)
        if verdict is MacVerdict.NOT_IDENTITY:
            observation = without_mac(observation)
        elif merged is not None:
            if merged.line != observation.line:
                return Answer(observation.line, address=address)
            observation = merged
    return Answer(observation.line, observation=observation, address=address)


def parse_time(value: object, what: str, line: int) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TaskDataError(f"'{what}' must be an RFC 3339 time", line)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TaskDataError(f"'{what}' is not an RFC 3339 time: {value!r}", line) from None
    if parsed.tzinfo is None:
        raise TaskDataError(f"'{what}' has no time zone: {value!r}", line)
    return parsed


def parse_config(record: Mapping[str, Any], line: int) -> ScanConfig:
    """The probed ports of a `config` record, whose targets and excludes must be valid."""
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    assert isinstance(params, dict)
    targets = record.get("targets", params.get("targets"))
    excludes = record.get("excludes", params.get("excludes")) or ""
    if targets:
        try:
            build_scope(
                parse_targets(targets, ipv6_min_prefix=None),
                parse_targets(excludes, field="excludes", ipv6_min_prefix=None),
            )
        except TargetError as exc:
            raise TaskDataError(f"config {exc.field}: {exc.message}", line) from None
    ports = record.get("ports", params.get("tcp_ports"))
    probed: frozenset[tuple[str, int]] | None = None
    if ports not in (None, "", []):
        try:
            probed = frozenset(("tcp", port) for port in parse_ports(ports))
        except PortError as exc:
            raise TaskDataError(f"config ports: {exc.message}", line) from None
    return ScanConfig(probed, parse_time(record.get("started_at"), "started_at", line))


@dataclass(frozen=True)
class Summary:
    """What the `summary` record says: when the scan ended, how many hosts it wrote, and
    whether it covered its whole scope (a stopped scan, or data marked partial, did not)."""

    finished_at: datetime | None = None
    hosts: int | None = None
    complete: bool = True


def parse_summary(record: Mapping[str, Any], line: int) -> Summary:
    finished = None
    for key in ("finished_at", "ended_at"):
        finished = finished or parse_time(record.get(key), key, line)
    hosts = record.get("hosts")
    if type(hosts) is not int:
        hosts = None
    partial = record.get("stopped") is True or record.get("partial") is True
    return Summary(finished, hosts, not partial)


def clean_text(value: object, what: str, line: int, limit: int, where: str = "") -> str:
    """Text any database can store: NUL and unpaired surrogates replaced, length bounded.

    Errors name the field as `where` + `what`.
    """
    if value is None:
        return ""
    if type(value) is not str:
        raise TaskDataError(f"'{where}{what}' must be text", line)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value if len(value) <= limit else value[:limit]


def _list(value: object, what: str, line: int) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise TaskDataError(f"'{what}' must be a list", line)
    return value


_NOTHING: Mapping[str, Any] = {}
_HEX = frozenset("0123456789abcdef")


def parse_host(record: Mapping[str, Any], line: int) -> Observation:
    """A `host` record as a normalized observation; raises TaskDataError naming the field.

    A record needs an address, or at least one host name (a directory's computer whose
    name does not resolve): then it is a host known by name only.
    """
    raw_addresses = _list(record.get("addresses"), "addresses", line)
    addresses = []
    for position, value in enumerate(raw_addresses):
        if type(value) is not str:
            raise TaskDataError(f"addresses[{position}] must be text", line)
        try:
            addresses.append(normalize_address(value))
        except FingerprintError as exc:
            raise TaskDataError(f"addresses[{position}]: {exc}", line) from None
    mac = record.get("mac")
    if mac is not None:
        if type(mac) is not str:
            raise TaskDataError("'mac' must be text or null", line)
        try:
            mac = normalize_mac(mac) if mac.strip() else None
        except FingerprintError as exc:
            raise TaskDataError(f"mac: {exc}", line) from None
    names = set()
    for position, value in enumerate(_list(record.get("hostnames"), "hostnames", line)):
        if type(value) is not str:
            raise TaskDataError(f"hostnames[{position}] must be text", line)
        try:
            names.add(normalize_hostname(value))
        except FingerprintError:
            continue  # a reverse-DNS answer that is no host name identifies nothing
    if not addresses and not names:
        raise TaskDataError(
            "a host record needs at least one address in 'addresses', or a host name in "
            "'hostnames'",
            line,
        )
    raw_services = record.get("services")
    services: dict[tuple[str, int], Service] = {}
    for position, value in enumerate(_list(raw_services, "services", line)):
        service = parse_service(value, position, line)
        if service.key in services:
            raise TaskDataError(
                f"services[{position}]: {service.proto}/{service.port} is listed twice", line
            )
        services[service.key] = service
    ordered = tuple(services[key] for key in sorted(services))
    os_name = clean_text(record.get("os"), "os", line, MAX_SHORT_TEXT)
    details = parse_details(record, line)
    stack = parse_stack(record.get("tcp_stack"), line)
    if stack:
        details = _with_stack(details, stack)
    if not os_name and ordered:
        found = identify_cached(ordered, stack)
        os_name = found.os
        details = _with_identity(details, found)
    truncated = record.get("services_truncated")
    if truncated is None:
        truncated = 0
    elif type(truncated) is not int or truncated < 0:
        raise TaskDataError("'services_truncated' must be a whole number, 0 or more", line)
    source = record.get("source")
    if source is not None:
        source = parse_source(source, line)
    return Observation(
        addresses=sort_addresses(addresses) if len(addresses) > 1 else tuple(addresses),
        mac=mac,
        hostnames=tuple(sorted(names)),
        services=ordered,
        os=os_name,
        line=line,
        services_truncated=truncated,
        source=source or "",
        details=details,
        uptime_seconds=_whole(record.get("uptime_seconds"), "uptime_seconds", line),
        distance=_whole(record.get("distance"), "distance", line),
        lists_services=raw_services is not None,
    )


_STACK_OPTIONS = re.compile(r"[A-Z?0-9,]{0,120}")


def parse_stack(value: object, line: int) -> str:
    """A record's `tcp_stack` (the TTL, window and options of a SYN-ACK the scan received,
    `scan/stack.py`) as its evidence text (`stack_text`); empty when the record has none."""
    if value is None:
        return ""
    if type(value) is not dict:
        raise TaskDataError("'tcp_stack' must be an object with ttl, window and options", line)
    ttl, window, options = value.get("ttl"), value.get("window"), value.get("options", "")
    if type(ttl) is not int or not 1 <= ttl <= 255:
        raise TaskDataError("'tcp_stack.ttl' must be a whole number from 1 to 255", line)
    if type(window) is not int or not 0 <= window <= 65535:
        raise TaskDataError("'tcp_stack.window' must be a whole number from 0 to 65535", line)
    if type(options) is not str or not _STACK_OPTIONS.fullmatch(options):
        raise TaskDataError(
            "'tcp_stack.options' must be TCP options as letters, such as 'M1460,S,T,N,W7'", line
        )
    return stack_text(ttl, window, options)


def _with_stack(details: HostDetails | None, stack: str) -> HostDetails:
    """The record's details with its stack hint as an attribute (`STACK_ATTRIBUTE`), which
    the asset keeps, and its "why we think so" reads."""
    base = details if details is not None else NO_DETAILS
    attributes = dict(base.attributes)
    if STACK_ATTRIBUTE not in attributes and len(attributes) >= MAX_ATTRIBUTES:
        return base
    attributes[STACK_ATTRIBUTE] = stack
    return dataclasses.replace(base, attributes=tuple(sorted(attributes.items())))


def _with_identity(details: HostDetails | None, found: Identification) -> HostDetails | None:
    """The record's details with the OS version and device type the fingerprint rules read
    (docs/fingerprints.md), where the record names neither."""
    version = found.os_version[:MAX_SHORT_TEXT] if found.os else ""
    device = found.device_type[:40]
    if not version and not device:
        return details
    base = details if details is not None else NO_DETAILS
    return dataclasses.replace(
        base,
        os_version=base.os_version or version,
        device_type=base.device_type or device,
    )


def parse_source(value: object, line: int) -> str:
    """A record's `source`: what saw the host (`scan`, `ldap`, `import:nmap`, ...)."""
    if type(value) is not str:
        raise TaskDataError("'source' must be text", line)
    source = value.strip().lower()
    if len(source) > MAX_SOURCE or not _SOURCE.fullmatch(source):
        raise TaskDataError(
            f"'source' must be 1-{MAX_SOURCE} letters, digits and ':', '.', '_' or '-', "
            f"such as 'ldap' or 'import:nmap', not {value[:60]!r}",
            line,
        )
    return source


def _whole(value: object, what: str, line: int, *, most: int | None = None) -> int | None:
    """An optional whole number, 0 or more (at most `most`)."""
    if value is None:
        return None
    if type(value) is not int or value < 0 or value > (most if most is not None else 2**62):
        bound = f"from 0 to {most}" if most is not None else "0 or more"
        raise TaskDataError(f"'{what}' must be a whole number {bound}", line)
    return value


#: The optional host fields that make `HostDetails`.
_DETAIL_KEYS = frozenset(
    {
        "mac_vendor",
        "os_accuracy",
        "os_version",
        "device_type",
        "description",
        "tags",
        "attributes",
        "seen_by",
    }
)


def parse_details(record: Mapping[str, Any], line: int) -> HostDetails | None:
    """The optional descriptive host fields (SPEC §7), checked and bounded; None when the
    record has none of them."""
    if _DETAIL_KEYS.isdisjoint(record):
        return None
    get = record.get
    tags: dict[str, None] = {}
    raw_tags = _list(get("tags"), "tags", line)
    if len(raw_tags) > MAX_TAGS:
        raise TaskDataError(f"'tags' holds {len(raw_tags)} tags; at most {MAX_TAGS}", line)
    for position, tag in enumerate(raw_tags):
        cleaned = clean_text(tag, f"tags[{position}]", line, MAX_TAG).strip()
        if cleaned:
            tags[cleaned] = None
    raw_attributes = get("attributes")
    attributes: dict[str, str] = {}
    if raw_attributes is not None:
        if type(raw_attributes) is not dict:
            raise TaskDataError("'attributes' must be an object of names to text", line)
        if len(raw_attributes) > MAX_ATTRIBUTES:
            raise TaskDataError(
                f"'attributes' holds {len(raw_attributes)} names; at most {MAX_ATTRIBUTES}",
                line,
            )
        for name, value in raw_attributes.items():
            key = clean_text(name, "attributes", line, MAX_ATTRIBUTE_NAME).strip()
            if not key:
                raise TaskDataError("'attributes' has an empty name", line)
            if value is not None and type(value) in (int, float, bool):
                value = json.dumps(value)
            attributes[key] = clean_text(
                value, f".{key[:40]}", line, MAX_ATTRIBUTE_VALUE, "attributes"
            )
    details = HostDetails(
        mac_vendor=clean_text(get("mac_vendor"), "mac_vendor", line, MAX_SHORT_TEXT),
        os_accuracy=_whole(get("os_accuracy"), "os_accuracy", line, most=100),
        os_version=clean_text(get("os_version"), "os_version", line, MAX_SHORT_TEXT),
        device_type=clean_text(get("device_type"), "device_type", line, 100).strip().lower(),
        description=clean_text(get("description"), "description", line, MAX_LONG_TEXT),
        tags=tuple(sorted(tags)),
        attributes=tuple(sorted(attributes.items())),
        seen_by=clean_text(get("seen_by"), "seen_by", line, 253),
    )
    return None if details == NO_DETAILS else details


def parse_service(value: object, position: int, line: int) -> Service:
    """One entry of a host's `services`; errors name it as `services[position]`.

    Every host record goes through here a few times over, so absent fields cost nothing.
    """
    where = f"services[{position}]"
    if type(value) is not dict:
        raise TaskDataError(f"'{where}' must be an object", line)
    get = value.get
    port = get("port")
    if type(port) is not int or not 1 <= port <= 65535:
        raise TaskDataError(f"{where}.port must be a whole number from 1 to 65535", line)
    proto = get("proto") or "tcp"
    if proto not in ("tcp", "udp"):
        raise TaskDataError(f"{where}.proto must be 'tcp' or 'udp', not {proto!r}", line)
    state = get("state")
    if state != "open":
        state = clean_text(state, ".state", line, 20, where) or "open"
    banner = get("banner")
    banner = "" if banner is None else clean_text(banner, ".banner", line, MAX_BANNER, where)
    product = get("product")
    if product is not None:
        product = clean_text(product, ".product", line, MAX_SHORT_TEXT, where)
    name = get("service")
    if name is not None:
        name = clean_text(name, ".service", line, 40, where).lower()
    http = get("http")
    if http is None:
        http = _NOTHING
    elif type(http) is not dict:
        raise TaskDataError(f"'{where}.http' must be an object", line)
    tls = get("tls")
    if tls is None:
        tls = _NOTHING
    elif type(tls) is not dict:
        raise TaskDataError(f"'{where}.tls' must be an object", line)
    status, server, title = None, "", ""
    if http:
        status = http.get("status")
        if status is not None and type(status) is not int:
            raise TaskDataError(f"{where}.http.status must be a whole number", line)
        server = clean_text(http.get("server"), ".http.server", line, MAX_SHORT_TEXT, where)
        title = clean_text(http.get("title"), ".http.title", line, MAX_LONG_TEXT, where)
    subject = issuer = not_before = not_after = fingerprint = ""
    sans: tuple[str, ...] = ()
    if tls:
        subject = clean_text(tls.get("subject"), ".tls.subject", line, MAX_LONG_TEXT, where)
        issuer = clean_text(tls.get("issuer"), ".tls.issuer", line, MAX_LONG_TEXT, where)
        not_before = clean_text(tls.get("not_before"), ".tls.not_before", line, 40, where)
        not_after = clean_text(tls.get("not_after"), ".tls.not_after", line, 40, where)
        names = _list(tls.get("sans"), f"{where}.tls.sans", line)
        sans = tuple(
            sorted({clean_text(n, ".tls.sans", line, MAX_SHORT_TEXT, where) for n in names})
        )
        fingerprint = clean_text(tls.get("sha256"), ".tls.sha256", line, 100, where)
        fingerprint = fingerprint.replace(":", "").lower()
        if fingerprint and (len(fingerprint) != 64 or not _HEX.issuperset(fingerprint)):
            raise TaskDataError(f"{where}.tls.sha256 must be 64 hexadecimal digits", line)
    if not name:
        has_http, has_tls = bool(http), bool(tls)
        name = service_name(port, banner=banner, has_http=has_http, has_tls=has_tls, proto=proto)
    if not product:
        product = service_product(banner, server)[:MAX_SHORT_TEXT] if banner or server else ""
    version = get("version")
    extrainfo = get("extrainfo")
    tunnel = get("tunnel")
    cpe = get("cpe")
    if version is None and extrainfo is None and tunnel is None and cpe is None:
        # A record that names none of them: the version and CPE the fingerprint rules read
        # from the service's answers (docs/fingerprints.md).
        found = identify_answer(banner, server) if banner or server else ServiceIdentity()
        version, extrainfo, tunnel = found.version, "", ""
        cpes: tuple[str, ...] = (found.cpe,) if found.cpe else ()
    else:
        listed = _list(cpe, f"{where}.cpe", line)
        if len(listed) > MAX_CPES:
            raise TaskDataError(f"{where}.cpe lists {len(listed)} names; at most {MAX_CPES}", line)
        version = clean_text(version, ".version", line, MAX_SHORT_TEXT, where)
        extrainfo = clean_text(extrainfo, ".extrainfo", line, MAX_SHORT_TEXT, where)
        tunnel = clean_text(tunnel, ".tunnel", line, 20, where).lower()
        cpes = tuple(
            sorted({clean_text(c, ".cpe", line, MAX_SHORT_TEXT, where) for c in listed} - {""})
        )
    return Service(
        port,
        proto,
        state,
        name,
        banner,
        product,
        status,
        server,
        title,
        subject,
        issuer,
        sans,
        not_before,
        not_after,
        fingerprint,
        version,
        extrainfo,
        tunnel,
        cpes,
    )
