"""The TCP connect scanner of one worker: non-blocking sockets driven by one poll() loop.

A probe is a non-blocking `connect()`: writable with no error means open, ECONNREFUSED means
closed (and proves the host is up), no answer within the timeout means another attempt, and
after the last attempt, filtered. Sockets of open ports are closed with SO_LINGER 0, so the
scan leaves no TIME_WAIT behind and the server sees a reset rather than a conversation.

Timeouts adapt per host (`rtt.RttEstimator`, seeded from the worker's estimate of the network;
hosts taken on before the network's first answer adopt it when it comes, probes in flight
included), and retries lengthen them. Every attempt is a socket of its own, so an answer
belongs to the attempt it came on and a retried probe's round trip is a sample too (unless
the kernel itself resent the SYN). Before probes are declared unanswered, the answers that
are already in are read: a loop held up by a busy machine never mistakes a late look for
silence.

Three limits bound the load: the sockets in flight (`max_sockets`), a global token bucket
(probes/s) and one per host. Hosts come from a `HostSource` and are worked on a few at a
time: a group of `host_group` at once, whose waits for silent hosts and dropped probes
overlap, and more only when no active host has a probe to send, so memory stays bounded
whatever the size of the scope.

On loopback (and often over a local bridge) the answer is in before `connect()` returns: the
kernel handles the reply as it releases the socket. While most answers come that fast, each
is read at once, and the probe never enters the poll set, the timeout wheel or the socket
table; otherwise one probe in `AnswerTiming.SAMPLE_EVERY` is checked, to notice when they
start to.

The loop waits in poll(), not epoll: a worker has a few hundred sockets in flight and their
answers arrive in batches, so handing the kernel the whole set per wait costs less than an
epoll_ctl per probe (about a fifth less system time per probe, measured on loopback).

With host discovery on, a host first gets the discovery probes (a few common ports, and ICMP
echo when privileged); the first answer of any kind starts its port scan, and a host that never
answers is reported down without one.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import heapq
import itertools
import math
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from surveyor.scan.icmp import EchoPinger
from surveyor.scan.jobs import ConnectPlan, HostJob, HostScan, HostSource, StopFlag
from surveyor.scan.ratelimit import TokenBucket, burst_for
from surveyor.scan.rtt import RttEstimator
from surveyor.scan.timeouts import TimeoutWheel

#: The pseudo-port of an ICMP echo probe in a host's discovery list.
ECHO = 0
#: The longest the loop sleeps, so a stop request or a new host is noticed quickly.
IDLE_WAIT = 0.05
#: A host's burst: this much of a second's worth of its rate at once.
HOST_BURST_SECONDS = 0.1
#: A host's round-trip time is sampled from its first answer, then from one in this many
#: (a sample per probe would cost more than the probe's other bookkeeping).
RTT_EVERY = 8
#: Probes sent per round of the loop at most: when answers are read at once the sockets never
#: fill up, and the loop must still come round to look at `stop`, timeouts and reports.
LAUNCH_ROUND = 512
#: How long to wait after the kernel ran short of ports, buffers or descriptors.
SHORTAGE_PAUSE = 0.01
#: When the kernel resends an unanswered SYN on its own (its initial retransmission
#: timeout): an answer later than this may belong to the resent SYN.
KERNEL_SYN_RESEND = 1.0

_LINGER_ZERO = struct.pack("ii", 1, 0)
_SOL_SOCKET, _SO_ERROR, _SO_LINGER = socket.SOL_SOCKET, socket.SO_ERROR, socket.SO_LINGER
_WRITABLE = select.POLLOUT
_IN_PROGRESS, _REFUSED = errno.EINPROGRESS, errno.ECONNREFUSED
#: The local system ran short: not an answer, so the probe is sent again later.
_SHORTAGE = frozenset(
    {errno.EADDRNOTAVAIL, errno.EAGAIN, errno.ENOBUFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
)
#: No answer yet, worth another attempt.
_SILENT = frozenset({errno.ETIMEDOUT})

#: Called with (host key, address, port) as soon as a port is found open.
OpenPortHook = Callable[[int, str, int], None]

#: Starts a non-blocking connect: `(family, (address, port), attempt) -> (socket, errno)`.
#: Any `socket.socket` will do; the default makes the bare C type (see `dial`).
Dialer = Callable[[int, tuple[str, int], int], tuple[_socket.socket, int]]
_NONBLOCKING_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK


def dial(family: int, sockaddr: tuple[str, int], attempt: int) -> tuple[_socket.socket, int]:
    """A non-blocking TCP socket with its connect started; 0 or an errno says how it went.

    The socket is the C type under `socket.socket`: the Python layer's constructor and close
    cost a tenth of a loopback probe, and nothing here needs them.
    """
    sock = _socket.socket(family, _NONBLOCKING_STREAM)
    try:
        return sock, sock.connect_ex(sockaddr)
    except OSError:
        sock.close()
        raise


class AnswerTiming:
    """Whether answers tend to be in by the time `connect()` returns: a moving share of the
    probes checked at once that were."""

    #: check every probe while at least this share of those checked was answered at once
    MIN_SHARE = 0.25
    #: otherwise check one probe in this many
    SAMPLE_EVERY = 32
    #: the weight of each check in the moving share
    WEIGHT = 1 / 16

    __slots__ = ("_count", "share")

    def __init__(self) -> None:
        self.share = 1.0
        self._count = 0

    def worth_reading(self) -> bool:
        """Whether to read this probe's answer at once."""
        if self.share >= self.MIN_SHARE:
            return True
        self._count += 1
        return self._count % self.SAMPLE_EVERY == 0

    def note(self, answered: bool) -> None:
        self.share += self.WEIGHT * (float(answered) - self.share)


