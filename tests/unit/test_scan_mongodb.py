"""The MongoDB probe: `isMaster` then `buildInfo`, never a login.

No MongoDB server can be installed here (Debian and PyPI carry none), so the server side of
these tests speaks the wire protocol through an independent BSON implementation (pymongo's
`bson`): it decodes what the probe sends, and encodes answers shaped like MongoDB 7.0's own
replies to those two commands."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import bson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.identify import Kind, match
from surveyor.core.scan_params import Probe
from surveyor.scan.probes import protocols
from surveyor.scan.probes.service import ProbeTimeouts, ServiceTarget, describe_port

QUICK = ProbeTimeouts(banner=0.2, exchange=1.0, greeting=0.05)
ALL = frozenset({Probe.BANNER, Probe.HTTP, Probe.TLS})

IS_MASTER = {
    "ismaster": True,
    "topologyVersion": {"processId": bson.ObjectId(), "counter": bson.Int64(0)},
    "maxBsonObjectSize": 16777216,
    "maxMessageSizeBytes": 48000000,
    "maxWriteBatchSize": 100000,
    "localTime": bson.datetime.datetime(2026, 12, 6, 8, 0, tzinfo=bson.datetime.timezone.utc),
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 7,
    "minWireVersion": 0,
    "maxWireVersion": 21,
    "readOnly": False,
    "ok": 1.0,
}
BUILD_INFO = {
    "version": "7.0.14",
    "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188",
    "modules": [],
    "allocator": "tcmalloc",
    "javascriptEngine": "mozjs",
    "sysInfo": "deprecated",
    "versionArray": [7, 0, 14, 0],
    "openssl": {"running": "OpenSSL 3.0.15 3 Sep 2024", "compiled": "OpenSSL 3.0.2"},
    "buildEnvironment": {
        "distmod": "debian12",
        "distarch": "x86_64",
        "target_arch": "x86_64",
        "target_os": "linux",
        "cppdefines": "PCRE2_STATIC NDEBUG",
    },
    "bits": 64,
    "debug": False,
    "maxBsonObjectSize": 16777216,
    "storageEngines": ["devnull", "wiredTiger"],
    "ok": 1.0,
}
UNAUTHORIZED = {
    "ok": 0.0,
    "errmsg": "command buildInfo requires authentication",
    "code": 13,
    "codeName": "Unauthorized",
}


def _read_message(conn: socket.socket) -> tuple[int, int, bytes] | None:
    header = b""
    while len(header) < 16:
        chunk = conn.recv(16 - len(header))
        if not chunk:
            return None
        header += chunk
    length, request_id, _, opcode = struct.unpack("<iiii", header)
    body = b""
    while len(body) < length - 16:
        body += conn.recv(length - 16 - len(body))
    return request_id, opcode, body


def _reply(request_id: int, opcode: int, document: dict[str, Any]) -> bytes:
    encoded = bson.encode(document)
    if opcode == 2004:  # OP_REPLY: flags, cursor id, starting from, number returned
        body = struct.pack("<iqii", 8, 0, 0, 1) + encoded
        return struct.pack("<iiii", 16 + len(body), 99, request_id, 1) + body
    body = struct.pack("<IB", 0, 0) + encoded
    return struct.pack("<iiii", 16 + len(body), 99, request_id, 2013) + body


class MongoServer:
    """Decodes each request with pymongo's BSON and answers it like MongoDB would."""

    def __init__(self, build_info: dict[str, Any] | None, *, op_msg: bool = True) -> None:
        self.build_info = build_info
        self.op_msg = op_msg
        self.commands: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, conn: socket.socket) -> None:
        while (message := _read_message(conn)) is not None:
            request_id, opcode, body = message
            if opcode == 2004:
                collection_end = body.index(b"\x00", 4)
                assert body[4:collection_end] == b"admin.$cmd"
                command = bson.decode(body[collection_end + 1 + 8 :])
            elif opcode == 2013 and self.op_msg:
                assert body[4] == 0  # one body section
                command = bson.decode(body[5:])
            else:
                return  # an old server hangs up on what it cannot read
            self.commands.append((opcode, command))
            if "isMaster" in command:
                conn.sendall(_reply(request_id, opcode, IS_MASTER))
            else:
                conn.sendall(_reply(request_id, opcode, self.build_info or UNAUTHORIZED))


