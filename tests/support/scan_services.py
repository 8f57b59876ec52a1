"""Real TCP services on loopback addresses, for the scan engine's tests (SPEC §14: 127/8 only).

Linux routes all of 127.0.0.0/8 to `lo`, so every test can have hosts of its own (127.77.x.y,
...) with services on ports the OS picks. Each service runs a thread that accepts, and a thread
per connection; a scanner resets connections all the time, so connection errors are expected
and ignored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HTTP_SERVER = "ScanTestHTTP/1.0"
#: How long a connection may idle before the service hangs up.
IDLE_SECONDS = 5.0

Handler = Callable[[socket.socket], None]
_T = TypeVar("_T")


@dataclass(frozen=True)
class GeneratedCertificate:
    """A generated certificate and key on disk, with what a scanner should report about it."""

    cert_file: Path
    key_file: Path
    subject: str
    issuer: str
    sans: list[str]
    not_before: str
    not_after: str
    sha256: str


def make_certificate(directory: Path, common_name: str, address: str) -> GeneratedCertificate:
    """A self-signed certificate for `common_name`, with the name and `address` as SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Surveyor Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2035, 1, 1, tzinfo=dt.UTC)
    alt_names = x509.SubjectAlternativeName(
        [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(address))]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(alt_names, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{common_name}.pem", directory / f"{common_name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return GeneratedCertificate(
        cert_file=cert_file,
        key_file=key_file,
        subject=name.rfc4514_string(),
        issuer=name.rfc4514_string(),
        sans=[common_name, address],
        not_before="2025-01-01T00:00:00Z",
        not_after="2035-01-01T00:00:00Z",
        sha256=hashlib.sha256(der).hexdigest(),
    )


def page(title: str) -> bytes:
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>hi</body></html>".encode()
    )


class Stream(Protocol):
    """What a handler speaks through: a socket, or TLS over one."""

    def recv(self, size: int, /) -> bytes: ...

    def sendall(self, data: bytes, /) -> None: ...


class _TlsOverSocket:
    """The server side of TLS over an accepted socket, through memory buffers. (The ssl
    module's `wrap_socket` leaves its new socket unclosed when the peer reset before the
    handshake, as a scanner's probes do: Python 3.11's `SSLSocket._create` re-raises the
    ECONNRESET of its `recv(1)` without closing it.) Closing the socket is the caller's."""

    def __init__(self, context: ssl.SSLContext, sock: socket.socket) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._run(self._tls.do_handshake)

    def _run(self, operation: Callable[..., _T], *args: object) -> _T:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                received = self._sock.recv(16384)
                if received:
                    self._incoming.write(received)
                else:
                    self._incoming.write_eof()
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)

    def recv(self, size: int, /) -> bytes:
        return self._run(self._tls.read, size)

    def sendall(self, data: bytes, /) -> None:
        view = memoryview(data)
        while view:
            view = view[self._run(self._tls.write, view) :]


def _read_request(conn: Stream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _answer_http(conn: Stream, title: str) -> None:
    if not _read_request(conn).startswith(b"GET "):
        return
    body = page(title)
    head = (
        f"HTTP/1.1 200 OK\r\nServer: {HTTP_SERVER}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    conn.sendall(head.encode() + body)


def _wait_for_close(conn: socket.socket) -> None:
    while conn.recv(4096):
        pass


class LoopbackServices:
    """Starts services on loopback addresses and stops them all on `close()`."""

    def __init__(self) -> None:
        self._listeners: list[socket.socket] = []
        self._stopping = threading.Event()
        self._accept_threads: list[threading.Thread] = []
        #: connections accepted so far, per (address, port)
        self.accepted: dict[tuple[str, int], int] = {}
        self._accepted_event = threading.Condition()

    def banner(self, address: str, greeting: str) -> int:
        """A server-first service: sends `greeting` and a line end on every connection."""

        def greet(conn: socket.socket) -> None:
            conn.sendall(greeting.encode() + b"\r\n")
            _wait_for_close(conn)

        return self._listen(address, greet)

    def http(self, address: str, title: str) -> int:
        """A web server answering every GET with a page titled `title`."""
        return self._listen(address, lambda conn: _answer_http(conn, title))

    def https(
        self,
        address: str,
        title: str,
        certificate: GeneratedCertificate,
        alpn: list[str] | None = None,
    ) -> int:
        """The same web server behind TLS, with `certificate`; with `alpn`, it chooses the
        first of those protocols the client offers (and answers only HTTP/1.1 requests)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        if alpn:
            context.set_alpn_protocols(alpn)

        def serve(conn: socket.socket) -> None:
            _answer_http(_TlsOverSocket(context, conn), title)

        return self._listen(address, serve)

    def silent(self, address: str) -> int:
        """Accepts connections and never says a word."""
        return self._listen(address, _wait_for_close)

    def closed_port(self, address: str) -> int:
        """A port nothing listens on (the OS picked it free, and it was let go)."""
        with socket.socket() as probe:
            probe.bind((address, 0))
            return int(probe.getsockname()[1])

    def black_hole(self, address: str) -> int:
        """A port that drops connection attempts, as a firewall would: a listener whose
        accept queue is full, so the kernel ignores further SYNs."""
        listener = socket.socket()
        listener.bind((address, 0))
        listener.listen(0)
        self._listeners.append(listener)
        port = int(listener.getsockname()[1])
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((address, port))
            fillers.append(filler)
            self._listeners.append(filler)
        # the first filler completes (it is queued); the others stay unanswered
        select.select([], fillers[:1], [], 5.0)
        return port

    def wait_for_connection(self, address: str, port: int, timeout: float) -> bool:
        """Whether a client connected to the service by `timeout` seconds from now."""
        with self._accepted_event:
            return self._accepted_event.wait_for(
                lambda: self.accepted.get((address, port), 0) > 0, timeout
            )

    def _listen(self, address: str, handler: Handler) -> int:
        listener = socket.socket()
        listener.bind((address, 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listeners.append(listener)
        port = int(listener.getsockname()[1])
        thread = self._start(self._accept_loop, listener, (address, port), handler)
        self._accept_threads.append(thread)
        return port

    def _accept_loop(
        self, listener: socket.socket, where: tuple[str, int], handler: Handler
    ) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._accepted_event:
                self.accepted[where] = self.accepted.get(where, 0) + 1
                self._accepted_event.notify_all()
            self._start(self._serve, conn, handler)

    def _serve(self, conn: socket.socket, handler: Handler) -> None:
        with conn, contextlib.suppress(OSError, ValueError):
            conn.settimeout(IDLE_SECONDS)
            handler(conn)

    def _start(self, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._stopping.set()
        for listener in self._listeners:
            listener.close()
        for thread in self._accept_threads:
            thread.join(1.0)


@contextlib.contextmanager
def loopback_services() -> Iterator[LoopbackServices]:
    services = LoopbackServices()
    try:
        yield services
    finally:
        services.close()