class _Host:
    """A host being scanned: what is left to probe, what came back, its timing."""

    __slots__ = (
        "address",
        "answers",
        "closed",
        "discovering",
        "extra",
        "family",
        "filtered",
        "finished",
        "inflight",
        "key",
        "next_index",
        "open",
        "ports",
        "refilled",
        "retries",
        "rtt",
        "scheduled",
        "tokens",
        "up",
    )

    def __init__(
        self, job: HostJob, ports: tuple[int, ...], rtt: RttEstimator, now: float, retries: int
    ):
        self.key = job.key
        self.address = job.address
        self.family = socket.AF_INET6 if ":" in job.address else socket.AF_INET
        self.ports = ports
        self.next_index = 0
        #: probes to send before the next of `ports`: retries, and carried-over ports
        self.extra: deque[tuple[int, int]] = deque()
        self.inflight = 0
        self.answers = 0
        self.retries = retries
        self.up = False
        self.discovering = False
        self.open: list[int] = []
        self.closed = 0
        self.filtered = 0
        self.rtt = rtt
        self.tokens = 0.0
        self.refilled = now
        self.scheduled = False
        self.finished = False

    def has_pending(self) -> bool:
        return bool(self.extra) or self.next_index < len(self.ports)

    def pending_count(self) -> int:
        return len(self.extra) + len(self.ports) - self.next_index

    def next_probe(self) -> tuple[int, int]:
        """(port, attempt) of the next probe to send."""
        if self.extra:
            return self.extra.popleft()
        port = self.ports[self.next_index]
        self.next_index += 1
        return port, 0


class _Probe:
    """One connect attempt (or echo request); `sock` is None once it has been concluded."""

    __slots__ = ("attempt", "fd", "host", "port", "sent", "sock")

    def __init__(
        self, host: _Host, port: int, attempt: int, sent: float, sock: _socket.socket | None
    ):
        self.host = host
        self.port = port
        self.attempt = attempt
        self.sent = sent
        self.sock = sock
        self.fd = sock.fileno() if sock is not None else -1


