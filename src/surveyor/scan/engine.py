"""The scan engine (SPEC §7): validated params in, task data records out.

```
 scope ─▶ connect workers (one thread, or one process per core), each walking its share
                 │ open ports as found, host scans, probe counts
 records ◀─ run_scan ◀─ events ◀──── service probes and reverse DNS (daemon threads)
```

Service probes overlap the port scan: an open port is described as soon as it is found, and
a host's reverse lookup starts with its first open port, while its other ports are still
being scanned.

`run_scan` is a generator: it yields the config record, then a host record as soon as a host
is fully described, then the summary. The consumer decides where records go (a file, an
upload); the engine never holds more than the hosts still being probed.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.scan_params import Probe, ScanParams
from surveyor.scan.connect import Dialer, dial
from surveyor.scan.daemon_pool import DaemonPool
from surveyor.scan.jobs import ConnectPlan, HostJob, HostScan, OpenPort
from surveyor.scan.probes.rdns import BoundedResolver, Resolver, SystemResolver
from surveyor.scan.probes.service import ProbeTimeouts, ServiceTarget, describe_port
from surveyor.scan.progress import ProgressReporter, ScanProgress
from surveyor.scan.records import HostAssembly, config_record, host_record, summary_record
from surveyor.scan.settings import ScanSettings
from surveyor.scan.stack import StackHints
from surveyor.scan.workers import WorkerPool, WorkerReport, WorkerShare

if TYPE_CHECKING:
    from surveyor.scan.probes.reverse_dns import ReverseLookups

#: Worker processes pay off only for scans this fast and this big; others use one thread.
PROCESS_MIN_RATE = 20_000
PROCESS_MIN_PROBES = 50_000
MAX_PROCESSES = 4
#: How long the engine waits for news before it looks at `stop` and reports progress again.
EVENT_WAIT = 0.1


class ScanError(RuntimeError):
    """The scan could not go on (a worker failed); the message says why."""


def run_scan(
    params: ScanParams,
    *,
    on_progress: Callable[[ScanProgress], None] | None = None,
    stop: threading.Event | None = None,
    clock: Clock = SYSTEM_CLOCK,
    resolver: Resolver | None = None,
    settings: ScanSettings | None = None,
    dialer: Dialer | None = None,
) -> Iterator[dict[str, Any]]:
    """Scan `params.scope` and yield its task data records: config, hosts, summary.

    `on_progress` is called from the consuming thread as hosts finish (at most every
    `settings.progress_interval`, and once more at the end). Setting `stop` halts the scan
    within about a second; the hosts already described, and the open ports of those still
    being probed, are yielded, then a summary with `stopped: true`. `resolver` and `dialer`
    replace the system's name resolution and connect (tests); a `dialer` keeps the scan in
    threads of this process.
    """
    settings = settings or ScanSettings()
    started_at, began = clock.now(), clock.monotonic()
    yield config_record(params, started_at)
    reporter = ProgressReporter(on_progress, settings.progress_interval, clock)
    run = _ScanRun(params, settings, resolver, reporter, dialer)
    try:
        yield from run.records(stop or threading.Event())
    finally:
        run.close()
    progress = run.progress()
    yield summary_record(
        hosts_total=progress.hosts_total,
        hosts_up=progress.hosts_up,
        probes_sent=progress.probes_sent,
        open_ports=progress.open_ports,
        duration=clock.monotonic() - began,
        stopped=run.stopped,
        finished_at=clock.now(),
    )


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_workers(
    params: ScanParams, settings: ScanSettings, cores: int | None = None
) -> tuple[ConnectPlan, int]:
    """How many connect workers, and each one's plan (its share of rate and sockets)."""
    if settings.workers > 0:
        count = settings.workers
    else:
        big = params.scope.size * len(params.tcp_ports) >= PROCESS_MIN_PROBES
        fast = params.rate >= PROCESS_MIN_RATE
        count = min(cores or usable_cores(), MAX_PROCESSES) if big and fast else 1
    count = max(1, min(count, params.max_sockets))
    plan = ConnectPlan(
        ports=params.tcp_ports,
        discovery_ports=settings.discovery_ports if params.host_ping else (),
        icmp=params.host_ping,
        max_sockets=max(1, params.max_sockets // count),
        rate=params.rate / count,
        host_rate=float(params.max_host_rate),
        retries=settings.retries,
        lossy_retries=max(settings.retries, settings.lossy_retries),
        timeouts=settings.timeouts,
        report_open_ports=any(probe is not Probe.RDNS for probe in params.probes),
    )
    return plan, count


@dataclass(frozen=True, slots=True)
class _Described:
    """A service probe or a reverse lookup finished for the host `key`."""

    key: int
    service: dict[str, Any] | None = None
    names: tuple[str, ...] = ()


class _ScanRun:
    """One scan's moving parts and counters."""

    def __init__(
        self,
        params: ScanParams,
        settings: ScanSettings,
        resolver: Resolver | None,
        reporter: ProgressReporter,
        dialer: Dialer | None,
    ) -> None:
        self._params = params
        self._settings = settings
        self._reporter = reporter
        self._dialer = dialer
        self._events: queue.Queue[object] = queue.Queue()
        self._names = BoundedResolver(
            resolver or SystemResolver(),
            timeout=settings.rdns_timeout,
            threads=settings.rdns_threads,
        )
        self._service_probes = frozenset(p for p in params.probes if p is not Probe.RDNS)
        self._rdns = Probe.RDNS in params.probes
        self._reverse: ReverseLookups | None = None
        if self._rdns:
            # dnspython loads only for scans that look names up
            from surveyor.scan.probes.reverse_dns import lookups_for

            self._reverse = lookups_for(
                resolver,
                servers=list(settings.dns_servers),
                timeout=settings.rdns_timeout,
                concurrency=settings.rdns_concurrency,
                threads=settings.rdns_threads,
            )
        self._timeouts = ProbeTimeouts(
            banner=settings.banner_timeout,
            exchange=settings.probe_timeout,
            greeting=settings.greeting_timeout,
        )
        self._prober: DaemonPool | None = None
        self._pool: WorkerPool | None = None
        #: SYN-ACK hints, when the process may read them (a raw socket)
        self._stack: StackHints | None = None
        #: key of a job → the hostname target it was resolved from
        self._hostname_of: dict[int, str] = {}
        #: addresses of hostname targets outside the scope's addresses
        self._hostname_addresses: set[str] = set()
        #: address of the scope → hostname targets that resolved to it
        self._names_at: dict[str, list[str]] = {}
        self._assemblies: dict[int, HostAssembly] = {}
        self._done = self._up = self._probes = self._open = 0
        self.stopped = False

    def progress(self) -> ScanProgress:
        per_host = len(self._params.tcp_ports) + (
            len(self._settings.discovery_ports) if self._params.host_ping else 0
        )
        return ScanProgress(
            hosts_done=self._done,
            hosts_total=self._params.scope.size,
            probes_sent=self._probes,
            open_ports=self._open,
            hosts_up=self._up,
            probes_planned=self._params.scope.size * per_host,
        )

    def records(self, stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Host records until the scope is covered or `stop` is set."""
        plan, count = plan_workers(self._params, self._settings)
        extra = self._hostname_jobs()
        shares = [
            WorkerShare(self._params.scope, index, count, extra if index == 0 else ())
            for index in range(count)
        ]
        processes = count > 1 and self._dialer is None
        if self._settings.stack_hints and self._params.tcp_ports:
            self._stack = StackHints.open(self._params.tcp_ports, self._wanted)
        self._pool = WorkerPool(
            plan, shares, self._events, processes=processes, dialer=self._dialer or dial
        )
        workers_left = count
        budget_set = False
        while workers_left or self._assemblies:
            if not workers_left and not budget_set and self._reverse is not None:
                # only probes and names are left: names may take the budget, no more
                self._reverse.expire_after(self._settings.rdns_budget)
                budget_set = True
            if stop.is_set():
                self.stopped = True
                break
            if self._stack is not None:
                self._stack.drain(force=False)
            try:
                event = self._events.get(timeout=EVENT_WAIT)
            except queue.Empty:
                self._reporter.update(self.progress())
                continue
            if isinstance(event, WorkerReport):
                if event.error:
                    raise ScanError(event.error)
                self._probes += event.probes
                workers_left -= event.done
                for found in event.opened:
                    self._opened(found)
                for scan in event.scans:
                    record = self._scanned(scan)
                    if record is not None:
                        yield record
            elif isinstance(event, _Described):
                record = self._described(event)
                if record is not None:
                    yield record
            self._reporter.update(self.progress())
        if self.stopped:
            self._halt()
            yield from self._unfinished()
        self._reporter.update(self.progress(), final=True)

    def _hostname_jobs(self) -> tuple[HostJob, ...]:
        """Hostname targets, resolved: a job for each name with an address to scan. A name
        whose address is excluded, or that does not resolve, is done at once; one whose
        address the scope holds anyway joins that address's record."""
        scope = self._params.scope
        answers = self._names.forward_all(list(scope.hostnames))
        key = scope.size - len(scope.hostnames)  # after the addresses' positions
        jobs: list[HostJob] = []
        for name, addresses in answers.items():
            allowed = [address for address in addresses if not scope.is_excluded(address)]
            if not allowed:
                self._done += 1
            elif scope.contains(allowed[0]):
                self._names_at.setdefault(allowed[0], []).append(name)
                self._done += 1
            else:
                self._hostname_of[key] = name
                self._hostname_addresses.add(allowed[0])
                jobs.append(HostJob(key, allowed[0]))
                key += 1
        return tuple(jobs)

    def _names_of(self, key: int, address: str) -> list[str]:
        """The names a host was asked for by: its hostname target, names resolving to it."""
        target_name = self._hostname_of.pop(key, None)
        return ([target_name] if target_name else []) + self._names_at.get(address, [])

    def _opened(self, found: OpenPort) -> None:
        """A port found open while its host is still being scanned: describe it now."""
        assembly = self._assemblies.get(found.key)
        if assembly is None:
            assembly = HostAssembly(self._names_of(found.key, found.address))
            self._assemblies[found.key] = assembly
        self._start_probes(found.key, found.address, assembly, (found.port,))

    def _start_probes(
        self, key: int, address: str, assembly: HostAssembly, ports: tuple[int, ...]
    ) -> None:
        """Service probes of the `ports` not probed yet, and the host's reverse lookup."""
        if self._service_probes:
            for port in ports:
                if port not in assembly.probed:
                    assembly.probed.add(port)
                    target = ServiceTarget(address, port, assembly.target_name)
                    self._submit(key, assembly, self._describe, target)
        if self._reverse is not None and not assembly.names_asked:
            assembly.names_asked = True
            assembly.pending += 1
            self._reverse.lookup(address).add_done_callback(functools.partial(self._named, key))

    def _scanned(self, scan: HostScan) -> dict[str, Any] | None:
        """The host's record if it is complete already; None if it is down (done) or some
        of its probes are still running."""
        if not scan.up:
            self._done += 1
            return None
        self._up += 1
        self._open += len(scan.open_ports)
        assembly = self._assemblies.get(scan.key)
        if assembly is None:
            names = self._names_of(scan.key, scan.address)
            if not (self._rdns or (self._service_probes and scan.open_ports)):
                self._done += 1
                return self._with_stack(host_record(scan, names))
            assembly = HostAssembly(names)
            self._assemblies[scan.key] = assembly
        assembly.scan = scan
        self._start_probes(scan.key, scan.address, assembly, scan.open_ports)
        return self._completed(scan.key, assembly)

    def _completed(self, key: int, assembly: HostAssembly) -> dict[str, Any] | None:
        if not assembly.complete:
            return None
        del self._assemblies[key]
        self._done += 1
        return self._with_stack(assembly.record())

    def _wanted(self, address: str) -> bool:
        """Whether a SYN-ACK from `address` may be one of the scan's: the scope's, or a
        hostname target's."""
        return self._params.scope.contains(address) or address in self._hostname_addresses

    def _with_stack(self, record: dict[str, Any]) -> dict[str, Any]:
        """The host record with its SYN-ACK hint (`tcp_stack`), when one was read; as it
        was otherwise (no privilege, IPv6, no open port)."""
        if self._stack is not None and record["services"]:
            hint = self._stack.take(record["addresses"][0])
            if hint is not None:
                record["tcp_stack"] = hint
        return record

    def _describe(self, key: int, target: ServiceTarget) -> _Described:
        service = describe_port(target, self._service_probes, self._timeouts)
        return _Described(key, service=service)

    def _named(self, key: int, future: Future[list[str]]) -> None:
        if future.cancelled():
            return
        try:
            self._events.put(_Described(key, names=tuple(future.result())))
        except Exception:  # a lookup's own bug must not lose the host: it stays unnamed
            self._events.put(_Described(key))

    def _submit(
        self,
        key: int,
        assembly: HostAssembly,
        work: Callable[[int, Any], _Described],
        argument: Any,
    ) -> None:
        if self._prober is None:
            self._prober = DaemonPool(self._settings.probe_threads, "surveyor-probe")
        assembly.pending += 1
        future = self._prober.submit(work, key, argument)
        future.add_done_callback(functools.partial(self._post, key))

    def _post(self, key: int, future: Future[_Described]) -> None:
        if future.cancelled():
            return
        try:
            self._events.put(future.result())
        except Exception:  # a probe's own bug must not lose the host: it stays undescribed
            self._events.put(_Described(key))

    def _described(self, event: _Described) -> dict[str, Any] | None:
        """The host's record once its last probe is in."""
        assembly = self._assemblies.get(event.key)
        if assembly is None:
            return None
        if event.service is not None:
            assembly.set_service(event.service)
        assembly.add_hostnames(list(event.names))
        assembly.pending -= 1
        return self._completed(event.key, assembly)

    def _unfinished(self) -> Iterator[dict[str, Any]]:
        """After a stop: hosts scanned whose probes did not finish, with what is known of
        them (hosts whose port scan did not finish are dropped, as the workers drop them)."""
        assemblies, self._assemblies = self._assemblies, {}
        for assembly in assemblies.values():
            if assembly.scan is not None:
                self._done += 1
                yield self._with_stack(assembly.record())

    def _halt(self) -> None:
        if self._pool is not None:
            self._pool.halt()
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        if self._prober is not None:
            self._prober.close()
        if self._reverse is not None:
            self._reverse.close()
        self._names.close()

    def close(self) -> None:
        """Stop everything still running; never waits long for it."""
        self._halt()
        if self._pool is not None:
            self._pool.close()