def dial_to(serve: Callable[[socket.socket], None]) -> Callable[[str, int, float], socket.socket]:
    def dial(address: str, port: int, timeout: float) -> socket.socket:
        client, server = socket.socketpair()
        client.settimeout(timeout)

        def run() -> None:
            with server, contextlib.suppress(OSError):
                serve(server)

        threading.Thread(target=run, daemon=True).start()
        return client

    return dial


def test_mongodb_is_asked_ismaster_then_buildinfo_and_named_with_version_and_os() -> None:
    server = MongoServer(BUILD_INFO)
    entry = describe_port(ServiceTarget("192.0.2.1", 27017), ALL, QUICK, dial_to(server))
    assert server.commands == [
        (2004, {"isMaster": 1}),
        (2013, {"buildInfo": 1, "$db": "admin"}),
    ]
    assert entry["service"] == "mongodb"
    assert entry["banner"] == (
        "MongoDB version:7.0.14 maxWireVersion:21 bits:64 modules:none "
        "target_os:linux target_arch:x86_64 distmod:debian12"
    )
    found = match(Kind.BANNER, entry["banner"])
    assert found is not None
    assert found.says == {
        "vendor": "MongoDB",
        "product": "MongoDB",
        "version": "7.0.14",
        "os": "Debian Linux",
        "os_version": "12",
        "cpe": "cpe:/a:mongodb:mongodb:7.0.14",
        "device_type": "server",
    }


def test_a_server_that_wants_a_login_for_buildinfo_is_still_named_mongodb() -> None:
    server = MongoServer(None)
    entry = describe_port(ServiceTarget("192.0.2.1", 27017), ALL, QUICK, dial_to(server))
    assert entry["banner"] == "MongoDB maxWireVersion:21"
    found = match(Kind.BANNER, entry["banner"])
    assert found is not None
    assert (found.says["product"], found.says.get("version")) == ("MongoDB", None)


def test_a_server_too_old_for_op_msg_answers_the_handshake_and_hangs_up() -> None:
    server = MongoServer(BUILD_INFO, op_msg=False)
    client, far = socket.socketpair()
    threading.Thread(target=lambda: (server(far), far.close()), daemon=True).start()
    with client:
        answer = protocols.ask_mongodb(client, 2.0, None)
    assert answer.facts is not None
    assert answer.facts.banner == "MongoDB maxWireVersion:21"


def test_the_request_is_two_well_formed_commands_and_nothing_else() -> None:
    first_length = struct.unpack_from("<i", protocols.MONGODB_REQUEST)[0]
    first, second = (
        protocols.MONGODB_REQUEST[:first_length],
        protocols.MONGODB_REQUEST[first_length:],
    )
    assert struct.unpack_from("<i", second)[0] == len(second)
    assert bson.decode(first[16 + 4 + len(b"admin.$cmd\x00") + 8 :]) == {"isMaster": 1}
    assert bson.decode(second[16 + 5 :]) == {"buildInfo": 1, "$db": "admin"}


@pytest.mark.parametrize("document", [IS_MASTER, BUILD_INFO, UNAUTHORIZED])
def test_the_bson_reader_agrees_with_an_independent_implementation(
    document: dict[str, Any],
) -> None:
    read = protocols.bson_fields(bson.encode(document))
    expected = bson.decode(bson.encode(document))
    for key in ("ok", "version", "maxWireVersion", "bits", "modules", "buildEnvironment"):
        if key in expected:
            assert read[key] == expected[key]
    assert set(read) == set(expected)


ANSWER = _reply(1, 2004, IS_MASTER) + _reply(2, 2013, BUILD_INFO)


def test_every_cut_of_an_answer_parses_or_is_refused_without_error() -> None:
    for end in range(len(ANSWER)):
        protocols.parse_mongodb(ANSWER[:end])  # a connection may end anywhere
        protocols.mongodb_complete(ANSWER[:end])
    assert protocols.mongodb_complete(ANSWER)
    assert not protocols.mongodb_complete(ANSWER[:-1])


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_without_error(data: bytes) -> None:
    assert protocols.parse_mongodb(data) is None or data[12:16] in (
        struct.pack("<i", 1),
        struct.pack("<i", 2013),
    )
    protocols.mongodb_complete(data)


@given(st.binary(max_size=200))
def test_bytes_after_a_real_header_never_crash_the_reader(tail: bytes) -> None:
    message = struct.pack("<iiii", 16 + 20 + len(tail), 1, 1, 1) + struct.pack("<iqii", 8, 0, 0, 1)
    protocols.parse_mongodb(message + tail)
