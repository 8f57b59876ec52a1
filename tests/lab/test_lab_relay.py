"""A process in the scanner's namespace reaches one relayed loopback port of the tests, no other."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from surveyor.testing.netlab import NetLab

FETCH = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
)


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"console on the tests' loopback"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def loopback_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_relayed_loopback_port_answers_inside_the_scanner_namespace(
    lab: NetLab, loopback_server: int
) -> None:
    assert lab.probe([("127.0.0.1", loopback_server)]) == {("127.0.0.1", loopback_server): "closed"}
    url = lab.reach_loopback_port(loopback_server)
    done = lab.run_in_scanner([sys.executable, "-c", FETCH, f"{url}/"], timeout=30)
    assert done.stdout.strip() == "console on the tests' loopback", done.stderr


def test_other_loopback_ports_stay_out_of_reach(lab: NetLab) -> None:
    port = _free_port()
    with socket.create_server(("127.0.0.1", port)):
        assert lab.probe([("127.0.0.1", port)]) == {("127.0.0.1", port): "closed"}
