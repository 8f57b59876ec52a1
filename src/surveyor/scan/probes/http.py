"""HTTP: one `GET /` with a Host header; the status, the Server header and the page title, and
when the answer has them the `X-Powered-By` header, the `WWW-Authenticate` realm and the
redirect target (`Location`). Then the site's icon (the page's `<link rel="icon">` on the same
server, else `/favicon.ico`): its MD5, the digest favicon databases key icons by."""

from __future__ import annotations

import hashlib
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
_ICON_LINK = re.compile(rb"<link\b[^>]*>", re.IGNORECASE)
_ICON_REL = re.compile(rb"""\brel\s*=\s*["']?[^"'>]*\bicon\b""", re.IGNORECASE)
_HREF = re.compile(rb"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_PLAIN_PATH = re.compile(r"[\x21-\x7e]{1,256}")
DEFAULT_ICON = "/favicon.ico"
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


def build_request(host: str, path: str = "/") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Surveyor/{__version__}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", errors="replace")


def exchange(
    sock: socket.socket | ssl.SSLSocket, host: str, timeout: float, path: str = "/"
) -> bytes:
    """Send the request and read the answer until the server closes, the body is complete, the
    size limit, or the timeout (returning what arrived)."""
    sock.settimeout(timeout)
    sock.sendall(build_request(host, path))
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


def _split(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """The status, headers and (unchunked) body of an HTTP response; None if it is not one."""
    status = _STATUS_LINE.match(data)
    if status is None:
        return None
    end = _HEAD_END.search(data)
    head, body = (data[: end.start()], data[end.end() :]) if end else (data, b"")
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    return int(status.group(1)), headers, body


def icon_path(page: bytes) -> str:
    """Where the site's icon is: the first `<link rel="icon">` (or "shortcut icon",
    "apple-touch-icon"...) of the page whose address is on the same server, else
    `/favicon.ico`. A path relative to the page is taken from the root, where `GET /` was."""
    parts = _split(page)
    body = parts[2] if parts else b""
    for link in _ICON_LINK.finditer(body[:MAX_RESPONSE_BYTES]):
        tag = link.group()
        href = _HREF.search(tag)
        if not _ICON_REL.search(tag) or href is None:
            continue
        raw = next(group for group in href.groups() if group is not None)
        path = html.unescape(raw.decode("latin-1")).strip()
        if not _PLAIN_PATH.fullmatch(path) or path.startswith("//") or ":" in path.split("/")[0]:
            continue  # another server, a scheme (data:, https:), or not a plain path
        return path if path.startswith("/") else "/" + path.removeprefix("./")
    return DEFAULT_ICON


def icon_facts(data: bytes) -> dict[str, object] | None:
    """The MD5 and size of an icon answered whole with 200 and not as a web page (a site that
    answers every path with its home page has no icon of its own); None otherwise."""
    parts = _split(data)
    if parts is None:
        return None
    status, headers, body = parts
    kind = headers.get("content-type", "").lower()
    length = headers.get("content-length", "")
    whole = not length.isdigit() or int(length) == len(body)
    if status != 200 or not body or not whole or "html" in kind or body.lstrip()[:1] == b"<":
        return None
    return {"md5": hashlib.md5(body, usedforsecurity=False).hexdigest(), "bytes": len(body)}


def parse_response(data: bytes) -> HttpFacts | None:
    """Status, Server header and <title> of an HTTP response; None if it is not one."""
    parts = _split(data)
    if parts is None:
        return None
    status, headers, body = parts
    return HttpFacts(
        status=status,
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
