"""Banners of server-first protocols (SSH, SMTP, FTP, POP3, IMAP, ...): read, clean, identify."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

MAX_BANNER_BYTES = 4096
MAX_BANNER_CHARS = 1024
#: after the first bytes, how long to wait for the rest of a multi-line greeting
CONTINUATION_SECONDS = 0.2

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SMTP_CONTINUES = re.compile(rb"(?:^|\n)\d{3}-[^\n]*\n?$")
_SSH = re.compile(r"^SSH-\d+(?:\.\d+)?-(\S+)")

#: Products recognisable from a greeting: a pattern, and how to name the match.
_PRODUCTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"\bExim\s+(\d[\w.]*)", "Exim {0}"),
        (r"\bExim\b", "Exim"),
        (r"\bPostfix\b", "Postfix"),
        (r"\bSendmail\s+(\d[\w.]*)", "Sendmail {0}"),
        (r"\bSendmail\b", "Sendmail"),
        (r"\bOpenSMTPD\b", "OpenSMTPD"),
        (r"Microsoft ESMTP MAIL Service", "Microsoft ESMTP MAIL Service"),
        (r"\bvsFTPd\s+(\d[\w.]*)", "vsFTPd {0}"),
        (r"\bProFTPD\s+(\d[\w.]*)", "ProFTPD {0}"),
        (r"\bProFTPD\b", "ProFTPD"),
        (r"\bPure-FTPd\b", "Pure-FTPd"),
        (r"\bFileZilla Server(?:\s+version)?\s+(\d[\w.]*)", "FileZilla Server {0}"),
        (r"\bFileZilla Server\b", "FileZilla Server"),
        (r"\bDovecot\b", "Dovecot"),
        (r"\bCyrus\b", "Cyrus"),
        (r"\bCourier\b", "Courier"),
        (r"\bZimbra\b", "Zimbra"),
        (r"\bhMailServer\b", "hMailServer"),
        (r"\bqmail\b", "qmail"),
    )
)
_SMTP_PORTS = frozenset({25, 465, 587, 2525})
_FTP_PORTS = frozenset({21, 990})


@dataclass(frozen=True, slots=True)
class BannerFacts:
    """What a greeting says: the cleaned text, the protocol and the product when obvious."""

    banner: str
    service: str | None
    product: str | None


def read_banner(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends first, within `timeout`; empty if it sends nothing."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(MAX_BANNER_BYTES)
    except TimeoutError:
        return b""
    sock.settimeout(CONTINUATION_SECONDS)
    while data and len(data) < MAX_BANNER_BYTES and _continues(data):
        try:
            more = sock.recv(MAX_BANNER_BYTES - len(data))
        except (TimeoutError, OSError):
            break
        if not more:
            break
        data += more
    return data


def _continues(data: bytes) -> bool:
    """A greeting is unfinished mid-line, or after an SMTP/FTP continuation line (`220-`)."""
    return not data.endswith(b"\n") or _SMTP_CONTINUES.search(data) is not None


def clean_banner(data: bytes) -> str:
    """Text a person can read: UTF-8 where it is, `\\xNN` escapes for the rest, no line ends."""
    text = data[:MAX_BANNER_BYTES].decode("utf-8", errors="backslashreplace")
    text = text.replace("\r\n", "\n").strip("\r\n\t ")
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return text[:MAX_BANNER_CHARS]


def identify_banner(data: bytes, port: int) -> BannerFacts | None:
    """Clean a greeting and name its protocol and product; None for an empty greeting."""
    banner = clean_banner(data)
    if not banner:
        return None
    return BannerFacts(banner=banner, service=_service(banner, port), product=_product(banner))


def _service(banner: str, port: int) -> str | None:
    upper = banner.upper()
    if upper.startswith("SSH-"):
        return "ssh"
    if upper.startswith("+OK"):
        return "pop3"
    if upper.startswith("* OK") or upper.startswith("* PREAUTH"):
        return "imap"
    if upper.startswith("RFB "):
        return "vnc"
    if upper.startswith(("220", "421")):
        if "SMTP" in upper or "MAIL" in upper or port in _SMTP_PORTS:
            return "smtp"
        if "FTP" in upper or port in _FTP_PORTS:
            return "ftp"
    return None


def _product(banner: str) -> str | None:
    ssh = _SSH.match(banner)
    if ssh:
        return ssh.group(1)
    for pattern, name in _PRODUCTS:
        found = pattern.search(banner)
        if found:
            return name.format(*found.groups())
    return None
