"""The CLI's requests to a console at a plain `http://` URL: HTTP/1.1 on a socket.

Importing httpx2 (with httpcore2, h11, anyio and the TLS module) took about a third of a
`surveyor task list --json` process, and even the standard library's `http.client` brings the
`email` package and `ssl` with it; a command that asks a plain-HTTP console needs none of them.
A console at an `https://` URL is still asked through httpx2 (certificates and their checks stay
its job), and so is one reached through an injected transport.

`PlainHttp` does what `ApiClient` (`cli/client.py`) asks of an `httpx2.Client` -- `request`,
`stream` and `close` -- as httpx2 does it: one connection kept between requests (and opened
again when the console has closed it), the base URL's path before every path, query values
written as httpx2 writes them (`true` and `false` for flags), a JSON body encoded as httpx2
encodes it, an iterable body sent in chunks, the timeout applied to connecting and to each read
or write, redirects not followed, no proxy taken from the environment. When the console stops
reading a request body to answer early (a refused upload), its answer is read, as httpx2 reads
it. An answer's body is framed as RFC 9112 says: none for 1xx, 204 and 304, chunked, by
Content-Length, or up to the close of the connection.

Failures are raised as this module's `InvalidURL`, `TransportError` and `TimeoutException` (a
`TransportError`), which mean what httpx2's exceptions of those names mean, so that the client
reports both alike.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import select
import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

#: The most a download block holds.
BLOCK_BYTES = 64 * 1024
#: Limits on the head of an answer, as `http.client` sets them.
MAX_LINE_BYTES = 65536
MAX_HEADERS = 100
#: What may stay as it is in a request path (what httpx2 leaves unescaped in one).
PATH_SAFE = "/%:@!$&'()*+,;=~"
#: Methods whose requests carry a body: without one they say `Content-Length: 0`.
BODY_METHODS = ("POST", "PUT", "PATCH")


class InvalidURL(Exception):
    """The console's URL cannot be asked over plain HTTP."""


class TransportError(Exception):
    """No answer: the connection was refused or broke off, or what came back was not HTTP."""


class TimeoutException(TransportError):
    """Connecting, or a read or write, took longer than the timeout."""


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """The socket's failures as this module's exceptions."""
    try:
        yield
    except TimeoutError as exc:
        raise TimeoutException(str(exc) or "timed out") from exc
    except OSError as exc:
        raise TransportError(str(exc) or type(exc).__name__) from exc


def query_value(value: object) -> str:
    """A query parameter's value as httpx2 writes it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def query_string(params: Mapping[str, Any] | None) -> str:
    """`params` as a query string; a list or tuple value repeats its key, as in httpx2."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for one in value if isinstance(value, list | tuple) else [value]:
            pairs.append((key, query_value(one)))
    return urlencode(pairs)


def json_body(value: Any) -> bytes:
    """`value` encoded as httpx2 encodes a `json=` body."""
    text = jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


