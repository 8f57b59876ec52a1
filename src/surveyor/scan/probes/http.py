"""HTTP: one `GET /` with a Host header; the status, the Server header and the page title, and
when the answer has them the `X-Powered-By` header, the `WWW-Authenticate` realm and the
redirect target (`Location`)."""

from __future__ import annotations

import html
import re
import socket
import ssl
from dataclasses import dataclass

from surveyor import __version__

MAX_RESPONSE_BYTES = 65536
MAX_TITLE_CHARS = 256

_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?[ \t]+(\d{3})\b")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TITLE = re.compile(rb"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_CHUNK_SIZE = re.compile(rb"^([0-9a-fA-F]+)[^\r\n]*\r?\n")
_REALM = re.compile(r"""\brealm\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HttpFacts:
    """What a web server answered to `GET /`."""

    status: int
    server: str | None
    title: str | None
    powered_by: str | None = None
    #: the realm of the first `WWW-Authenticate` challenge
    realm: str | None = None
    #: where a redirect points, as the server wrote it
    location: str | None = None

    def as_record(self) -> dict[str, object]:
        """`status`, `server` and `title` always; the others only when the answer had them."""
        record: dict[str, object] = {
            "status": self.status,
            "server": self.server,
            "title": self.title,
        }
        for key in ("powered_by", "realm", "location"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record


def host_header(host: str, port: int, *, tls: bool) -> str:
    """The Host header for a name or an address (IPv6 in brackets), port only if not default."""
    name = f"[{host}]" if ":" in host else host
    return name if port == (443 if tls else 80) else f"{name}:{port}"


def build_request(host: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Surveyor/{__version__}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", errors="replace")


def exchange(sock: socket.socket | ssl.SSLSocket, host: str, timeout: float) -> bytes:
    """Send the request and read the answer until the server closes, the body is complete, the
    size limit, or the timeout (returning what arrived)."""
    sock.settimeout(timeout)
    sock.sendall(build_request(host))
    data = b""
    while len(data) < MAX_RESPONSE_BYTES:
        try:
            chunk = sock.recv(MAX_RESPONSE_BYTES - len(data))
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    return data


def _complete(data: bytes) -> bool:
    """Whether a response with a Content-Length has all of its body."""
    end = _HEAD_END.search(data)
    if end is None:
        return False
    length = _headers(data[: end.start()]).get("content-length", "")
    return length.isdigit() and len(data) - end.end() >= int(length)


def parse_response(data: bytes) -> HttpFacts | None:
    """Status, Server header and <title> of an HTTP response; None if it is not one."""
    status = _STATUS_LINE.match(data)
    if status is None:
        return None
    end = _HEAD_END.search(data)
    head, body = (data[: end.start()], data[end.end() :]) if end else (data, b"")
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    return HttpFacts(
        status=int(status.group(1)),
        server=_header(headers, "server"),
        title=_title(body, headers.get("content-type", "")),
        powered_by=_header(headers, "x-powered-by"),
        realm=_realm(headers.get("www-authenticate", "")),
        location=_header(headers, "location"),
    )


def _header(headers: dict[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value[:MAX_TITLE_CHARS] if value else None


def _realm(challenge: str) -> str | None:
    found = _REALM.search(challenge)
    if found is None:
        return None
    realm = found.group(1) if found.group(1) is not None else found.group(2)
    return re.sub(r"\\(.)", r"\1", realm)[:MAX_TITLE_CHARS] or None


def _headers(head: bytes) -> dict[str, str]:
    """Header names lower-cased; the first occurrence wins."""
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _unchunk(body: bytes) -> bytes:
    """The body of a chunked response, as far as it arrived."""
    out = b""
    while True:
        size = _CHUNK_SIZE.match(body)
        if size is None:
            return out or body
        length = int(size.group(1), 16)
        if length == 0:
            return out
        start = size.end()
        out += body[start : start + length]
        body = body[start + length :].lstrip(b"\r\n")


def _title(body: bytes, content_type: str) -> str | None:
    found = _TITLE.search(body)
    if found is None:
        return None
    charset = _CHARSET.search(content_type)
    try:
        text = found.group(1).decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:
        text = found.group(1).decode("utf-8", errors="replace")
    title = " ".join(html.unescape(text).split())
    return title[:MAX_TITLE_CHARS] or None
