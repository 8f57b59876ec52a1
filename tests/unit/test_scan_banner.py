"""Greetings of server-first protocols: cleaned for people, and identified where obvious."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.probes.banner import MAX_BANNER_CHARS, clean_banner, identify_banner


@pytest.mark.parametrize(
    ("greeting", "port", "service", "product"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", 22, "ssh", "OpenSSH_9.2p1"),
        (b"SSH-2.0-dropbear_2022.83\r\n", 2222, "ssh", "dropbear_2022.83"),
        (b"SSH-1.99-Cisco-1.25\n", 22, "ssh", "Cisco-1.25"),
        (b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n", 25, "smtp", "Postfix"),
        (b"220 mx ESMTP Exim 4.96 Mon, 1 Jan 2024 00:00:00 +0000\r\n", 25, "smtp", "Exim 4.96"),
        (b"220 (vsFTPd 3.0.3)\r\n", 21, "ftp", "vsFTPd 3.0.3"),
        (b"220 ProFTPD 1.3.8 Server (Debian)\r\n", 21, "ftp", "ProFTPD 1.3.8"),
        (b"220 files.lab FTP server ready\r\n", 21, "ftp", None),
        (b"220 printer ready\r\n", 2121, None, None),
        (b"220 printer ready\r\n", 587, "smtp", None),
        (b"+OK Dovecot (Debian) ready.\r\n", 110, "pop3", "Dovecot"),
        (b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", 143, "imap", "Dovecot"),
        (b"RFB 003.008\n", 5900, "vnc", None),
        (b"hello\n", 9999, None, None),
    ],
)
def test_known_greetings_name_their_protocol_and_product(
    greeting: bytes, port: int, service: str | None, product: str | None
) -> None:
    facts = identify_banner(greeting, port)
    assert facts is not None
    assert (facts.service, facts.product) == (service, product)
    assert facts.banner == greeting.decode().strip()


def test_multi_line_greetings_keep_their_lines() -> None:
    facts = identify_banner(b"220-mx.example.com ESMTP\r\n220 Exim 4.96 ready\r\n", 25)
    assert facts is not None
    assert facts.banner == "220-mx.example.com ESMTP\n220 Exim 4.96 ready"


def test_binary_greetings_are_escaped_not_dropped() -> None:
    assert clean_banner(b"J\x00\x00\x00\n8.0.33\x00\xff") == "J\\x00\\x00\\x00\n8.0.33\\x00\\xff"


def test_silence_is_not_a_banner() -> None:
    assert identify_banner(b"", 22) is None
    assert identify_banner(b"\r\n  \r\n", 22) is None


@given(st.binary(max_size=6000), st.integers(1, 65535))
def test_any_bytes_give_a_readable_bounded_banner_or_none(data: bytes, port: int) -> None:
    facts = identify_banner(data, port)
    if facts is not None:
        assert 0 < len(facts.banner) <= MAX_BANNER_CHARS
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", facts.banner)
