"""The CLI asks a plain `http://` console through `cli/plain_http.py` (the standard library)
and an `https://` one through httpx2: both must send the same requests and give the user the
same answers and errors. Each case runs against a small HTTP server on 127.0.0.1 twice, once
on each path (httpx2 through its real network transport), and compares what each saw."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from surveyor.cli.client import (
    EXIT_AUTH,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    ApiClient,
    CliError,
)
from surveyor.cli.plain_http import PlainHttp, query_string

SRC = Path(__file__).resolve().parents[2] / "src"
TOKEN = "svt_plain_http_0123456789abcdef"
#: A download large enough to arrive in many blocks.
DOWNLOAD = bytes(range(256)) * 1200
WAIT_SECONDS = 10.0


@dataclass
class Stub:
    """What the stub console saw, the event that lets its slow answer go, and the one it sets
    when it has closed a connection after `/close-after`."""

    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    hanging_up: set[tuple[str, int]] = field(default_factory=set)
    connections: set[tuple[str, int]] = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    stub: Stub

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, **details: Any) -> None:
        error = {"code": code, "message": message, "details": details}
        self._send(status, json.dumps({"error": error}).encode())

    def _answer(self) -> None:
        body = self._body()
        parts = urlsplit(self.path)
        self.stub.connections.add(self.client_address)
        request = {
            "method": self.command,
            "path": parts.path,
            "query": parse_qs(parts.query, keep_blank_values=True),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "json": json.loads(body)
            if self.headers.get("Content-Type") == "application/json"
            else None,
            "headers": {
                name: self.headers.get(name)
                for name in ("Authorization", "Accept", "User-Agent", "Content-Type")
            },
            "chunked": self.headers.get("Transfer-Encoding") == "chunked",
        }
        self.stub.seen.append(request)
        route = parts.path.rsplit("/api/v1", 1)[-1]
        if route == "/echo":
            self._send(200, json.dumps(request).encode())
        elif route == "/empty":
            self._send(204, b"")
        elif route == "/refused":
            self._error(409, "conflict", "task 7 is stopped", id=7)
        elif route == "/unauthenticated":
            self._error(401, "unauthenticated", "the API token is unknown")
        elif route == "/failed":
            self._error(500, "internal", "the database is gone")
        elif route == "/gateway":
            self._send(502, b"<html>Bad Gateway</html>", "text/html")
        elif route == "/text":
            self._send(200, b"hello", "text/plain")
        elif route == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b'{"items": [1, ', b"2, 3]", b', "next_cursor": null}'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "/tasks":
            self._send(200, b'{"items": [{"id": 1}], "next_cursor": null}')
        elif route == "/download":
            self._send(200, DOWNLOAD, "application/octet-stream")
        elif route == "/slow":
            self.stub.release.wait(WAIT_SECONDS)
            self._send(200, b"{}")
        elif route == "/hang-up":
            self.close_connection = True
        elif route == "/close-after":
            self.stub.hanging_up.add(self.client_address)
            self._send(200, b'{"closed": true}')
            self.close_connection = True
        else:
            self._error(404, "not_found", f"no route {route}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def shutdown_request(self, request: Any) -> None:
        peer = None
        with contextlib.suppress(OSError):
            peer = request.getpeername()
        super().shutdown_request(request)
        if peer in _Handler.stub.hanging_up:
            _Handler.stub.closed.set()


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    found = Stub(f"http://127.0.0.1:{server.server_address[1]}")
    _Handler.stub = found
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.release.set()
        server.shutdown()
        server.server_close()


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "answer", call()
    except CliError as error:
        return "error", {
            "message": error.message,
            "exit_code": error.exit_code,
            "hint": error.hint,
            "code": error.code,
            "status": error.status,
            "details": error.details,
        }


def both(
    url: str, call: Callable[[ApiClient], Any], *, token: str | None = TOKEN, **options: Any
) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """What `call` made of a client on the plain path, then on httpx2's."""
    outcomes = []
    for transport in (None, httpx2.HTTPTransport()):
        with ApiClient(url, token, transport=transport, **options) as client:
            outcomes.append(_outcome(lambda: call(client)))
    plain, httpx = outcomes
    return plain, httpx


def test_a_plain_http_console_is_asked_without_httpx2(stub: Stub) -> None:
    with ApiClient(stub.url, TOKEN) as client:
        assert isinstance(client._http, PlainHttp)
        assert client.get("/echo")["path"] == "/api/v1/echo"
    with ApiClient("https://127.0.0.1:1", TOKEN) as client:
        assert isinstance(client._http, httpx2.Client)