class Headers(dict[str, str]):
    """An answer's headers by lower-case name (a repeated one's values joined by commas);
    `get` takes a name in any case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Connection:
    """One TCP connection to the console, with its buffered reader."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        # The socket module would encode a text host name with the IDNA codec (an import of
        # its own); an ASCII one means the same as bytes.
        address: Any = host.encode("ascii") if host.isascii() else host
        self.sock = socket.create_connection((address, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        #: Whether the last answer has been read whole and the console keeps the connection.
        self.reusable = False

    def line(self) -> bytes:
        line = self.reader.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise TransportError("the console sent a line longer than 64 KiB")
        return line

    def close(self) -> None:
        self.reusable = False
        self.reader.close()
        self.sock.close()

    def stale(self) -> bool:
        """Whether the console has closed this idle connection (it reads as ready: the end,
        or bytes nobody asked for), so that a request sent on it would fail."""
        return bool(select.select([self.sock], [], [], 0)[0])


class Answer:
    """The console's answer: status, reason and headers; the body once read (`request` reads
    it, `stream` leaves it to `read` or `iter_bytes`)."""

    def __init__(self, connection: _Connection, method: str) -> None:
        self._connection = connection
        self._content: bytes | None = None
        while True:
            self.status_code, self.reason_phrase, version = self._status_line()
            self.headers = self._headers()
            if not 100 <= self.status_code < 200:
                break  # an interim answer (100 Continue) is followed by the real one
        connection_tokens = (self.headers.get("connection") or "").lower()
        self._keep = version == "HTTP/1.1" and "close" not in connection_tokens
        self._chunked = False
        self._left: int | None = None  # bytes of the body (or of the current chunk) to read
        self._done = False
        codings = (self.headers.get("transfer-encoding") or "").lower()
        if method == "HEAD" or self.status_code in (204, 304):
            self._finish()
        elif codings:
            if codings.rsplit(",", 1)[-1].strip() != "chunked":
                raise TransportError(f"the console sent a body coded as {codings!r}")
            self._chunked, self._left = True, 0
        elif self.headers.get("content-length") is not None:
            length = self.headers["content-length"].split(",")[0].strip()
            if not length.isdigit():
                raise TransportError(f"the console sent a Content-Length of {length!r}")
            self._left = int(length)
            if self._left == 0:
                self._finish()
        else:
            self._keep = False  # the body ends when the console closes the connection

    def _status_line(self) -> tuple[int, str, str]:
        line = self._connection.line()
        if not line:
            raise TransportError("the console closed the connection without answering")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise TransportError(f"the console's answer is not HTTP ({line[:40]!r})")
        return int(code), reason.strip(), version

    def _headers(self) -> Headers:
        headers = Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self._connection.line()
            if line in (b"\r\n", b"\n"):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not line or not colon:
                raise TransportError("the console's answer has a broken header")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise TransportError(f"the console sent more than {MAX_HEADERS} headers")

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the body has not been read; call read() first")
        return self._content

    @property
    def finished(self) -> bool:
        """Whether the whole body has been read."""
        return self._done

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def iter_bytes(self) -> Iterator[bytes]:
        """The body, a block at a time as it arrives (at most `BLOCK_BYTES` each)."""
        while block := self._block():
            yield block

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def _block(self) -> bytes:
        """The next part of the body, or nothing at its end."""
        if self._done:
            return b""
        reader = self._connection.reader
        with _failures():
            if self._chunked and self._left == 0:
                self._left = self._chunk_size()
                if self._left == 0:
                    while (line := self._connection.line()) not in (b"\r\n", b"\n"):
                        if not line:  # trailers, which nobody here needs, cut short
                            raise TransportError("the console broke off its answer")
                    self._finish()
                    return b""
            if self._left is None:
                block = reader.read1(BLOCK_BYTES)
                if not block:
                    self._finish()
                return block
            block = reader.read(min(self._left, BLOCK_BYTES))
            if not block:
                raise TransportError("the console broke off its answer")
            self._left -= len(block)
            if self._left == 0:
                if not self._chunked:
                    self._finish()
                elif self._connection.line() not in (b"\r\n", b"\n"):
                    raise TransportError("the console sent a chunk longer than it said")
            return block

    def _chunk_size(self) -> int:
        line = self._connection.line()
        size = line.split(b";", 1)[0].strip()
        try:
            return int(size, 16)
        except ValueError:
            raise TransportError(f"the console sent a broken chunk ({line[:40]!r})") from None

    def _finish(self) -> None:
        self._done = True
        if self._keep:
            self._connection.reusable = True
        else:
            self._connection.close()


class PlainHttp:
    """Requests to the console at `base_url` (`http://HOST[:PORT][/PATH]`), each with
    `headers` and within `timeout` seconds unless a request says otherwise."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._parts = urlsplit(self.base_url)
        self.headers = dict(headers)
        self.timeout = timeout
        self._connection: _Connection | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request and read the whole answer. `content` (bytes, or an iterable of
        them sent in chunks) goes as it is; otherwise `json`, when not None, goes as JSON."""
        extra = dict(headers or {})
        if content is None and json is not None:
            content = json_body(json)
            extra.setdefault("Content-Type", "application/json")
        answer = self._send(method, url, params, content, extra, timeout)
        try:
            answer.read()
        except BaseException:
            self.close()
            raise
        return answer

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Iterator[Answer]:
        """Send one request; the answer's body is read inside the `with` block. The connection
        is closed when the block leaves some of it unread."""
        answer = self._send(method, url, params, None, {}, timeout)
        try:
            yield answer
        finally:
            if not answer.finished:
                self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        content: bytes | Iterable[bytes] | None,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> Answer:
        head = self._head(method, self._parts.path + url, params, content, headers)
        try:
            with _failures():
                connection = self._connection_for(self.timeout if timeout is None else timeout)
                try:
                    _send_body(connection.sock, head, content)
                except (BrokenPipeError, ConnectionResetError) as stopped:
                    # The console may answer before it has read the whole body (a refused
                    # upload) and stop reading it; that answer is what the user needs to see.
                    try:
                        return Answer(connection, method)
                    except (OSError, TransportError):
                        raise stopped from None
                return Answer(connection, method)
        except BaseException:
            self.close()
            raise

    def _head(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        content: bytes | Iterable[bytes] | None,
        headers: Mapping[str, str],
    ) -> bytes:
        """The request line and headers: the client's, then the request's own (which win,
        whatever their case), then how long the body is."""
        target = quote(path, safe=PATH_SAFE)
        query = query_string(params)
        if query:
            target = f"{target}?{query}"
        overridden = {name.lower() for name in headers}
        kept = {
            name: value for name, value in self.headers.items() if name.lower() not in overridden
        }
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host()}"]
        for name, value in (kept | dict(headers)).items():
            if any(char in name + value for char in "\r\n\0"):
                raise TransportError(f"the header {name} holds a line break")
            lines.append(f"{name}: {value}")
        if isinstance(content, bytes | bytearray):
            lines.append(f"Content-Length: {len(content)}")
        elif content is not None:
            lines.append("Transfer-Encoding: chunked")
        elif method in BODY_METHODS:
            lines.append("Content-Length: 0")
        try:
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError as exc:
            raise TransportError(f"a header holds a character HTTP cannot carry ({exc})") from exc

    def _host(self) -> str:
        """The Host header: the host (an IPv6 address in brackets), and the port unless 80."""
        host = self._parts.hostname or ""
        shown = f"[{host}]" if ":" in host else host
        port = self._port()
        return shown if port == 80 else f"{shown}:{port}"

    def _port(self) -> int:
        """The console's port; a URL that is not `http://HOST[:PORT]` is refused here, when
        a request is made, as httpx2 refuses it."""
        parts = self._parts
        try:
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"{self.base_url!r} has no valid port") from exc
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise InvalidURL(f"{self.base_url!r} is not an http:// URL with a host")
        return port or 80

    def _connection_for(self, timeout: float) -> _Connection:
        """The kept connection if it can carry another request, or a new one; either waits
        at most `timeout` seconds for each step."""
        connection = self._connection
        if connection is not None and (not connection.reusable or connection.stale()):
            self.close()
            connection = None
        if connection is None:
            port = self._port()
            connection = _Connection(self._parts.hostname or "", port, timeout)
            self._connection = connection
        connection.reusable = False
        connection.sock.settimeout(timeout)
        return connection


def _send_body(sock: socket.socket, head: bytes, content: bytes | Iterable[bytes] | None) -> None:
    """The head, then the body: as it is, or in chunks."""
    if content is None or isinstance(content, bytes | bytearray):
        sock.sendall(head + (content or b""))
        return
    sock.sendall(head)
    for piece in content:
        if piece:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    sock.sendall(b"0\r\n\r\n")
