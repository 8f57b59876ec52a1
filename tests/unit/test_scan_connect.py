"""The connect scanner's bookkeeping, with a dialer that answers at once, or never (no packet
is sent): every probe is concluded exactly once, every host is reported exactly once."""

from __future__ import annotations

import _socket
import contextlib
import errno
import socket
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from surveyor.scan import connect
from surveyor.scan.connect import LAUNCH_ROUND, AnswerTiming, ConnectScanner, dial
from surveyor.scan.jobs import ConnectPlan, HostJob, HostScan
from surveyor.scan.rtt import TimeoutBounds

Answer = Callable[[str, int, int], int]


class ListSource:
    def __init__(self, addresses: list[str]) -> None:
        self._jobs = [HostJob(key, address) for key, address in enumerate(addresses)]

    def take(self, wait: float) -> HostJob | None:
        return self._jobs.pop(0) if self._jobs else None

    @property
    def exhausted(self) -> bool:
        return not self._jobs


class AnsweringDialer:
    """Hands out unconnected sockets with the errno `answer` picks and counts the dials; the
    first dial of each port in `short_of_files` fails as if descriptors ran out."""

    def __init__(self, answer: Answer, short_of_files: frozenset[int] = frozenset()) -> None:
        self.answer = answer
        self.short = set(short_of_files)
        self.dials: Counter[tuple[str, int]] = Counter()

    def __call__(
        self, family: int, sockaddr: tuple[str, int], attempt: int
    ) -> tuple[_socket.socket, int]:
        address, port = sockaddr
        if port in self.short:
            self.short.discard(port)
            raise OSError(errno.EMFILE, "Too many open files")
        error = self.answer(address, port, attempt)
        self.dials[sockaddr] += 1
        sock = socket.socket(family, socket.SOCK_STREAM)
        if error == errno.EINPROGRESS:  # a connect that never completes: a socket that can
            sock.bind(("127.0.0.1", 0))  # never become writable, a listening one
            sock.listen()
        return sock, error


def scan(
    addresses: list[str],
    answer: Answer,
    short_of_files: frozenset[int] = frozenset(),
    **plan: object,
) -> tuple[dict[str, HostScan], AnsweringDialer]:
    dialer = AnsweringDialer(answer, short_of_files)
    settings: dict[str, object] = {
        "ports": (7, 8, 9),
        "rate": 100000.0,
        "host_rate": 100000.0,
        "timeouts": TimeoutBounds(0.05, 0.01, 0.05),
        **plan,
    }
    plan_ = ConnectPlan(**settings)  # type: ignore[arg-type]
    scanner = ConnectScanner(plan_, stop=threading.Event(), dialer=dialer)
    found: list[HostScan] = []
    scanner.run(ListSource(addresses), found.append)
    by_address = {result.address: result for result in found}
    assert len(by_address) == len(found) == len(addresses), "each host reported once"
    return by_address, dialer


def test_answers_at_once_are_counted_open_and_closed() -> None:
    found, dialer = scan(
        ["127.1.0.1", "127.1.0.2"], lambda a, p, n: 0 if p == 8 else errno.ECONNREFUSED
    )
    for result in found.values():
        assert (result.up, result.open_ports, result.closed_ports) == (True, (8,), 2)
        assert result.filtered_ports == 0
    assert sum(dialer.dials.values()) == 6


def test_discovery_answered_at_once_starts_the_port_scan_without_repeating_ports() -> None:
    found, dialer = scan(
        ["127.1.0.3"],
        lambda a, p, n: errno.ECONNREFUSED,
        ports=(22, 7),
        discovery_ports=(80, 443, 22),
    )
    assert found["127.1.0.3"].closed_ports == 2
    assert dialer.dials == Counter(
        {("127.1.0.3", 80): 1, ("127.1.0.3", 22): 1, ("127.1.0.3", 7): 1}
    )


