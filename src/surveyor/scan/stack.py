"""TCP/IP stack hints (IPv4), when the process may open a raw socket: the TTL, window and
options of the SYN-ACKs that answer the scan's own connects.

A raw TCP socket receives a copy of every TCP packet the system receives; a socket filter
lets only SYN-ACKs through, so the kernel queues nothing else. The first SYN-ACK from a
port of the scan is kept per source address until the host's record takes it (`take`), and
the queue is read whenever the engine looks (`drain`). Nothing is sent: the connects of the
port scan and the service probes are the only packets. Without the privilege
(`CAP_NET_RAW`), `StackHints.open` returns None and the scan runs exactly as without it.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time
from collections.abc import Callable, Collection
from typing import Final

#: SYN-ACKs kept for hosts whose record has not taken theirs yet, at most.
MAX_WAITING: Final = 65_536
#: A packet is read this far at most: an IP header with options and a TCP header with options.
READ_BYTES: Final = 128
#: The kernel's queue of SYN-ACKs not read yet.
RECEIVE_BUFFER: Final = 1 << 20
#: The engine drains the queue at most this often (it also drains before each `take`).
DRAIN_EVERY: Final = 0.005

_SO_ATTACH_FILTER: Final = 26
_SYN, _RST, _ACK = 0x02, 0x04, 0x10
_OPTION_LETTERS: Final = {1: "N", 4: "S", 8: "T"}


def _syn_ack_filter() -> bytes:
    """A classic BPF program passing only TCP segments with SYN and ACK set and RST clear,
    read from the IP header on (what a raw IPv4 socket's filter sees)."""
    instructions = (
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf): X = the IP header's length
        (0x50, 0, 0, 13),  # ldb [x+13]: A = the TCP flags
        (0x54, 0, 0, _SYN | _RST | _ACK),  # and
        (0x15, 0, 1, _SYN | _ACK),  # jeq SYN|ACK, else drop
        (0x06, 0, 0, READ_BYTES),  # ret: keep the first READ_BYTES
        (0x06, 0, 0, 0),  # ret 0: drop
    )
    return b"".join(struct.pack("HBBI", *instruction) for instruction in instructions)


def parse_syn_ack(packet: bytes) -> tuple[str, int, dict[str, object]] | None:
    """(source address, source port, hint) of an IPv4 SYN-ACK; None for anything else.

    The hint is what the record carries: `ttl` as received, the `window` as sent (unscaled,
    as in any SYN) and the `options` in the order sent: `M<mss>`, `S` (SACK permitted),
    `T` (timestamps), `N` (no-op), `W<shift>`, `E` (end), `?<kind>` for others."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return None
    ip_length = (packet[0] & 0x0F) * 4
    tcp = packet[ip_length:]
    if len(tcp) < 20 or tcp[13] & (_SYN | _RST | _ACK) != _SYN | _ACK:
        return None
    source_port, window = struct.unpack_from("!H", tcp, 0)[0], struct.unpack_from("!H", tcp, 14)[0]
    header = min((tcp[12] >> 4) * 4, len(tcp))
    hint: dict[str, object] = {
        "ttl": packet[8],
        "window": window,
        "options": _options(tcp[20:header]),
    }
    return socket.inet_ntoa(packet[12:16]), source_port, hint


def _options(data: bytes) -> str:
    spelled: list[str] = []
    at = 0
    while at < len(data):
        kind = data[at]
        if kind == 0:
            spelled.append("E")
            break
        if kind == 1:
            spelled.append("N")
            at += 1
            continue
        length = data[at + 1] if at + 1 < len(data) else 0
        if length < 2 or at + length > len(data):
            spelled.append("?")
            break
        value = data[at + 2 : at + length]
        if kind == 2 and length == 4:
            spelled.append(f"M{struct.unpack('!H', value)[0]}")
        elif kind == 3 and length == 3:
            spelled.append(f"W{value[0]}")
        else:
            spelled.append(_OPTION_LETTERS.get(kind, f"?{kind}"))
        at += length
    return ",".join(spelled)


class StackHints:
    """The first SYN-ACK of each host the scan connects to, read from a raw socket."""

    def __init__(
        self, sock: socket.socket, ports: Collection[int], wanted: Callable[[str], bool]
    ) -> None:
        self._sock = sock
        self._ports = frozenset(ports)
        self._wanted = wanted
        self._waiting: dict[str, dict[str, object]] = {}
        self._drained = 0.0

    @classmethod
    def open(cls, ports: Collection[int], wanted: Callable[[str], bool]) -> StackHints | None:
        """Hints of the SYN-ACKs from `ports` of the addresses `wanted` says are the scan's;
        None when the process may not open a raw socket (no `CAP_NET_RAW`)."""
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        except OSError:
            return None
        try:
            sock.setblocking(False)
            program = _syn_ack_filter()
            buffer = ctypes.create_string_buffer(program)
            fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            sock.close()  # no filter: not worth every TCP packet of the system
            return None
        return cls(sock, ports, wanted)

    def drain(self, *, force: bool = True) -> None:
        """Read every SYN-ACK queued so far (unless `force` is off and the last drain was
        less than `DRAIN_EVERY` ago)."""
        now = time.monotonic()
        if not force and now - self._drained < DRAIN_EVERY:
            return
        self._drained = now
        waiting, recv = self._waiting, self._sock.recv
        while True:
            try:
                packet = recv(READ_BYTES)
            except OSError:  # nothing more to read (or the socket failed): done for now
                return
            found = parse_syn_ack(packet)
            if found is None:
                continue
            address, port, hint = found
            if (
                port in self._ports
                and address not in waiting
                and len(waiting) < MAX_WAITING
                and self._wanted(address)
            ):
                waiting[address] = hint

    def take(self, address: str) -> dict[str, object] | None:
        """The hint of `address` (its first SYN-ACK), once; None if none came."""
        self.drain()
        return self._waiting.pop(address, None)

    def close(self) -> None:
        self._sock.close()
