"""A TCP relay between two loopback ports: a network path a test can break.

An explorer pointed at the relay reaches the console through it. `outage()` resets every
connection and refuses new ones for as long as it lasts (a network blip); `cut_next_upload()`
resets the connection carrying the next task-data upload half-way through its body, and
`stall_next_upload()` lets half of that body through and then silently drops the rest (a path
that died without a reset), while answers still come back.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

UPLOAD_REQUEST = b"PUT /api/v1/explorer/task-data/"
HEADERS_END = b"\r\n\r\n"


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a broken network path would. Shutting the reading side first
    wakes a thread blocked in recv() on it, which would otherwise keep the socket (and the
    RST) from going until its peer speaks."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class _Pair:
    """One relayed connection: the client's socket and ours to the target."""

    def __init__(self, relay: TcpRelay, client: socket.socket, upstream: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        #: an upload's headers went through; its body is cut at the next bytes
        self.cut_at_body = False
        #: what the client sends from now on is dropped
        self.black_hole = False
        self.stall = False

    def start(self) -> None:
        for source, target, outbound in (
            (self.client, self.upstream, True),
            (self.upstream, self.client, False),
        ):
            pump = threading.Thread(target=self._pump, args=(source, target, outbound), daemon=True)
            pump.start()

    def _pump(self, source: socket.socket, target: socket.socket, outbound: bool) -> None:
        try:
            while not self.closed.is_set():
                chunk = source.recv(65536)
                if not chunk:
                    break
                if outbound and self._cut(chunk, target):
                    return
                target.sendall(chunk)
        except OSError:
            pass
        self.close()

    def _cut(self, chunk: bytes, target: socket.socket) -> bool:
        """Forward part of an upload's body, then break the connection (or drop the rest)."""
        if self.black_hole:
            return True
        if self.cut_at_body:
            target.sendall(chunk[: max(1, len(chunk) // 2)])
            self._break()
            return True
        start = chunk.find(UPLOAD_REQUEST)
        if start < 0:
            return False
        how = self.relay.take_upload_fault()
        if how is None:
            return False
        self.stall = how == "stall"
        end = chunk.find(HEADERS_END, start)
        if end < 0 or len(chunk) - (end + 4) < 2:
            # The body comes in a later piece: break there.
            self.cut_at_body = True
            return False
        body_start = end + 4
        target.sendall(chunk[: body_start + (len(chunk) - body_start) // 2])
        self._break()
        return True

    def _break(self) -> None:
        if self.stall:
            self.black_hole = True
            self.relay.uploads_stalled += 1
        else:
            self.relay.uploads_cut += 1
            self.reset()

    def reset(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.upstream)
            self.relay.forget(self)

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for sock in (self.client, self.upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.relay.forget(self)


class TcpRelay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._down = threading.Event()
        self._closed = threading.Event()
        self._upload_faults: list[str] = []
        self.uploads_cut = 0
        self.uploads_stalled = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        # Closing a listening socket does not wake a thread blocked in accept(); shutting it
        # down does (on Linux), so the accepting thread ends now rather than at the join's
        # timeout.
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for pair in list(self._pairs):
            pair.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._down.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            pair = _Pair(self, client, upstream)
            with self._lock:
                self._pairs.add(pair)
            pair.start()

    def forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)

    def take_upload_fault(self) -> str | None:
        with self._lock:
            return self._upload_faults.pop(0) if self._upload_faults else None

    def cut_next_upload(self) -> None:
        with self._lock:
            self._upload_faults.append("cut")

    def stall_next_upload(self) -> None:
        with self._lock:
            self._upload_faults.append("stall")

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Break every connection and refuse new ones until the block ends."""
        self._down.set()
        for pair in list(self._pairs):
            pair.reset()
        try:
            yield
        finally:
            self._down.clear()