def test_both_send_the_same_request(stub: Stub) -> None:
    def call(client: ApiClient) -> Any:
        return client.request(
            "POST",
            "/echo",
            params={"tab": "all", "search": "name:x y&z", "exact": True, "none": None},
            json={"name": "nightly ✓", "targets": ["127.0.0.1"], "ratio": 0.5},
        )

    plain, httpx = both(stub.url, call)

    assert plain == httpx
    answer = plain[1]
    assert answer["method"] == "POST"
    assert answer["query"] == {"tab": ["all"], "search": ["name:x y&z"], "exact": ["true"]}
    assert answer["json"] == {"name": "nightly ✓", "targets": ["127.0.0.1"], "ratio": 0.5}
    assert answer["headers"] == {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/json",
        "User-Agent": "surveyor-cli",
        "Content-Type": "application/json",
    }
    # The JSON body goes byte for byte as httpx2 encodes it.
    assert stub.seen[0]["body_sha256"] == stub.seen[1]["body_sha256"]


def test_without_a_token_no_authorization_is_sent(stub: Stub) -> None:
    plain, httpx = both(stub.url, lambda client: client.get("/echo"), token=None)

    assert plain == httpx
    assert plain[1]["headers"]["Authorization"] is None


def test_a_console_url_with_a_path_keeps_it_before_the_api(stub: Stub) -> None:
    plain, httpx = both(f"{stub.url}/surveyor/", lambda client: client.get("/echo", limit=5))

    assert plain == httpx
    assert plain[1]["path"] == "/surveyor/api/v1/echo"
    assert plain[1]["query"] == {"limit": ["5"]}


def test_bodies_without_json_and_empty_answers_are_the_same(stub: Stub) -> None:
    def call(client: ApiClient) -> Any:
        return [client.post("/empty"), client.delete("/empty"), client.get("/chunked")]

    plain, httpx = both(stub.url, call)

    assert plain == httpx == ("answer", [None, None, {"items": [1, 2, 3], "next_cursor": None}])
    assert [request["method"] for request in stub.seen] == ["POST", "DELETE", "GET"] * 2


