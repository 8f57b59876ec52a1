"""HTTP answers: status, Server header and title, from whatever a server sends back."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.probes.http import (
    HttpFacts,
    build_request,
    host_header,
    icon_facts,
    icon_path,
    parse_response,
)


def test_a_plain_answer_gives_status_server_and_title() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><title>\n  Router &amp; Firewall \n</title></head></html>"
    )
    assert parse_response(answer) == HttpFacts(200, "nginx/1.24.0", "Router & Firewall")


def test_titles_are_decoded_in_the_charset_the_server_names() -> None:
    body = "<TITLE lang=de>Übersicht \u2013 Gerät</TITLE>".encode("latin-1", errors="replace")
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=ISO-8859-1\r\n\r\n" + body
    facts = parse_response(answer)
    assert facts is not None
    assert facts.title == "Übersicht ? Gerät"


def test_utf8_is_the_default() -> None:
    answer = "HTTP/1.1 200 OK\r\n\r\n<title>Lab \u2013 Portal</title>".encode()
    assert parse_response(answer) == HttpFacts(200, None, "Lab \u2013 Portal")


def test_chunked_bodies_are_reassembled() -> None:
    answer = (
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nserver: demo\r\n\r\n"
        b"7\r\n<title>\r\n9\r\nNot there\r\n8\r\n</title>\r\n0\r\n\r\n"
    )
    assert parse_response(answer) == HttpFacts(404, "demo", "Not there")


def test_an_answer_without_a_body_or_title_still_counts() -> None:
    moved = parse_response(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\n")
    assert moved == HttpFacts(301, None, None, location="/x")
    assert moved.as_record() == {"status": 301, "server": None, "title": None, "location": "/x"}


def test_powered_by_realm_and_redirect_target_are_kept_when_the_answer_has_them() -> None:
    # as Apache with PHP and basic authentication answers
    answer = (
        b"HTTP/1.1 401 Unauthorized\r\nDate: Sun, 06 Dec 2026 03:59:00 GMT\r\n"
        b"Server: Apache/2.4.71 (Debian)\r\nX-Powered-By: PHP/8.2.29\r\n"
        b'WWW-Authenticate: Basic realm="Router \\"admin\\" area", charset="UTF-8"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    facts = parse_response(answer)
    assert facts == HttpFacts(
        401, "Apache/2.4.71 (Debian)", None, powered_by="PHP/8.2.29", realm='Router "admin" area'
    )
    assert facts.as_record() == {
        "status": 401,
        "server": "Apache/2.4.71 (Debian)",
        "title": None,
        "powered_by": "PHP/8.2.29",
        "realm": 'Router "admin" area',
    }
    digest = b'HTTP/1.0 401 x\r\nwww-authenticate: Digest realm=cameras, nonce="a1"\r\n\r\n'
    assert parse_response(digest) == HttpFacts(401, None, None, realm="cameras")
    bearer = b"HTTP/1.1 401 x\r\nWWW-Authenticate: Negotiate\r\n\r\n"
    assert parse_response(bearer) == HttpFacts(401, None, None)


def test_anything_else_is_not_http() -> None:
    assert parse_response(b"SSH-2.0-OpenSSH_9.2p1\r\n") is None
    assert parse_response(b"") is None


def test_the_host_header_names_the_port_only_when_it_is_not_the_default() -> None:
    assert host_header("example.test", 80, tls=False) == "example.test"
    assert host_header("example.test", 443, tls=True) == "example.test"
    assert host_header("127.0.0.1", 8080, tls=False) == "127.0.0.1:8080"
    assert host_header("::1", 443, tls=True) == "[::1]"
    assert host_header("::1", 8443, tls=True) == "[::1]:8443"


def test_the_request_is_one_get_that_asks_the_server_to_close() -> None:
    request = build_request("example.test:8080")
    assert request.startswith(b"GET / HTTP/1.1\r\nHost: example.test:8080\r\n")
    assert b"Connection: close\r\n" in request
    assert request.endswith(b"\r\n\r\n")


@given(st.binary(max_size=5000))
def test_any_bytes_parse_or_are_refused_without_an_error(data: bytes) -> None:
    parse_response(data)
    parse_response(b"HTTP/1.1 200 OK\r\n" + data)


def _page(head: str) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><head>" + head.encode()


def test_the_icon_is_the_pages_own_link_on_the_same_server_else_favicon_ico() -> None:
    assert icon_path(_page('<link rel="icon" href="/img/a.png">')) == "/img/a.png"
    assert icon_path(_page("<LINK HREF=fav.ico REL='Shortcut Icon'>")) == "/fav.ico"
    assert icon_path(_page('<link rel="icon" href="./i.ico?x=1&amp;y=2">')) == "/i.ico?x=1&y=2"
    assert icon_path(_page('<link rel="stylesheet" href="/s.css">')) == "/favicon.ico"
    for elsewhere in (
        "https://cdn.example/i.ico",
        "//cdn.example/i.ico",
        "data:image/png;base64,AA",
    ):
        assert icon_path(_page(f'<link rel="icon" href="{elsewhere}">')) == "/favicon.ico"
    assert icon_path(_page('<link rel="icon" href="/a b.ico">')) == "/favicon.ico"
    assert icon_path(b"not http at all") == "/favicon.ico"


def test_only_a_whole_icon_answered_with_200_is_hashed() -> None:
    icon = b"\x00\x00\x01\x00" + bytes(60)
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + icon
    assert icon_facts(whole) == {
        "md5": hashlib.md5(icon, usedforsecurity=False).hexdigest(),
        "bytes": 64,
    }
    assert icon_facts(whole[:-1]) is None  # cut short
    assert icon_facts(whole.replace(b"200 OK", b"404 Not Found")) is None
    assert icon_facts(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>x") is None
    assert icon_facts(b"HTTP/1.1 200 OK\r\n\r\n") is None


@given(st.binary(max_size=400))
def test_any_answer_gives_an_icon_path_and_facts_or_none_without_error(data: bytes) -> None:
    assert icon_path(data).startswith("/")
    icon_facts(data)