def test_a_host_that_never_answers_discovery_is_down_and_not_port_scanned() -> None:
    found, dialer = scan(
        ["127.1.0.4"],
        lambda a, p, n: errno.EHOSTUNREACH,
        ports=(7, 8),
        discovery_ports=(80, 443),
    )
    assert found["127.1.0.4"] == HostScan(0, "127.1.0.4", up=False)
    assert set(dialer.dials) == {("127.1.0.4", 80), ("127.1.0.4", 443)}
    assert max(dialer.dials.values()) == 1, "unreachable is final: no retry"


def test_a_resource_shortage_delays_a_probe_but_loses_none() -> None:
    found, dialer = scan(
        ["127.1.0.5"], lambda a, p, n: errno.ECONNREFUSED, short_of_files=frozenset({7, 9})
    )
    assert (found["127.1.0.5"].closed_ports, found["127.1.0.5"].filtered_ports) == (3, 0)
    assert dialer.dials == Counter({("127.1.0.5", port): 1 for port in (7, 8, 9)})


def test_timeouts_are_retried_then_filtered() -> None:
    found, dialer = scan(
        ["127.1.0.6"],
        lambda a, p, n: errno.EINPROGRESS if p == 9 else errno.ECONNREFUSED,
        retries=2,
    )
    assert (found["127.1.0.6"].closed_ports, found["127.1.0.6"].filtered_ports) == (2, 1)
    assert dialer.dials[("127.1.0.6", 9)] == 3


def test_ipv6_hosts_are_dialled_over_ipv6() -> None:
    families: list[int] = []

    def answer(address: str, port: int, attempt: int) -> int:
        return errno.ECONNREFUSED

    dialer = AnsweringDialer(answer)

    def recording(
        family: int, sockaddr: tuple[str, int], attempt: int
    ) -> tuple[_socket.socket, int]:
        families.append(family)
        return dialer(family, sockaddr, attempt)

    plan = ConnectPlan(ports=(7,), discovery_ports=(80,), icmp=True)
    scanner = ConnectScanner(plan, stop=threading.Event(), dialer=recording)
    found: list[HostScan] = []
    scanner.run(ListSource(["::1", "127.1.0.7"]), found.append)
    assert {result.address: result.closed_ports for result in found} == {"::1": 1, "127.1.0.7": 1}
    assert families.count(socket.AF_INET6) == 2
    assert families.count(socket.AF_INET) == 2


class TickClock:
    """Virtual time that moves `step` seconds each time the scanner's loop goes round, and
    asks the scanner to stop after `limit` rounds (so a wrong wait fails, never hangs)."""

    def __init__(self, step: float, limit: int = 500) -> None:
        self.now = 0.0
        self.step = step
        self.limit = limit
        self.rounds = 0
        self.stop = threading.Event()

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.step
        self.rounds += 1
        if self.rounds >= self.limit:
            self.stop.set()


def one_port(timeouts: TimeoutBounds) -> ConnectPlan:
    """Port 7 of each host, two retries, no rate limit to speak of."""
    return ConnectPlan(ports=(7,), rate=100000.0, host_rate=100000.0, retries=2, timeouts=timeouts)