class ConnectScanner:
    """Scans the hosts of a `HostSource` until it is exhausted or `stop` is set."""

    def __init__(
        self,
        plan: ConnectPlan,
        *,
        stop: StopFlag,
        dialer: Dialer = dial,
        pinger: EchoPinger | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_open: OpenPortHook | None = None,
    ) -> None:
        self._plan = plan
        self._on_open = on_open
        self._stop = stop
        self._dialer = dialer
        self._pinger = pinger if plan.icmp and plan.discovery_ports else None
        self._clock = clock
        self._requested = frozenset(plan.ports)
        discovery = tuple(dict.fromkeys(plan.discovery_ports))
        self._discovery_tcp = discovery
        self._discovery_v4 = (ECHO, *discovery) if self._pinger is not None else discovery
        self._after_discovery = tuple(port for port in plan.ports if port not in discovery)
        self._bucket = TokenBucket(plan.rate, burst_for(plan.rate), clock())
        self._host_burst = burst_for(plan.host_rate, HOST_BURST_SECONDS)
        self._network_rtt = RttEstimator(plan.timeouts)
        self._socket_cap = plan.max_sockets
        self._answer_timing = AnswerTiming()
        self._sockets: dict[int, _Probe] = {}
        self._echoes: dict[str, _Probe] = {}
        self._timeouts: TimeoutWheel[_Probe] = TimeoutWheel()
        self._ready: deque[_Host] = deque()
        self._sleeping: list[tuple[float, int, _Host]] = []
        self._active: dict[int, _Host] = {}
        self._finished: list[_Host] = []
        self._order = itertools.count()
        self._resume_at = 0.0
        #: the last round of sends ended on `LAUNCH_ROUND`, not for want of work
        self._round_full = False
        self._poller = select.poll()
        self._register = self._poller.register
        #: connect attempts and echo requests sent so far
        self.probes_sent = 0

    def run(
        self,
        source: HostSource,
        on_host: Callable[[HostScan], None],
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Scan until the source is exhausted and every host reported, or until stopped
        (hosts still in progress are then dropped, unreported)."""
        if self._pinger is not None:
            self._register(self._pinger.fileno(), select.POLLIN)
        try:
            while not self._stop.is_set():
                now = self._clock()
                self._wake(now)
                self._launch(now, source)
                self._expire(self._clock())
                self._report(on_host)
                if on_tick is not None:
                    on_tick()
                if not self._active:
                    if source.exhausted:
                        break
                    job = source.take(IDLE_WAIT)
                    if job is not None:
                        self._schedule(self._activate(job, self._clock()))
                    continue
                self._poll(self._poll_timeout(self._clock()))
                self._report(on_host)
        finally:
            self._close_all()

    def _activate(self, job: HostJob, now: float) -> _Host:
        plan = self._plan
        rtt = RttEstimator(plan.timeouts, self._network_rtt)
        host = _Host(job, plan.ports, rtt, now, plan.retries)
        host.tokens = self._host_burst
        if plan.discovery_ports:
            host.discovering = True
            v4 = host.family == socket.AF_INET
            host.ports = self._discovery_v4 if v4 else self._discovery_tcp
        self._active[job.key] = host
        return host

    def _schedule(self, host: _Host) -> None:
        if not host.scheduled and not host.finished and host.has_pending():
            host.scheduled = True
            self._ready.append(host)

    def _next_host(self, source: HostSource, now: float) -> _Host | None:
        if len(self._active) < self._plan.host_group:
            host = self._take_host(source, now)
            if host is not None:
                return host
        while self._ready:
            host = self._ready.popleft()
            if host.has_pending() and not host.finished:
                return host
            host.scheduled = False
        if len(self._active) < self._plan.max_active_hosts:
            return self._take_host(source, now)
        return None

    def _take_host(self, source: HostSource, now: float) -> _Host | None:
        """A host taken on from `source` now (None: it has none ready), scheduled."""
        job = source.take(0.0)
        if job is None:
            return None
        host = self._activate(job, now)
        host.scheduled = True
        return host

    def _launch(self, now: float, source: HostSource) -> None:
        """Send probes while sockets, tokens and hosts with work allow, `LAUNCH_ROUND` at most."""
        self._round_full = False
        if now < self._resume_at:
            return
        sockets, cap = self._sockets, self._socket_cap
        host_rate, host_burst = self._plan.host_rate, self._host_burst
        budget = LAUNCH_ROUND
        while len(sockets) < cap:
            if budget <= 0:
                self._round_full = True
                return
            host = self._next_host(source, now)
            if host is None:
                return
            tokens = min(host_burst, host.tokens + (now - host.refilled) * host_rate)
            host.refilled = now
            if tokens < 1.0:
                host.tokens = tokens
                wake = now + (1.0 - tokens) / host_rate
                heapq.heappush(self._sleeping, (wake, next(self._order), host))
                continue
            wanted = min(int(tokens), host.pending_count(), cap - len(sockets), budget)
            granted = self._bucket.take_up_to(wanted, now)
            budget -= granted
            host.tokens = tokens - granted
            for _ in range(granted):
                if not host.has_pending():  # an answer at once can change what is left
                    break
                port, attempt = host.next_probe()
                if port == ECHO:
                    self._send_echo(host, attempt, now)
                elif not self._connect(host, port, attempt, now):
                    host.extra.appendleft((port, attempt))
                    self._ready.appendleft(host)
                    return
            if granted < wanted:  # the global rate holds everyone back
                self._ready.appendleft(host)
                return
            if not host.has_pending():
                host.scheduled = False
            elif host.tokens < 1.0:
                wake = now + (1.0 - host.tokens) / host_rate
                heapq.heappush(self._sleeping, (wake, next(self._order), host))
            else:
                self._ready.append(host)

    def _connect(self, host: _Host, port: int, attempt: int, now: float) -> bool:
        """Start one connect; False when the system ran short and it must wait."""
        try:
            sock, error = self._dialer(host.family, (host.address, port), attempt)
        except OSError as failure:
            self._shortage(failure.errno, now)
            return False
        if error == _IN_PROGRESS and self._answer_timing.worth_reading():
            error = sock.getsockopt(_SOL_SOCKET, _SO_ERROR) or _IN_PROGRESS
            self._answer_timing.note(error != _IN_PROGRESS)
        if error == _IN_PROGRESS:
            probe = _Probe(host, port, attempt, now, sock)
            self._sockets[probe.fd] = probe
            self._register(probe.fd, _WRITABLE)
            last = attempt >= host.retries
            if attempt == 0 and not last:
                timeout = host.rtt.timeout
            else:
                timeout = host.rtt.retry_timeout(attempt, last=last)
            self._timeouts.add(now + timeout, probe)
        elif error in _SHORTAGE:
            sock.close()
            self._shortage(error, now)
            return False
        else:  # answered at once (see `AnswerTiming`)
            host.inflight += 1
            self.probes_sent += 1
            self._conclude(_Probe(host, port, attempt, now, sock), error, now)
            return True
        host.inflight += 1
        self.probes_sent += 1
        return True

    def _send_echo(self, host: _Host, attempt: int, now: float) -> None:
        assert self._pinger is not None
        probe = _Probe(host, ECHO, attempt, now, None)
        host.inflight += 1
        if not self._pinger.send(host.address):
            self._conclude(probe, errno.EHOSTUNREACH, now)
            return
        self.probes_sent += 1
        self._echoes[host.address] = probe
        self._timeouts.add(
            now + host.rtt.retry_timeout(attempt, last=attempt >= host.retries), probe
        )

    def _shortage(self, error: int | None, now: float) -> None:
        """Back off briefly; out of descriptors, never hold more sockets than now."""
        self._resume_at = now + SHORTAGE_PAUSE
        if error in (errno.EMFILE, errno.ENFILE):
            self._socket_cap = max(1, min(self._socket_cap, len(self._sockets)))

    def _poll(self, timeout: float) -> None:
        # milliseconds, rounded up: a zero would spin until the next timeout is due
        events = self._poller.poll(math.ceil(timeout * 1000))
        now = self._clock()
        sockets, conclude, unregister = self._sockets, self._conclude, self._poller.unregister
        for fd, _mask in events:
            probe = sockets.pop(fd, None)
            if probe is None:
                self._echo_replies(now)
            elif probe.sock is not None:
                unregister(fd)
                conclude(probe, probe.sock.getsockopt(_SOL_SOCKET, _SO_ERROR), now)

    def _echo_replies(self, now: float) -> None:
        if self._pinger is None:
            return
        for address in self._pinger.answered():
            probe = self._echoes.pop(address, None)
            if probe is not None:
                self._conclude(probe, 0, now)

    def _conclude(self, probe: _Probe, error: int, now: float) -> None:
        """Record what one probe found and close its socket."""
        sock, host = probe.sock, probe.host
        if sock is not None:
            if error == 0:
                with contextlib.suppress(OSError):
                    sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _LINGER_ZERO)
            sock.close()
        probe.sock = None
        host.inflight -= 1
        if error == _REFUSED or error == 0:
            elapsed = now - probe.sent
            # an echo reply, or a connect answered after the kernel resent its SYN, could
            # answer an earlier request: no sample (Karn)
            if probe.attempt == 0 or (probe.port != ECHO and elapsed < KERNEL_SYN_RESEND):
                host.answers += 1
                if host.answers % RTT_EVERY == 1:
                    self._sample(host, elapsed)
            if probe.attempt > 0:  # an answer that needed a retry: the path loses packets
                host.retries = self._plan.lossy_retries
            if not host.up:
                host.up = True
                if host.discovering:
                    self._start_port_scan(host)
            port = probe.port
            if port in self._requested:
                if error == 0:
                    host.open.append(port)
                    if self._on_open is not None:
                        self._on_open(host.key, host.address, port)
                else:
                    host.closed += 1
        elif error in _SHORTAGE:
            host.extra.appendleft((probe.port, probe.attempt))
            self._schedule(host)
        else:
            self._unanswered(probe, retry=error in _SILENT)
        if host.inflight == 0 and not host.extra and host.next_index >= len(host.ports):
            self._finish(host)

    def _sample(self, host: _Host, elapsed: float) -> None:
        network = self._network_rtt
        first = network.srtt is None
        if host.rtt.srtt is None:
            network.observe(elapsed)
        host.rtt.observe(elapsed)
        if first:
            self._adopt_network_rtt()

    def _adopt_network_rtt(self) -> None:
        """The network's first answer: hosts still at the initial timeout start from it, and
        their probes in flight are due when it says (their first deadlines stay filed; a
        probe concluded by the earlier one is skipped by the later)."""
        adopted: set[int] = set()
        for host in self._active.values():
            if host.rtt.srtt is None:
                host.rtt.adopt(self._network_rtt)
                adopted.add(host.key)
        for probe in itertools.chain(self._sockets.values(), self._echoes.values()):
            host = probe.host
            if host.key in adopted:
                last = probe.attempt >= host.retries
                timeout = host.rtt.retry_timeout(probe.attempt, last=last)
                self._timeouts.add(probe.sent + timeout, probe)

    def _unanswered(self, probe: _Probe, *, retry: bool) -> None:
        host, port = probe.host, probe.port
        wanted = port in self._requested
        if host.up and not wanted:
            return  # a discovery probe that no longer matters
        if retry and probe.attempt < host.retries:
            host.extra.append((port, probe.attempt + 1))
            self._schedule(host)
        elif wanted:
            host.filtered += 1

    def _start_port_scan(self, host: _Host) -> None:
        """The host answered discovery: scan the requested ports it has not had yet."""
        requested = self._requested
        unsent = host.ports[host.next_index :]
        carried = [(port, attempt) for port, attempt in host.extra if port in requested]
        carried += [(port, 0) for port in unsent if port in requested and port != ECHO]
        host.discovering = False
        host.extra = deque(carried)
        host.ports = self._after_discovery
        host.next_index = 0
        self._schedule(host)

    def _expire(self, now: float) -> None:
        if not self._timeouts.due(now):
            return
        self._poll(0.0)  # answers that came while the loop was busy are answers
        for probe in self._timeouts.expired(now):
            if probe.port == ECHO:
                if self._echoes.get(probe.host.address) is not probe:
                    continue  # answered already
                del self._echoes[probe.host.address]
            elif probe.sock is None:
                continue  # answered already
            else:
                del self._sockets[probe.fd]
                self._poller.unregister(probe.fd)
            self._conclude(probe, errno.ETIMEDOUT, now)

    def _wake(self, now: float) -> None:
        sleeping = self._sleeping
        while sleeping and sleeping[0][0] <= now:
            host = heapq.heappop(sleeping)[2]
            if host.finished or not host.has_pending():
                host.scheduled = False
            else:
                self._ready.append(host)

    def _poll_timeout(self, now: float) -> float:
        if self._round_full:
            return 0.0
        wait = IDLE_WAIT
        next_timeout = self._timeouts.next_deadline()
        if next_timeout is not None:
            wait = min(wait, next_timeout - now)
        if self._sleeping:
            wait = min(wait, self._sleeping[0][0] - now)
        if self._ready and len(self._sockets) < self._socket_cap:
            # held back by the rate limit or a shortage, not by the sockets in flight
            wait = min(wait, max(self._bucket.delay(now), self._resume_at - now))
        return max(0.0, wait)

    def _finish(self, host: _Host) -> None:
        if host.finished:
            return
        host.finished = True
        self._active.pop(host.key, None)
        self._finished.append(host)

    def _report(self, on_host: Callable[[HostScan], None]) -> None:
        finished, self._finished = self._finished, []
        for host in finished:
            on_host(
                HostScan(
                    key=host.key,
                    address=host.address,
                    up=host.up,
                    open_ports=tuple(sorted(host.open)),
                    closed_ports=host.closed,
                    filtered_ports=host.filtered,
                    rtt=host.rtt.srtt if host.up else None,
                )
            )

    def _close_all(self) -> None:
        for probe in self._sockets.values():
            if probe.sock is not None:
                probe.sock.close()
        self._sockets.clear()
        self._poller = select.poll()
        self._register = self._poller.register
