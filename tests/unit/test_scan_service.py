"""Describing an open port: which probes run, in which order, and what fills the entry.
Each connection is one end of a socket pair, served by a scripted thread (no network)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from surveyor.core.scan_params import Probe
from surveyor.scan.probes.service import (
    ProbeTimeouts,
    ServiceTarget,
    asks_after_greeting,
    describe_port,
    probe_order,
)
from tests.support.scan_services import make_certificate

Serve = Callable[[socket.socket], None]
ALL = frozenset({Probe.BANNER, Probe.HTTP, Probe.TLS})
QUICK = ProbeTimeouts(banner=0.2, exchange=1.0, greeting=0.05)
PLAIN_TO_TLS = (
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n"
    b"<title>400 The plain HTTP request was sent to HTTPS port</title>"
)


class ScriptedDial:
    """Answers the n-th connection with the n-th script; records which scripts ran."""

    def __init__(self, *scripts: Serve) -> None:
        self.scripts = list(scripts)
        self.connections = 0

    def __call__(self, address: str, port: int, timeout: float) -> socket.socket:
        script = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        client, server = socket.socketpair()
        client.settimeout(timeout)

        def serve() -> None:
            with server, contextlib.suppress(OSError):
                script(server)

        threading.Thread(target=serve, daemon=True).start()
        return client


def greets(text: bytes) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.sendall(text)
        conn.recv(100)

    return serve


def answers_http(response: bytes) -> Serve:
    def serve(conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        conn.sendall(response)

    return serve


def silent(conn: socket.socket) -> None:
    conn.recv(100)


def greets_once_asked(text: bytes) -> Serve:
    """A server that greets late: only after the client has said something."""

    def serve(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(text)
        conn.recv(100)

    return serve


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bytes], Serve]:
    made = make_certificate(Path(tmp_path_factory.mktemp("certs")), "pair.example", "192.0.2.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(made.cert_file, made.key_file)

    def serving(response: bytes) -> Serve:
        def serve(conn: socket.socket) -> None:
            with context.wrap_socket(conn, server_side=True) as tls:
                answers_http(response)(tls)

        return serve

    return serving


def test_well_known_ports_are_probed_in_the_order_their_number_suggests() -> None:
    assert probe_order(443, ALL) == [Probe.TLS, Probe.BANNER, Probe.HTTP]
    assert probe_order(8080, ALL) == [Probe.HTTP, Probe.TLS]
    assert probe_order(40000, ALL) == [Probe.BANNER, Probe.HTTP, Probe.TLS]
    assert probe_order(40000, frozenset({Probe.TLS})) == [Probe.TLS]


def test_a_greeting_is_enough_no_request_is_sent() -> None:
    dial = ScriptedDial(greets(b"SSH-2.0-OpenSSH_9.6\r\n"))
    entry = describe_port(ServiceTarget("192.0.2.1", 40022), ALL, QUICK, dial)
    assert (entry["service"], entry["product"], entry["http"]) == ("ssh", "OpenSSH_9.6", None)
    assert dial.connections == 1


def test_only_ports_not_known_to_greet_first_are_asked_in_http_after_a_short_wait() -> None:
    assert asks_after_greeting(40080, ALL)
    assert asks_after_greeting(631, ALL)
    assert not asks_after_greeting(22, ALL)  # SSH greets first: its greeting gets the full wait
    assert not asks_after_greeting(25, ALL)
    assert not asks_after_greeting(8080, ALL)  # HTTP goes first anyway
    assert not asks_after_greeting(443, ALL)
    assert not asks_after_greeting(40080, frozenset({Probe.BANNER, Probe.TLS}))


def test_a_web_server_on_an_unusual_port_is_asked_on_the_connection_that_waited() -> None:
    page = b"HTTP/1.0 200 OK\r\nServer: tiny\r\n\r\n<title>Panel</title>"
    dial = ScriptedDial(answers_http(page))
    entry = describe_port(ServiceTarget("192.0.2.1", 40080), ALL, QUICK, dial)
    assert entry["http"] == {"status": 200, "server": "tiny", "title": "Panel"}
    assert (entry["service"], entry["product"], entry["tls"]) == ("http", "tiny", None)
    assert dial.connections == 2  # the page on the one that waited, then the site's icon


ICON = bytes(range(256)) * 3  # an icon's bytes: not text, not a page


def answers_by_path(pages: dict[bytes, bytes], heard: list[bytes]) -> Serve:
    """Answers each request with the page for its path (404 for any other), noting the path."""

    def serve(conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ")[1]
        heard.append(path)
        conn.sendall(pages.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))

    return serve


def test_the_icon_the_page_names_is_fetched_and_its_md5_kept() -> None:
    page = (
        b"HTTP/1.1 200 OK\r\nServer: tiny\r\nContent-Type: text/html\r\n\r\n<html><head>"
        b"<link rel='shortcut icon' href='static/logo.ico?v=2'><title>Panel</title></head>"
    )
    icon = b"HTTP/1.1 200 OK\r\nContent-Type: image/x-icon\r\nContent-Length: 768\r\n\r\n" + ICON
    heard: list[bytes] = []
    dial = ScriptedDial(answers_by_path({b"/": page, b"/static/logo.ico?v=2": icon}, heard))
    entry = describe_port(ServiceTarget("192.0.2.1", 8080), ALL, QUICK, dial)
    assert heard == [b"/", b"/static/logo.ico?v=2"]
    assert entry["http"]["favicon"] == {
        "path": "/static/logo.ico?v=2",
        "md5": hashlib.md5(ICON, usedforsecurity=False).hexdigest(),
        "bytes": 768,
    }
    assert entry["http"]["title"] == "Panel"


def test_no_icon_a_missing_one_or_a_page_for_every_path_gives_no_favicon() -> None:
    page = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<title>Home</title>"
    heard: list[bytes] = []
    missing = describe_port(
        ServiceTarget("192.0.2.1", 8080),
        ALL,
        QUICK,
        ScriptedDial(answers_by_path({b"/": page}, heard)),
    )
    assert heard == [b"/", b"/favicon.ico"]
    assert "favicon" not in missing["http"]
    everywhere = describe_port(
        ServiceTarget("192.0.2.1", 8080), ALL, QUICK, ScriptedDial(answers_http(page))
    )
    assert everywhere["http"] == {"status": 200, "server": None, "title": "Home"}


def test_a_greeting_that_comes_only_after_the_request_still_names_the_service() -> None:
    dial = ScriptedDial(greets_once_asked(b"SSH-2.0-OpenSSH_9.6\r\n"))
    entry = describe_port(ServiceTarget("192.0.2.1", 40022), ALL, QUICK, dial)
    assert (entry["service"], entry["product"], entry["http"]) == ("ssh", "OpenSSH_9.6", None)
    assert entry["banner"] == "SSH-2.0-OpenSSH_9.6"
    assert dial.connections == 1


def test_a_tls_server_that_rejects_plain_http_is_described_by_tls(
    tls_server: Callable[[bytes], Serve],
) -> None:
    page = b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n<title>Inside</title>\n"
    dial = ScriptedDial(answers_http(PLAIN_TO_TLS), tls_server(page))
    entry = describe_port(ServiceTarget("192.0.2.1", 40443), ALL, QUICK, dial)
    assert entry["service"] == "https"
    assert entry["tls"]["subject"] == "CN=pair.example,O=Surveyor Tests"
    assert entry["http"] == {"status": 200, "server": None, "title": "Inside"}


def test_a_tls_alert_is_not_taken_for_a_banner(tls_server: Callable[[bytes], Serve]) -> None:
    alert = b"\x15\x03\x03\x00\x02\x02\x46"
    page = b"HTTP/1.1 204 No Content\r\n\r\n"
    dial = ScriptedDial(answers_http(alert), tls_server(page))
    entry = describe_port(ServiceTarget("192.0.2.1", 40444), ALL, QUICK, dial)
    assert entry["banner"] is None
    assert entry["tls"]["sans"] == ["pair.example", "192.0.2.1"]
    assert entry["http"]["status"] == 204


def test_a_port_that_never_speaks_stays_an_open_port_without_facts() -> None:
    dial = ScriptedDial(silent)
    entry = describe_port(ServiceTarget("192.0.2.1", 40001), ALL, QUICK, dial)
    assert [entry[key] for key in ("service", "banner", "product", "http", "tls")] == [None] * 5
    assert dial.connections == 2  # greeting wait and HTTP on one, a TLS handshake on another


class RecordingDial(ScriptedDial):
    """A scripted dial whose sockets remember every timeout the probes gave them."""

    def __init__(self, *scripts: Serve) -> None:
        super().__init__(*scripts)
        self.timeouts: list[list[float | None]] = []

    def __call__(self, address: str, port: int, timeout: float) -> socket.socket:
        plain = super().__call__(address, port, timeout)
        waits: list[float | None] = []
        self.timeouts.append(waits)

        class Recording(socket.socket):
            def settimeout(self, value: float | None) -> None:
                waits.append(value)
                super().settimeout(value)

        return Recording(fileno=plain.detach())


def answers_once(answer: bytes) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(answer)
        conn.recv(100)

    return serve


def test_a_client_first_protocol_is_asked_in_its_own_words_on_its_port() -> None:
    bind = (
        b"\x00QSV\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10"
        b"\x00\x03\xc0\x0c\x00\x10\x00\x03\x00\x00\x00\x00\x00\x19\x189.18.49-1~deb12u3-Debian"
    )
    bind = len(bind[2:]).to_bytes(2, "big") + bind[2:]
    dial = ScriptedDial(answers_once(bind))
    entry = describe_port(ServiceTarget("192.0.2.1", 53), ALL, QUICK, dial)
    assert entry["service"] == "dns"
    assert entry["banner"] == "version.bind: 9.18.49-1~deb12u3-Debian"
    assert dial.connections == 1  # no greeting wait, no HTTP, no TLS


def test_the_protocol_message_waits_for_the_banner_probe() -> None:
    dial = ScriptedDial(answers_once(b"-NOAUTH Authentication required.\r\n"))
    only_http = frozenset({Probe.HTTP})
    entry = describe_port(ServiceTarget("192.0.2.1", 6379), only_http, QUICK, dial)
    assert entry["service"] is None  # HTTP alone does not ask in Redis's words
    entry = describe_port(ServiceTarget("192.0.2.1", 6379), ALL, QUICK, dial)
    assert (entry["service"], entry["banner"]) == ("redis", "-NOAUTH Authentication required.")


def test_another_protocol_on_a_client_first_port_is_still_described() -> None:
    dial = ScriptedDial(greets(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n"))
    entry = describe_port(ServiceTarget("192.0.2.1", 5432), ALL, QUICK, dial)
    assert (entry["service"], entry["product"]) == ("ssh", "OpenSSH_9.2p1")
    assert dial.connections == 1


def holds(conn: socket.socket) -> None:
    """Reads whatever comes and never answers, until the client hangs up."""
    while conn.recv(4096):
        pass


def test_a_silent_port_gets_short_second_tries() -> None:
    timeouts = ProbeTimeouts(banner=0.2, exchange=1.0, greeting=0.05, quiet=0.1)
    dial = RecordingDial(holds)
    entry = describe_port(ServiceTarget("192.0.2.1", 5432), ALL, timeouts, dial)
    assert [entry[key] for key in ("service", "banner", "http", "tls")] == [None] * 4
    # the protocol message waited the banner time; the HTTP request and the TLS handshake
    # that followed on their own connections each waited only the short time
    protocol, http_try, tls_try = dial.timeouts
    assert max(t for t in protocol if t is not None) <= 0.2
    assert max(t for t in http_try if t is not None) == 0.1
    assert max(t for t in tls_try if t is not None) == 0.1
    dial = RecordingDial(holds)
    describe_port(ServiceTarget("192.0.2.1", 40001), ALL, timeouts, dial)
    asked, handshake = dial.timeouts
    assert 1.0 in asked  # a port not known to be silent gets the whole HTTP wait
    assert max(t for t in handshake if t is not None) == 0.1