def test_an_upload_in_pieces_arrives_whole(stub: Stub) -> None:
    pieces = [b"first line\n", b"", b"second line\n" * 5000]

    def call(client: ApiClient) -> Any:
        return client.request(
            "POST",
            "/echo",
            params={"name": "Import"},
            content=iter(pieces),
            headers={"Content-Type": "application/gzip"},
            timeout=30,
        )

    plain, httpx = both(stub.url, call)

    assert plain == httpx
    assert plain[1]["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert plain[1]["headers"]["Content-Type"] == "application/gzip"
    assert plain[1]["chunked"]


@pytest.mark.parametrize(
    ("route", "exit_code"),
    [
        ("/refused", EXIT_REFUSED),
        ("/unauthenticated", EXIT_AUTH),
        ("/failed", EXIT_REFUSED),
        ("/gateway", EXIT_REFUSED),
        ("/nowhere", EXIT_REFUSED),
        ("/text", EXIT_UNREACHABLE),
    ],
)
def test_refusals_and_answers_that_are_not_ours_are_the_same_errors(
    stub: Stub, route: str, exit_code: int
) -> None:
    plain, httpx = both(stub.url, lambda client: client.get(route))

    assert plain == httpx
    kind, error = plain
    assert kind == "error"
    assert error["exit_code"] == exit_code


def test_the_messages_of_refusals(stub: Stub) -> None:
    plain, _ = both(stub.url, lambda client: client.get("/refused"))
    gateway, _ = both(stub.url, lambda client: client.get("/gateway"))
    failed, _ = both(stub.url, lambda client: client.get("/failed"))

    assert plain[1]["message"] == "task 7 is stopped"
    assert plain[1]["details"] == {"id": 7}
    assert gateway[1]["message"] == "the console answered HTTP 502 Bad Gateway"
    assert failed[1]["message"] == "the console failed: the database is gone"


def test_a_console_that_is_not_there_is_the_same_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"

    plain, httpx = both(nowhere, lambda client: client.get("/echo"))

    assert plain == httpx
    assert plain[1]["message"].startswith(f"cannot reach the console at {nowhere} (")
    assert "surveyor up" in plain[1]["hint"]
    assert plain[1]["exit_code"] == EXIT_UNREACHABLE


def test_a_console_that_does_not_answer_in_time_is_the_same_error(stub: Stub) -> None:
    plain, httpx = both(stub.url, lambda client: client.get("/slow"), timeout=0.2)

    assert plain == httpx
    assert plain[1]["message"] == f"the console at {stub.url} did not answer in time"
    assert plain[1]["exit_code"] == EXIT_UNREACHABLE


def test_a_console_that_hangs_up_without_answering_cannot_be_reached(stub: Stub) -> None:
    plain, httpx = both(stub.url, lambda client: client.get("/hang-up"))

    # The reason in brackets is each library's own words.
    for kind, error in (plain, httpx):
        assert kind == "error"
        assert error["message"].startswith(f"cannot reach the console at {stub.url} (")
        assert error["exit_code"] == EXIT_UNREACHABLE


def test_a_connection_the_console_closed_is_opened_again(stub: Stub) -> None:
    def call(client: ApiClient) -> Any:
        first = client.get("/close-after")
        assert stub.closed.wait(WAIT_SECONDS)
        stub.closed.clear()
        return [first, client.get("/echo")["method"], client.get("/echo")["method"]]

    plain, httpx = both(stub.url, call)

    assert plain == httpx == ("answer", [{"closed": True}, "GET", "GET"])
    # Kept alive between the last two requests, opened again after the console's close.
    paths = [request["path"] for request in stub.seen]
    assert paths == ["/api/v1/close-after", "/api/v1/echo", "/api/v1/echo"] * 2
    assert len(stub.connections) == 4


def test_a_download_arrives_the_same_in_blocks(stub: Stub) -> None:
    def call(client: ApiClient) -> Any:
        received: list[bytes] = []
        told: list[tuple[int, int | None]] = []
        size = client.download(
            "/download", received.append, on_bytes=lambda done, total: told.append((done, total))
        )
        return size, b"".join(received) == DOWNLOAD, told[-1], len(received) > 1

    plain, httpx = both(stub.url, call)

    assert plain == httpx == ("answer", (len(DOWNLOAD), True, (len(DOWNLOAD), len(DOWNLOAD)), True))


def test_a_refused_download_is_the_same_error(stub: Stub) -> None:
    plain, httpx = both(stub.url, lambda client: client.download("/refused", lambda _: None))

    assert plain == httpx
    assert plain[1]["message"] == "task 7 is stopped"


def test_a_request_after_a_refused_download_still_works(stub: Stub) -> None:
    def call(client: ApiClient) -> Any:
        with pytest.raises(CliError):
            client.download("/refused", lambda _: None)
        return client.get("/echo")["path"]

    plain, httpx = both(stub.url, call)

    assert plain == httpx == ("answer", "/api/v1/echo")


@contextlib.contextmanager
def _saying(answer: bytes) -> Iterator[str]:
    """A console on 127.0.0.1 that reads each request's head, sends `answer` as it is and
    closes the connection; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(WAIT_SECONDS)
                head = b""
                while b"\r\n\r\n" not in head and (received := connection.recv(4096)):
                    head += received
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(WAIT_SECONDS)
        listener.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1, 2]", [1, 2]),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", {}),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n", {}),
        (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", None),
    ],
    ids=["close-delimited", "interim-answer", "chunk-extension", "no-content"],
)
def test_answers_framed_every_way_are_read_the_same(answer: bytes, expected: Any) -> None:
    with _saying(answer) as url:
        plain, httpx = both(url, lambda client: client.get("/any"))

    assert plain == httpx == ("answer", expected)


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Len",
        b"",
    ],
    ids=[
        "not-http",
        "cut-short",
        "broken-chunk",
        "trailers-cut-short",
        "chunk-too-long",
        "head-cut-short",
        "nothing",
    ],
)
def test_an_answer_that_is_not_whole_http_means_the_console_cannot_be_reached(
    answer: bytes,
) -> None:
    with _saying(answer) as url:
        plain, httpx = both(url, lambda client: client.get("/any"))

    # The reason in brackets is each library's own words.
    for kind, error in (plain, httpx):
        assert kind == "error"
        assert error["message"].startswith(f"cannot reach the console at {url} (")
        assert error["exit_code"] == EXIT_UNREACHABLE


def test_an_error_status_without_a_body_names_the_status() -> None:
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with _saying(answer) as url:
        plain, httpx = both(url, lambda client: client.get("/any"))

    assert plain == httpx
    assert plain[1]["message"] == "the console answered HTTP 404 Not Found"


def test_query_values_are_written_as_httpx2_writes_them() -> None:
    params = {"a": True, "b": False, "c": 3, "d": ["x", "y z"], "e": "ü&="}

    assert parse_qs(query_string(params)) == parse_qs(str(httpx2.QueryParams(params)))


def _fresh_process(program: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    env |= {
        "PYTHONPATH": str(SRC),
        "SURVEYOR_URL": url,
        "SURVEYOR_TOKEN": TOKEN,
        "XDG_CONFIG_HOME": "/nonexistent-config",
    }
    return subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )


#: Modules a command that asks a plain-HTTP console (or `--help`) has no use for.
NOT_NEEDED = {"httpx2", "httpcore2", "h11", "anyio", "ssl", "sqlalchemy", "fastapi", "uvicorn"}


def test_a_command_against_a_plain_http_console_imports_no_httpx2_nor_tls(stub: Stub) -> None:
    program = (
        "import json, sys\n"
        "sys.argv = ['surveyor', 'task', 'list', '--json', '--limit', '7']\n"
        "from surveyor.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )

    done = _fresh_process(program, stub.url)

    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    assert sorted(loaded & NOT_NEEDED) == []
    assert "surveyor.cli.plain_http" in loaded
    assert json.loads(done.stdout) == [{"id": 1}]
    assert stub.seen[-1]["path"] == "/api/v1/tasks"
    assert stub.seen[-1]["query"]["limit"] == ["7"]
