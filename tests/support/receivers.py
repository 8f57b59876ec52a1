"""Real notification receivers on 127.0.0.1: a webhook server that verifies signatures as a
user's receiver would, and an SMTP server (aiosmtpd), optionally requiring STARTTLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from surveyor.core.notifications import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
)

#: Generous: the receivers are waited on, never timed.
WAIT_SECONDS = 30.0


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One POST the receiver verified and acknowledged."""

    body: dict[str, Any]
    delivery_id: str


@dataclass
class WebhookReceiver:
    """Collects the webhooks posted to it, checking each signature with `secret`."""

    secret: str
    port: int = field(default_factory=free_port)
    #: The status code of each answer in turn; 204 once they run out.
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    #: POSTs whose signature did not verify (answered 401).
    refused: int = 0
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/surveyor"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                verified = signature_matches(
                    receiver.secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                with receiver._condition:
                    if not verified:
                        status = 401  # a receiver refuses what it cannot verify
                        receiver.refused += 1
                    else:
                        status = receiver.answers.pop(0) if receiver.answers else 204
                    if 200 <= status < 300:
                        receiver.received.append(
                            Received(json.loads(body), self.headers.get(DELIVERY_HEADER, ""))
                        )
                    receiver._condition.notify_all()
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int) -> list[Received]:
        with self._condition:
            reached = self._condition.wait_for(lambda: len(self.received) >= count, WAIT_SECONDS)
            assert reached, f"the receiver got {len(self.received)} webhooks, expected {count}"
            return list(self.received)


@contextmanager
def webhook_receiver(secret: str, *, started: bool = True) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret)
    if started:
        receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message, bool]] = []
        self.condition = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        with self.condition:
            self.messages.append((envelope, message_from_bytes(raw), session.ssl is not None))
            self.condition.notify_all()
        return "250 OK"


@dataclass
class SmtpReceiver:
    port: int
    mailbox: _Mailbox

    def wait_for(self, count: int) -> list[tuple[Envelope, Message, bool]]:
        """The messages received, each with whether it came over TLS."""
        with self.mailbox.condition:
            reached = self.mailbox.condition.wait_for(
                lambda: len(self.mailbox.messages) >= count, WAIT_SECONDS
            )
            assert reached, f"the SMTP server got {len(self.mailbox.messages)} messages"
            return list(self.mailbox.messages)


def self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and `name`) and its key, as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextmanager
def smtp_receiver(*, tls: tuple[Path, Path] | None = None) -> Iterator[SmtpReceiver]:
    """An SMTP server on 127.0.0.1; with a certificate and key, it offers STARTTLS and
    refuses mail sent without it."""
    mailbox = _Mailbox()
    port = free_port()
    options: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        options = {"tls_context": context, "require_starttls": True}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpReceiver(port, mailbox)
    finally:
        controller.stop()


def trusting(cert_file: Path) -> Callable[[], ssl.SSLContext]:
    """A TLS context factory for the sender that trusts `cert_file` alone."""
    return lambda: ssl.create_default_context(cafile=str(cert_file))
