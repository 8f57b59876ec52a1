"""A wire with delay and loss, for kernels built without `tc netem`.

`python -m surveyor.testing.labwire OUTER INNER DELAY_MS LOSS` runs inside the lab's switch
namespace. It creates two TAP devices there, prints `ready`, and then copies Ethernet frames
between them: frames entering INNER (sent by the impaired host, once the lab has moved INNER into
that host's namespace) are dropped with probability LOSS and the rest leave OUTER DELAY_MS later,
in order — what `tc qdisc add dev <host side> root netem delay 50ms loss 5%` does. Frames towards
the host pass unchanged. TAP devices live only as long as this process holds them, so when it
exits (the lab closes its standard input, or it is killed) both devices disappear.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import select
import struct
import sys
import time
from collections import deque

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_MAX_FRAME = 65536
#: At most this many frames wait in the line; more are dropped, as by a full netem queue.
_MAX_QUEUED = 10_000


def open_tap(name: str) -> int:
    """Create the TAP device `name` in this namespace and return its file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    return fd


class DelayLine:
    """Frames from the impaired side, each held until its departure time."""

    def __init__(self, delay_seconds: float, loss: float, rng: random.Random) -> None:
        self.delay_seconds = delay_seconds
        self.loss = loss
        self.rng = rng
        self.frames: deque[tuple[float, bytes]] = deque()

    def push(self, frame: bytes, now: float) -> None:
        if self.rng.random() < self.loss or len(self.frames) >= _MAX_QUEUED:
            return
        self.frames.append((now + self.delay_seconds, frame))

    def due(self, now: float) -> list[bytes]:
        ready: list[bytes] = []
        while self.frames and self.frames[0][0] <= now:
            ready.append(self.frames.popleft()[1])
        return ready

    def wait_seconds(self, now: float) -> float | None:
        return max(0.0, self.frames[0][0] - now) if self.frames else None


def _write(fd: int, frame: bytes) -> None:
    # the device is down or its queue is full: the frame is lost, as on a real wire
    with contextlib.suppress(OSError):
        os.write(fd, frame)


def run(outer: int, inner: int, line: DelayLine, stop_fd: int) -> None:
    """Copy frames until `stop_fd` reaches end of file."""
    while True:
        now = time.monotonic()
        readable, _, _ = select.select([outer, inner, stop_fd], [], [], line.wait_seconds(now))
        now = time.monotonic()
        if stop_fd in readable and not os.read(stop_fd, 4096):
            return
        if outer in readable:
            for frame in _drain(outer):
                _write(inner, frame)
        if inner in readable:
            for frame in _drain(inner):
                line.push(frame, now)
        for frame in line.due(now):
            _write(outer, frame)


def _drain(fd: int) -> list[bytes]:
    frames: list[bytes] = []
    while len(frames) < 256:
        try:
            frames.append(os.read(fd, _MAX_FRAME))
        except BlockingIOError:
            break
    return frames


def keep_time() -> None:
    """Run this process ahead of ordinary ones (the lowest real-time priority; it sleeps in
    `select` between frames). netem delays frames in the kernel, whatever else the machine
    runs; a wire in a process starved of CPU by a busy machine (a test suite, say) would add
    its own delays of hundreds of milliseconds to the configured ones. Without the right to
    (not root), it runs as an ordinary process and says so."""
    try:
        os.sched_setscheduler(
            0, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO))
        )
    except OSError as error:
        sys.stderr.write(f"labwire: runs at ordinary priority ({error})\n")


def main() -> None:
    outer_name, inner_name, delay_ms, loss = sys.argv[1:5]
    keep_time()
    outer = open_tap(outer_name)
    inner = open_tap(inner_name)
    line = DelayLine(int(delay_ms) / 1000.0, float(loss), random.Random())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    run(outer, inner, line, sys.stdin.fileno())


if __name__ == "__main__":
    main()