@pytest.fixture
def brief_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop polls for a millisecond at most: with a `TickClock`, time is virtual, and a
    wait computed from it would otherwise be spent for real."""
    monkeypatch.setattr(connect, "IDLE_WAIT", 0.001)


@pytest.mark.usefixtures("brief_polls")
def test_hosts_taken_on_before_the_first_answer_adopt_the_networks_timeout() -> None:
    # the silent host's probe goes out while the timeout is still the initial hour; the
    # other host's answer shows a fast network, and the silent host's wait shrinks to match
    clock = TickClock(0.02)
    dialer = AnsweringDialer(
        lambda a, p, n: errno.EINPROGRESS if a == "127.1.0.8" else errno.ECONNREFUSED
    )
    # each attempt waiting the initial timeout would take 9 s; the limit is 6
    plan = one_port(TimeoutBounds(initial=3.0, minimum=0.05, maximum=3.0))
    clock.limit = 300
    scanner = ConnectScanner(plan, stop=clock.stop, dialer=dialer, clock=clock)
    found: list[HostScan] = []
    scanner.run(ListSource(["127.1.0.8", "127.1.0.9"]), found.append, clock.tick)
    assert not clock.stop.is_set(), "the silent host was still waiting out the initial timeout"
    assert {result.address: result.filtered_ports for result in found} == {
        "127.1.0.8": 1,
        "127.1.0.9": 0,
    }
    assert dialer.dials[("127.1.0.8", 7)] == 3


@pytest.mark.usefixtures("brief_polls")
def test_a_host_heard_only_after_its_address_is_resolved_again_is_found() -> None:
    # the answer to the first ARP request was lost: the kernel asks again a second later and
    # only then sends the SYNs it held, so the attempts still waiting then are answered
    clock = TickClock(0.01)
    held: list[tuple[socket.socket, socket.socket]] = []
    resolved_at = 1.05

    def held_until_resolved(
        family: int, sockaddr: tuple[str, int], attempt: int
    ) -> tuple[_socket.socket, int]:
        if sockaddr[0] == "127.1.0.13":  # a neighbour answering at once: a fast network
            return socket.socket(family, socket.SOCK_STREAM), errno.ECONNREFUSED
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:  # a full send buffer: not writable until the peer reads
                ours.send(b"x" * 65536)
        held.append((ours, theirs))
        return ours, errno.EINPROGRESS

    def tick() -> None:
        clock.tick()
        if clock.now >= resolved_at:
            for ours, theirs in held:
                if ours.fileno() != -1:
                    theirs.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        while theirs.recv(1 << 20):
                            pass

    plan = one_port(TimeoutBounds(initial=1.0, minimum=0.05, maximum=3.0))
    scanner = ConnectScanner(plan, stop=clock.stop, dialer=held_until_resolved, clock=clock)
    found: list[HostScan] = []
    try:
        scanner.run(ListSource(["127.1.0.13", "127.1.0.12"]), found.append, tick)
    finally:
        for _ours, theirs in held:
            theirs.close()
    assert not clock.stop.is_set()
    result = {scanned.address: scanned for scanned in found}["127.1.0.12"]
    assert (result.up, result.open_ports) == (True, (7,))
    assert clock.now >= resolved_at
    assert len(held) == 3, "answered on the last of three attempts"


def test_an_answer_already_in_when_the_loop_comes_back_late_is_an_answer() -> None:
    # the first dial holds the loop up far beyond the probe's timeout (a busy machine); the
    # connection was answered meanwhile, so it is open, with no retry
    clock = TickClock(0.001)
    peers: list[socket.socket] = []
    dials: Counter[int] = Counter()

    def stalling(
        family: int, sockaddr: tuple[str, int], attempt: int
    ) -> tuple[_socket.socket, int]:
        dials[sockaddr[1]] += 1
        ours, theirs = socket.socketpair()  # connected: writable at once, no error
        peers.append(theirs)
        clock.now += 5.0
        return ours, errno.EINPROGRESS

    plan = ConnectPlan(
        ports=(7,), rate=100000.0, host_rate=100000.0, timeouts=TimeoutBounds(0.05, 0.05, 0.05)
    )
    scanner = ConnectScanner(plan, stop=clock.stop, dialer=stalling, clock=clock)
    found: list[HostScan] = []
    scanner.run(ListSource(["127.1.0.10"]), found.append, clock.tick)
    for peer in peers:
        peer.close()
    assert found[0].open_ports == (7,)
    assert dials == Counter({7: 1})


def test_an_answer_to_a_retry_is_a_round_trip_sample_and_marks_the_path_lossy() -> None:
    found, dialer = scan(
        ["127.1.0.11"],
        lambda a, p, n: errno.EINPROGRESS if n == 0 else errno.ECONNREFUSED,
        ports=(7,),
    )
    # each attempt is a socket of its own: the answer can only be the retry's
    assert found["127.1.0.11"].rtt is not None
    assert (found["127.1.0.11"].closed_ports, dialer.dials[("127.1.0.11", 7)]) == (1, 2)


def test_a_group_of_hosts_is_worked_on_at_once_even_when_the_first_has_probes_left() -> None:
    order: list[str] = []
    dialer = AnsweringDialer(lambda a, p, n: errno.ECONNREFUSED)

    def recording(
        family: int, sockaddr: tuple[str, int], attempt: int
    ) -> tuple[_socket.socket, int]:
        order.append(sockaddr[0])
        return dialer(family, sockaddr, attempt)

    # the global rate, not the hosts' own, holds the first host back: it always has a probe
    # ready to send, yet the second host of the group starts alongside it
    plan = ConnectPlan(ports=tuple(range(1, 41)), rate=1000.0, host_rate=100000.0, host_group=2)
    scanner = ConnectScanner(plan, stop=threading.Event(), dialer=recording)
    found: list[HostScan] = []
    scanner.run(ListSource(["127.1.0.12", "127.1.0.13", "127.1.0.14"]), found.append)
    assert {result.address: result.closed_ports for result in found} == {
        "127.1.0.12": 40,
        "127.1.0.13": 40,
        "127.1.0.14": 40,
    }
    first_of = {address: order.index(address) for address in set(order)}
    last_of = {address: len(order) - 1 - order[::-1].index(address) for address in set(order)}
    assert first_of["127.1.0.13"] < last_of["127.1.0.12"], "the group started together"
    assert first_of["127.1.0.14"] > first_of["127.1.0.13"]


def test_open_ports_are_announced_as_found_before_their_host_is_reported() -> None:
    events: list[tuple[str, object]] = []
    dialer = AnsweringDialer(lambda a, p, n: 0 if p in (8, 9) else errno.ECONNREFUSED)
    plan = ConnectPlan(ports=(7, 8, 9), rate=100000.0, host_rate=100000.0)
    scanner = ConnectScanner(
        plan,
        stop=threading.Event(),
        dialer=dialer,
        on_open=lambda key, address, port: events.append(("open", (key, address, port))),
    )
    scanner.run(
        ListSource(["127.1.0.15", "127.1.0.16"]),
        lambda result: events.append(("host", result.address)),
    )
    for key, address in enumerate(["127.1.0.15", "127.1.0.16"]):
        reported = events.index(("host", address))
        announced = [events.index(("open", (key, address, port))) for port in (8, 9)]
        assert max(announced) < reported
    assert len(events) == 6, "each open port announced once, each host reported once"


def test_answers_at_once_are_read_at_once_while_most_probes_get_them() -> None:
    timing = AnswerTiming()
    assert all(timing.worth_reading() for _ in range(10))
    for _ in range(100):  # a network whose answers take a while
        timing.note(False)
    checked = sum(timing.worth_reading() for _ in range(10 * AnswerTiming.SAMPLE_EVERY))
    assert checked == 10, "one probe in SAMPLE_EVERY is still checked"
    for _ in range(100):
        timing.note(True)
    assert all(timing.worth_reading() for _ in range(10))


def test_a_loopback_answer_in_before_connect_returns_needs_no_wait() -> None:
    # nothing listens on these loopback ports: the kernel refuses within connect() itself
    events: list[object] = []
    plan = ConnectPlan(ports=(7, 8, 9), rate=100000.0, host_rate=100000.0)
    scanner = ConnectScanner(plan, stop=threading.Event(), dialer=dial)
    scanner.run(
        ListSource(["127.1.0.17"]),
        lambda result: events.append(result),
        lambda: events.append("round"),
    )
    first = events[0]
    assert isinstance(first, HostScan), "reported in the first round, before any wait"
    assert (first.up, first.closed_ports, first.open_ports) == (True, 3, ())


def test_the_loop_comes_round_to_look_at_stop_even_when_every_answer_comes_at_once() -> None:
    stop = threading.Event()
    dialer = AnsweringDialer(lambda a, p, n: errno.ECONNREFUSED)
    plan = ConnectPlan(ports=(7,), rate=1_000_000.0, host_rate=100000.0)
    scanner = ConnectScanner(plan, stop=stop, dialer=dialer)
    found: list[HostScan] = []
    addresses = [f"127.2.{n // 250}.{n % 250 + 1}" for n in range(3 * LAUNCH_ROUND)]
    scanner.run(ListSource(addresses), found.append, stop.set)
    assert 0 < len(found) <= LAUNCH_ROUND
