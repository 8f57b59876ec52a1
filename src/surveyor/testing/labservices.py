"""The services of one lab host, run inside that host's network namespace.

`python -m surveyor.testing.labservices CONFIG.json` listens on every service of the config,
prints `ready` once all are bound, and serves until its standard input closes (the lab closes it,
or the lab's process died) or it is terminated. Scanners connect and hang up abruptly all the
time, so connection errors are expected and never printed.
"""

from __future__ import annotations

import html
import json
import os
import socketserver
import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: How long a connection may idle before the lab host hangs up.
IDLE_SECONDS = 5.0
#: Backlog of every listener: scanners and nmap open many connections at once.
BACKLOG = 512
HTTP_SERVER_HEADER = "LabHTTP/1.0"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One listener, as the lab describes it in the config file."""

    port: int
    kind: str  # "banner", "http" or "https"
    banner: str | None = None
    http_title: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def write_config(path: Path, services: list[ServiceConfig]) -> None:
    """Write the config file a service runner reads."""
    records = [
        {key: getattr(service, key) for key in ServiceConfig.__slots__} for service in services
    ]
    path.write_text(json.dumps({"services": records}))


def read_config(path: Path) -> list[ServiceConfig]:
    records = json.loads(path.read_text())["services"]
    return [ServiceConfig(**record) for record in records]


class _QuietServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets and half-open probes are what scanners do; they are not errors here."""


class _BannerHandler(socketserver.BaseRequestHandler):
    """Greets first, like SSH, SMTP, FTP, POP3 and IMAP servers, then waits for the client."""

    server: _BannerServer

    def handle(self) -> None:
        self.request.settimeout(IDLE_SECONDS)
        self.request.sendall(self.server.banner.encode() + b"\r\n")
        while self.request.recv(4096):
            pass


class _BannerServer(_QuietServer):
    def __init__(self, port: int, banner: str) -> None:
        self.banner = banner
        super().__init__(("0.0.0.0", port), _BannerHandler)  # noqa: S104 - inside a lab namespace


class _PageHandler(BaseHTTPRequestHandler):
    """Answers every GET and HEAD with a small page carrying the configured title."""

    server: _HttpServer
    timeout = IDLE_SECONDS

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        title = html.escape(self.server.title)
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def version_string(self) -> str:
        return HTTP_SERVER_HEADER

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the lab serves scanners, not readers of access logs."""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, port: int, title: str, tls: ssl.SSLContext | None) -> None:
        self.title = title
        self.tls = tls
        super().__init__(("0.0.0.0", port), _PageHandler)  # noqa: S104 - inside a lab namespace

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's thread, so a client that connects and
        # says nothing never stalls the accepting thread.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(IDLE_SECONDS)
        with self.tls.wrap_socket(request, server_side=True) as tls_request:
            super().finish_request(tls_request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets and aborted handshakes are what scanners do; they are not errors here."""


def _tls_context(service: ServiceConfig) -> ssl.SSLContext:
    if service.cert_file is None or service.key_file is None:
        raise ValueError(f"the https service on port {service.port} needs a certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(service.cert_file, service.key_file)
    return context


def _listener(service: ServiceConfig) -> socketserver.BaseServer:
    if service.kind == "banner":
        return _BannerServer(service.port, service.banner or "")
    if service.kind == "http":
        return _HttpServer(service.port, service.http_title or "", None)
    if service.kind == "https":
        return _HttpServer(service.port, service.http_title or "", _tls_context(service))
    raise ValueError(f"unknown service kind {service.kind!r}")


def serve(services: list[ServiceConfig]) -> None:
    """Bind every service, say `ready`, serve until standard input closes."""
    listeners = [_listener(service) for service in services]
    for listener in listeners:
        threading.Thread(target=listener.serve_forever, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while sys.stdin.buffer.read(4096):
        pass


def main() -> None:
    serve(read_config(Path(sys.argv[1])))
    # Daemon threads may be mid-request; leave at once rather than join them.
    os._exit(0)


if __name__ == "__main__":
    main()
