"""The first messages of client-first protocols and the parsers of their answers, on bytes
captured from the daemon lab's real Debian servers (PostgreSQL 15, Redis 7.0, Samba 4.17,
BIND 9.18), and from Debian's Redis without a password and xrdp 0.9.21 on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.identify import Kind, match
from surveyor.scan.probes import protocols
from surveyor.scan.probes.protocols import (
    parse_dns_version,
    parse_ntlm_challenge,
    parse_postgres_error,
    parse_redis,
    parse_smb_negotiate,
)

POSTGRES_15_REFUSAL = (
    b"E\x00\x00\x00\x83SFATAL\x00VFATAL\x00C0A000\x00Munsupported frontend protocol 4.0: "
    b"server supports 3.0 to 3.0\x00Fpostmaster.c\x00L2222\x00RProcessStartupPacket\x00\x00"
)
REDIS_WANTS_PASSWORD = b"-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n"
REDIS_OPEN = (
    b"+PONG\r\n$580\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"
    b"redis_git_dirty:0\r\nredis_build_id:ae4d7c971a948f0\r\nredis_mode:standalone\r\n"
    b"os:Linux 6.18.44-fc-v1300 x86_64\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime"
    b"\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:12.2.0\r\n"
    b"process_id:30592\r\nprocess_supervised:no\r\nrun_id:2c2d6e2872e944c4b028634a80e5bdd8147f36a8"
    b"\r\ntcp_port:16379\r\nserver_time_usec:1796529084974467\r\nuptime_in_seconds:1\r\n"
    b"uptime_in_days:0\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:1366972\r\n"
    b"executable:/tmp/idp/redis-server\r\nconfig_file:\r\nio_threads_active:0\r\n\r\n"
)
BIND_9_18 = (
    b"\x00QSV\x84\x00\x00\x01\x00\x01\x00\x01\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03"
    b"\xc0\x0c\x00\x10\x00\x03\x00\x00\x00\x00\x00\x19\x189.18.49-1~deb12u3-Debian\xc0\x0c\x00"
    b"\x02\x00\x03\x00\x00\x00\x00\x00\x02\xc0\x0c"
)
SAMBA_NEGOTIATE = (
    b"\x00\x00\x00\xca\xfeSMB@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xfe\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00A\x00\x01\x00"
    b"\x02\x03\x00\x00smb\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00"
    b"\x00\x00\x80\x00\x00\x00\x80\x00\x00\x00\x80\x00\x84\x9c\xe5\x055\x85\xdd\x01\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x80\x00J\x00\x00\x00\x00\x00`H\x06\x06+\x06\x01\x05\x05\x02\xa0>"
    b"0<\xa0\x0e0\x0c\x06\n+\x06\x01\x04\x01\x827\x02\x02\n\xa3*0(\xa0&"
    b"\x1b$not_defined_in_RFC4178"
    b"@please_ignore"
)
SAMBA_CHALLENGE = (
    b"\x00\x00\x00\xd3\xfeSMB@\x00\x00\x00\x16\x00\x00\xc0\x01\x00\x01\x00\x01\x00\x00\x00"
    b"\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\xfe\x00\x00\x00\x00\x00\x00r*y["
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\t\x00\x00\x00"
    b"H\x00\x8b\x00\xa1\x81\x880\x81\x85\xa0\x03\n\x01\x01\xa1\x0c\x06\n+\x06\x01\x04\x01"
    b"\x827\x02\x02\n\xa2p\x04nNTLMSSP\x00\x02\x00\x00\x00\x06\x00\x06"
    b"\x008\x00\x00\x00\x05\x82\x8a\xe2\xf9\xa3T}|\xebA\x93\x00\x00\x00\x00\x00\x00\x00"
    b"\x000\x000\x00>\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x0fS\x00M\x00B\x00\x02"
    b"\x00\x06\x00S\x00M\x00B\x00\x01\x00\x06\x00S\x00M\x00B\x00\x04\x00\x00\x00\x03"
    b"\x00\x04\x00v\x00m\x00\x07\x00\x08\x00\xe2-\xbbJ5\x85\xdd\x01\x00\x00\x00\x00"
)

XRDP_TLS_SELECTED = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x124\x00\x02\x01\x08\x00\x01\x00\x00\x00"


def named(banner: str) -> dict[str, str]:
    found = match(Kind.BANNER, banner)
    assert found is not None, banner
    return dict(found.says)


def test_postgresql_refusing_an_unknown_protocol_is_named_before_any_login() -> None:
    facts = parse_postgres_error(POSTGRES_15_REFUSAL)
    assert facts is not None
    assert facts.service == "postgresql"
    assert facts.banner == (
        "E SFATAL C0A000 Munsupported frontend protocol 4.0: server supports 3.0 to 3.0 "
        "Fpostmaster.c L2222 RProcessStartupPacket"
    )
    assert named(facts.banner)["product"] == "PostgreSQL"
    # the packet names protocol 4.0 (no user, no database): the server cannot start a login
    assert struct.pack("!II", 8, 0x00040000) == protocols.POSTGRES_STARTUP
    assert protocols.postgres_complete(POSTGRES_15_REFUSAL)
    assert not protocols.postgres_complete(POSTGRES_15_REFUSAL[:40])


def test_redis_is_named_with_or_without_a_password_and_its_info_gives_the_version() -> None:
    locked = parse_redis(REDIS_WANTS_PASSWORD)
    assert locked is not None
    assert locked.banner == "-NOAUTH Authentication required."
    assert named(locked.banner) == {
        "vendor": "Redis", "product": "Redis", "cpe": "cpe:/a:redis:redis"
    }  # fmt: skip
    assert protocols.redis_complete(REDIS_WANTS_PASSWORD)
    open_ = parse_redis(REDIS_OPEN)
    assert open_ is not None
    assert open_.service == "redis"
    # only what stays the same while the server runs: no run id, uptime or clock
    assert open_.banner == (
        "+PONG redis_version:7.0.15 redis_mode:standalone os:Linux 6.18.44-fc-v1300 x86_64 "
        "arch_bits:64"
    )
    assert named(open_.banner)["version"] == "7.0.15"
    assert named(open_.banner)["os"] == "Linux"
    assert protocols.redis_complete(REDIS_OPEN)
    assert not protocols.redis_complete(REDIS_OPEN[:200])  # INFO still arriving


def test_bind_tells_its_version_and_debian_release_to_version_bind() -> None:
    facts = parse_dns_version(BIND_9_18)
    assert facts is not None
    assert facts.service == "dns"
    assert facts.banner == "version.bind: 9.18.49-1~deb12u3-Debian"
    says = named(facts.banner)
    assert (says["product"], says["version"], says["os"], says["os_version"]) == (
        "BIND", "9.18.49", "Debian Linux", "12"
    )  # fmt: skip
    refused = bytearray(BIND_9_18[:31])
    refused[0:2] = struct.pack("!H", 29)
    refused[4:6] = struct.pack("!H", 0x8405)  # a response, REFUSED
    refused[8:10] = b"\x00\x00"  # no answer
    assert parse_dns_version(bytes(refused)) == protocols.ProtocolFacts(
        "version.bind: REFUSED", "dns"
    )


def test_samba_negotiates_smb2_and_its_ntlm_challenge_names_it() -> None:
    negotiated = parse_smb_negotiate(SAMBA_NEGOTIATE)
    assert negotiated is not None
    assert negotiated.service == "smb"
    assert negotiated.banner == (
        "SMB2 dialect 3.0.2 signing enabled hints not_defined_in_RFC4178@please_ignore"
    )
    challenge = parse_ntlm_challenge(SAMBA_CHALLENGE)
    assert challenge == "NTLM 6.1.0 revision 15 domain SMB computer SMB dns-computer vm"
    banner = f"{negotiated.banner} {challenge}"
    assert named(banner)["product"] == "Samba"
    assert named(f"NetBIOS session positive; {banner}")["product"] == "Samba"
    assert protocols.smb_complete(SAMBA_NEGOTIATE)
    assert not protocols.smb_complete(SAMBA_NEGOTIATE[:100])


def test_the_smb_requests_offer_smb2_and_only_an_ntlm_negotiation() -> None:
    negotiate = protocols.SMB_NEGOTIATE
    assert struct.unpack("!I", negotiate[:4])[0] == len(negotiate) - 4
    assert negotiate[4:8] == b"\xfeSMB"
    setup = protocols.SMB_SESSION_SETUP
    assert struct.unpack("<H", setup[4 + 12 : 4 + 14])[0] == 1  # SESSION_SETUP
    ntlm = setup[setup.index(b"NTLMSSP\x00") :]
    assert struct.unpack("<I", ntlm[8:12])[0] == 1  # NEGOTIATE_MESSAGE: no credentials
    assert ntlm == protocols.NTLM_NEGOTIATE
    request = protocols.NETBIOS_SESSION_REQUEST
    assert request[0] == 0x81
    assert len(request) == 4 + struct.unpack("!H", request[2:4])[0]
    assert request[4:38] == b" CKFDENECFDEFFCFGEFFCCACACACACACA\x00"  # *SMBSERVER<20>


def test_rdp_negotiation_names_the_protocol_the_server_selected() -> None:
    parsed = protocols.parse_rdp(XRDP_TLS_SELECTED)
    assert parsed == (
        protocols.ProtocolFacts("RDP connection confirm; TLS selected, flags 0x01", "rdp"),
        1,
    )
    # the request offers TLS and CredSSP, and carries no cookie or user name
    assert protocols.RDP_REQUEST[5] == 0xE0  # X.224 Connection Request
    assert struct.unpack("<BBHI", protocols.RDP_REQUEST[11:]) == (1, 0, 8, 0x0B)
    assert protocols.tpkt_complete(XRDP_TLS_SELECTED)
    # a server that wants CredSSP and was offered none says so in a failure
    failure = XRDP_TLS_SELECTED[:11] + struct.pack("<BBHI", 3, 0, 8, 5)
    assert protocols.parse_rdp(failure) == (
        protocols.ProtocolFacts("RDP connection confirm; negotiation failure 0x5", "rdp"),
        None,
    )


ANSWERS = (
    POSTGRES_15_REFUSAL,
    REDIS_WANTS_PASSWORD,
    REDIS_OPEN,
    BIND_9_18,
    SAMBA_NEGOTIATE,
    XRDP_TLS_SELECTED,
)
PARSERS: tuple[Callable[[bytes], object], ...] = (
    parse_postgres_error,
    parse_redis,
    parse_dns_version,
    parse_smb_negotiate,
    parse_ntlm_challenge,
    protocols.parse_rdp,
)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("answer", ANSWERS)
def test_every_cut_of_a_real_answer_parses_or_is_refused_without_error(
    parse: Callable[[bytes], object], answer: bytes
) -> None:
    for end in range(len(answer)):
        parse(answer[:end])  # a connection may end anywhere


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_without_error(data: bytes) -> None:
    for parse in PARSERS:
        parse(data)


def _server(answers: list[bytes]) -> tuple[socket.socket, list[bytes]]:
    """One end of a socket pair whose other end answers each request with the next answer."""
    client, server = socket.socketpair()
    heard: list[bytes] = []

    def serve() -> None:
        with server, contextlib.suppress(OSError):  # the client may hang up at any point
            for answer in answers:
                heard.append(server.recv(4096))
                server.sendall(answer)
            server.recv(4096)

    threading.Thread(target=serve, daemon=True).start()
    return client, heard


def test_postgresql_is_asked_ssl_first_then_refused_in_plain_text() -> None:
    client, heard = _server([b"N", POSTGRES_15_REFUSAL])
    with client:
        answer = protocols.ask_postgres(client, 2.0, None)
    assert heard == [protocols.POSTGRES_SSL_REQUEST, protocols.POSTGRES_STARTUP]
    assert answer.facts is not None
    assert answer.facts.service == "postgresql"
    assert answer.tls is None


def test_smb_on_139_opens_a_netbios_session_then_negotiates() -> None:
    client, heard = _server([b"\x82\x00\x00\x00", SAMBA_NEGOTIATE, SAMBA_CHALLENGE])
    with client:
        answer = protocols.ask_netbios_smb(client, 2.0, None)
    assert heard[0] == protocols.NETBIOS_SESSION_REQUEST
    assert heard[1:] == [protocols.SMB_NEGOTIATE, protocols.SMB_SESSION_SETUP]
    assert answer.facts is not None
    assert answer.facts.service == "netbios"
    assert answer.facts.banner.startswith("NetBIOS session positive; SMB2 dialect 3.0.2 ")
    assert answer.facts.banner.endswith(
        "NTLM 6.1.0 revision 15 domain SMB computer SMB dns-computer vm"
    )


def test_an_answer_is_read_only_up_to_its_bound() -> None:
    client, _ = _server([b"+" + b"x" * (3 * protocols.MAX_ANSWER_BYTES)])
    with client:
        data = protocols.converse(client, b"PING\r\n", lambda _data: False, 2.0)
    assert len(data) <= protocols.MAX_ANSWER_BYTES
