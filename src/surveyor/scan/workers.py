"""Connect-scan workers: one thread of this process, or one process per core.

Each worker walks its own share of the scope: the scope's addresses in blocks of `BLOCK`,
worker `i` of `n` taking blocks `i, i + n, i + 2n, ...`, so neighbours (often alike: a rack, a
subnet of printers) are spread over the workers, and no host list ever crosses a process
boundary. Results come back in batches. A process has its own GIL: on a fast network one
core's worth of Python is the limit, so big, fast scans fan out to processes, each with its
share of the global rate and of the sockets. Small scans stay on one thread and start at once.

A worker process is `python -m surveyor.scan.worker_process`, talking over its standard input
and output (see `frames`): a fresh interpreter that imports only the scanner, whatever program
started the scan (`multiprocessing` would re-import the starting program's main module in every
worker, and fork is unsafe in a threaded server).
"""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv6Address
from typing import Any, Protocol

from surveyor.core.targets import Scope
from surveyor.scan.connect import ConnectScanner, Dialer, dial
from surveyor.scan.frames import read_frame, write_frame
from surveyor.scan.icmp import EchoPinger
from surveyor.scan.jobs import ConnectPlan, HostJob, HostScan, OpenPort, StopFlag

#: Addresses a worker takes at a time from the scope.
BLOCK = 64
#: Results are sent when this many hosts are done, or this often.
REPORT_HOSTS = 256
REPORT_SECONDS = 0.05
#: File descriptors kept free beyond the sockets in flight (pipes, logs, service probes).
SPARE_FILES = 64
#: How long to wait for a worker to wind down before it is ended.
JOIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class WorkerShare:
    """What one worker scans: its blocks of the scope's addresses (keyed by their position in
    the scope), then `extra` jobs (hostname targets, resolved by the engine)."""

    scope: Scope
    index: int = 0
    count: int = 1
    extra: tuple[HostJob, ...] = ()


def _ipv4_text(number: int) -> str:
    return socket.inet_ntoa(number.to_bytes(4, "big"))  # a fifth of str(IPv4Address(...))


def _ipv6_text(number: int) -> str:
    return str(IPv6Address(number))


def share_jobs(share: WorkerShare) -> Iterator[HostJob]:
    """The share's jobs, lazily, in scope order."""
    position = 0
    families: tuple[tuple[tuple[tuple[int, int], ...], Callable[[int], str]], ...] = (
        (share.scope.ipv4, _ipv4_text),
        (share.scope.ipv6, _ipv6_text),
    )
    for intervals, address in families:
        for first, last in intervals:
            number = first
            while number <= last:
                block_end = min(last, number + BLOCK - 1 - (position % BLOCK))
                if (position // BLOCK) % share.count == share.index:
                    for offset in range(block_end - number + 1):
                        yield HostJob(position + offset, address(number + offset))
                position += block_end - number + 1
                number = block_end + 1
    yield from share.extra


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Hosts a worker finished and the probes it sent since its previous report; with
    `plan.report_open_ports`, the ports found open since then (of hosts finished or not)."""

    worker: int
    scans: tuple[HostScan, ...]
    probes: int
    done: bool = False
    error: str | None = None
    opened: tuple[OpenPort, ...] = ()


class Outbox(Protocol):
    """Where a worker's reports go (a queue, or a pipe to the engine)."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None: ...


class ShareSource:
    """A `HostSource` over a worker's share: always ready until it runs out."""

    def __init__(self, share: WorkerShare) -> None:
        self._jobs = share_jobs(share)
        self._exhausted = False

    def take(self, wait: float) -> HostJob | None:
        if self._exhausted:
            return None
        job = next(self._jobs, None)
        self._exhausted = job is None
        return job

    @property
    def exhausted(self) -> bool:
        return self._exhausted


def raise_open_files(wanted: int) -> int:
    """Raise this process's descriptor limit towards `wanted`; returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def run_worker(
    plan: ConnectPlan,
    share: WorkerShare,
    outbox: Outbox,
    stop: StopFlag,
    dialer: Dialer = dial,
) -> None:
    """A worker's life: scan its share, report to the outbox, end with a `done` report."""
    limit = raise_open_files(plan.max_sockets + SPARE_FILES)
    if limit - SPARE_FILES < plan.max_sockets:
        plan = replace(plan, max_sockets=max(1, limit - SPARE_FILES))
    index = share.index
    pinger = EchoPinger.open(os.getpid() + index) if plan.icmp and plan.discovery_ports else None
    opened: list[OpenPort] = []

    def port_open(key: int, address: str, port: int) -> None:
        opened.append(OpenPort(key, address, port))

    on_open = port_open if plan.report_open_ports else None
    scanner = ConnectScanner(plan, stop=stop, dialer=dialer, pinger=pinger, on_open=on_open)
    pending: list[HostScan] = []
    reported = 0
    last = time.monotonic()

    def report(*, done: bool = False, error: str | None = None) -> None:
        nonlocal pending, reported, last
        probes = scanner.probes_sent - reported
        found = tuple(opened)
        opened.clear()
        outbox.put(WorkerReport(index, tuple(pending), probes, done, error, found))
        pending, reported, last = [], scanner.probes_sent, time.monotonic()

    def host_done(scan: HostScan) -> None:
        pending.append(scan)
        if len(pending) >= REPORT_HOSTS:
            report()

    def tick() -> None:
        if opened:  # service probes are waiting for these
            report()
            return
        due = time.monotonic() - last >= REPORT_SECONDS
        if due and (pending or scanner.probes_sent > reported):
            report()

    try:
        scanner.run(ShareSource(share), host_done, tick)
    except Exception as failure:
        report(done=True, error=f"{type(failure).__name__}: {failure}")
    else:
        report(done=True)
    finally:
        if pinger is not None:
            pinger.close()


class WorkerPool:
    """Starts one worker per share, passes their reports on to `events`, and stops them."""

    def __init__(
        self,
        plan: ConnectPlan,
        shares: list[WorkerShare],
        events: queue.Queue[Any],
        *,
        processes: bool,
        dialer: Dialer = dial,
    ) -> None:
        self.count = len(shares)
        self._events = events
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        for share in shares:
            if processes:
                self._start_process(plan, share)
            else:
                self._start_thread(run_worker, plan, share, self._events, self._stop, dialer)

    def _start_thread(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="surveyor-scan", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_process(self, plan: ConnectPlan, share: WorkerShare) -> None:
        """A worker process, told its plan and share, and a thread to read its reports."""
        process = subprocess.Popen(
            [sys.executable, "-m", "surveyor.scan.worker_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._processes.append(process)
        assert process.stdin is not None
        write_frame(process.stdin, (plan, share))
        process.stdin.close()
        self._start_thread(self._read_process, share.index, process)

    def _read_process(self, index: int, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        while True:
            report = read_frame(process.stdout)
            if report is None:
                break
            self._events.put(report)
            if report.done:
                return
        if not self._stop.is_set():
            code = process.wait()
            message = f"scan worker {index} exited with code {code} before it was done"
            self._events.put(WorkerReport(index, (), 0, done=True, error=message))

    def halt(self) -> None:
        """Stop every worker now: threads drop their unfinished hosts, processes are ended."""
        self._stop.set()
        for process in self._processes:
            if process.poll() is None:
                process.terminate()

    def close(self) -> None:
        """Halt, and wait briefly for the workers to be gone."""
        self.halt()
        deadline = time.monotonic() + JOIN_SECONDS
        for process in self._processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
