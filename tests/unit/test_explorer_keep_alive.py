"""An explorer reuses an idle connection only well inside the console's keep-alive: it never
sends a request on a connection the console may be closing at that very moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from surveyor.core.explorer_protocol import CLIENT_KEEP_ALIVE_SECONDS, KEEP_ALIVE_SECONDS
from surveyor.explorer.client import ExplorerClient


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0


class _Healthy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open between requests

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, _CountingServer)
        self.server.connections += 1

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_CountingServer]:
    server = _CountingServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_explorer_lets_idle_connections_go_well_before_the_console_does() -> None:
    assert CLIENT_KEEP_ALIVE_SECONDS + 1 <= KEEP_ALIVE_SECONDS


def test_an_explorer_reuses_a_fresh_connection_and_not_one_idle_past_its_keep_alive(
    server: _CountingServer,
) -> None:
    host, port = server.server_address[:2]
    with ExplorerClient(f"http://{host}:{port}") as client:
        assert client.healthy()
        assert client.healthy()
        assert server.connections == 1  # back to back: the same connection
        time.sleep(CLIENT_KEEP_ALIVE_SECONDS + 0.5)  # the connection idles past the expiry
        assert client.healthy()
        assert server.connections == 2  # a new one, not the one the console may be closing
