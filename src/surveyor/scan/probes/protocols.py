"""First messages of client-first protocols, sent at once on their well-known ports.

A PostgreSQL, Redis, MongoDB, SMB, DNS or RDP server says nothing until it is asked in its
own protocol, so waiting for a greeting and then trying HTTP and TLS learns nothing and costs
the whole of each wait. On those ports the protocol's own first message goes out as soon as
the connection is open, and the answer is turned into a readable `banner` (the text the
fingerprint rules read, docs/fingerprints.md) and the protocol's name.

Every exchange is read-only and never logs in: PostgreSQL is sent a startup packet of a
protocol version no server speaks (it refuses before any authentication), Redis `PING` and
`INFO server` (which a server that requires a password refuses), MongoDB the `isMaster`
handshake and `buildInfo` (both answered before any login), SMB a `NEGOTIATE` and the
first NTLMSSP message (the server's challenge names its version; no credentials follow),
DNS one `version.bind` CH TXT query, RDP an X.224 connection request with a negotiation
request (then only the TLS handshake of the protocol the server chose). Each answer is read
within the probe's timeout and at most `MAX_ANSWER_BYTES`; the banner keeps only what does
not change from one scan to the next (no times, process ids or challenges), so that an
unchanged server shows an unchanged service.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from surveyor.scan.probes import tls

MAX_ANSWER_BYTES = 8192
PROBE_ERRORS = (OSError, ssl.SSLError, ValueError, struct.error)


@dataclass(frozen=True, slots=True)
class ProtocolFacts:
    """What a protocol's answer says: a banner for the rules, and the protocol's name."""

    banner: str
    service: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What one protocol probe got: the facts when the answer was the protocol's, the first
    bytes the server sent (whatever they were), and the TLS session's facts when the
    protocol moved into TLS (PostgreSQL after `S`)."""

    facts: ProtocolFacts | None
    raw: bytes
    tls: dict[str, Any] | None = None


Socket = socket.socket | ssl.SSLSocket
#: Whether the bytes so far are a whole answer (reading stops there).
Complete = Callable[[bytes], bool]


def converse(sock: Socket, request: bytes, complete: Complete, timeout: float) -> bytes:
    """Send `request` and read until the answer is complete, the server closes, the size
    limit, or `timeout` has passed since the request (returning what arrived)."""
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    sock.sendall(request)
    data = b""
    while len(data) < MAX_ANSWER_BYTES and not complete(data):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(MAX_ANSWER_BYTES - len(data))
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


# --- PostgreSQL -------------------------------------------------------------------------------

#: `SSLRequest`: the server answers one byte, `S` (TLS follows) or `N`.
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)
#: A startup packet of protocol 4.0, which no server speaks: refused before authentication
#: with an error that a 3.x server writes in full (severity, code, message, source).
POSTGRES_STARTUP = struct.pack("!II", 8, 4 << 16)


def postgres_complete(data: bytes) -> bool:
    if data[:1] != b"E" or len(data) < 5:
        return False
    length: int = struct.unpack("!I", data[1:5])[0]
    return len(data) >= 1 + length


def parse_postgres_error(data: bytes) -> ProtocolFacts | None:
    """An `ErrorResponse` of protocol 3 (`E`, length, fields of a code letter and a
    NUL-ended text): `E SFATAL C0A000 Munsupported frontend protocol 4.0: server supports
    3.0 to 3.0 Fpostmaster.c L2188 RProcessStartupPacket` (the localised severity `S` and
    the message are kept, the source position too: it differs between releases)."""
    if data[:1] != b"E" or len(data) < 6:
        return None
    (length,) = struct.unpack("!I", data[1:5])
    if not 4 < length <= MAX_ANSWER_BYTES:
        return None
    fields = []
    for field in data[5 : 1 + length].split(b"\x00"):
        if len(field) >= 2 and field[:1].isalpha() and field[:1] != b"V":
            fields.append(field[:1].decode("ascii") + _printable(field[1:]))
    if not any(f.startswith("C") for f in fields):
        return None
    return ProtocolFacts(banner=" ".join(["E", *fields]), service="postgresql")


def ask_postgres(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    """`SSLRequest`; after `S` a TLS handshake, then the refused startup packet inside it."""
    first = converse(sock, POSTGRES_SSL_REQUEST, lambda data: len(data) >= 1, timeout)
    if first not in (b"S", b"N"):
        return Answer(None, first)
    channel: Socket = sock
    session = None
    if first == b"S":
        channel = tls.handshake(sock, server_name, timeout)
        session = tls.session_facts(channel)
    answer = converse(channel, POSTGRES_STARTUP, postgres_complete, timeout)
    facts = parse_postgres_error(answer) or ProtocolFacts(
        f"SSLRequest: {first.decode()}", "postgresql"
    )
    return Answer(facts, answer or first, session)


# --- Redis ------------------------------------------------------------------------------------

#: `PING`, then `INFO server`, as RESP arrays in one write.
REDIS_REQUEST = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"
#: The lines of `INFO server` that name the server and do not change while it runs.
REDIS_KEPT = ("redis_version", "redis_mode", "os", "arch_bits")
_RESP_LINE = re.compile(rb"[+\-:][^\r\n]*\r\n|\$(-?\d+)\r\n")


def _resp_replies(data: bytes) -> list[bytes] | None:
    """The complete RESP replies at the start of `data` (simple strings, errors, integers,
    bulk strings); None if the data is not RESP."""
    replies: list[bytes] = []
    at = 0
    while at < len(data):
        found = _RESP_LINE.match(data, at)
        if found is None:
            return replies if replies and b"\r\n" not in data[at:] else None
        if found.group(1) is None:
            replies.append(found.group()[:-2])
            at = found.end()
            continue
        size = int(found.group(1))
        end = found.end() + max(size, 0)
        if size >= 0 and len(data) < end + 2:
            return replies  # a bulk string still arriving
        replies.append(data[found.end() : end] if size >= 0 else b"$-1")
        at = end + 2 if size >= 0 else found.end()
    return replies


def redis_complete(data: bytes) -> bool:
    replies = _resp_replies(data)
    return replies is None or len(replies) >= 2


def parse_redis(data: bytes) -> ProtocolFacts | None:
    """`+PONG` (or the error a server wanting a password gives) and the `INFO server` lines
    that name it: `+PONG redis_version:7.0.15 redis_mode:standalone os:Linux ...`."""
    replies = _resp_replies(data)
    if not replies or replies[0][:1] not in (b"+", b"-"):
        return None
    parts = [_printable(replies[0])]
    if len(replies) > 1 and replies[1][:1] not in (b"+", b"-"):
        info = dict(
            line.partition(":")[::2]
            for line in replies[1].decode("utf-8", errors="replace").splitlines()
        )
        parts += [f"{key}:{info[key].strip()}" for key in REDIS_KEPT if info.get(key)]
    elif len(replies) > 1 and replies[1] != replies[0]:
        parts.append(_printable(replies[1]))
    return ProtocolFacts(banner=" ".join(parts), service="redis")


def ask_redis(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    answer = converse(sock, REDIS_REQUEST, redis_complete, timeout)
    return Answer(parse_redis(answer), answer)


# --- MongoDB ----------------------------------------------------------------------------------

#: `isMaster` as an OP_QUERY on `admin.$cmd` (every release answers it before any login, it is
#: the handshake), then `buildInfo` as an OP_MSG (3.6 and later; also allowed before login),
#: in one write: a server too old for OP_MSG closes after the first answer.
_MONGO_OP_REPLY, _MONGO_OP_QUERY, _MONGO_OP_MSG = 1, 2004, 2013
#: What `buildInfo` and `isMaster` say that names the server and does not change while it runs.
_MONGO_KEPT = ("version", "maxWireVersion", "msg", "bits", "modules")
_MONGO_BUILD_KEPT = ("target_os", "target_arch", "distmod")


def _bson_cstring(name: str) -> bytes:
    return name.encode() + b"\x00"


def bson_document(fields: dict[str, int | str]) -> bytes:
    """A BSON document of 32-bit integers and strings: all a probe's commands need."""
    body = b""
    for name, value in fields.items():
        if isinstance(value, int):
            body += b"\x10" + _bson_cstring(name) + struct.pack("<i", value)
        else:
            text = value.encode()
            body += (
                b"\x02" + _bson_cstring(name) + struct.pack("<i", len(text) + 1) + text + b"\x00"
            )
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _mongo_message(request_id: int, opcode: int, body: bytes) -> bytes:
    return struct.pack("<iiii", 16 + len(body), request_id, 0, opcode) + body


MONGODB_REQUEST = _mongo_message(
    1,
    _MONGO_OP_QUERY,
    struct.pack("<i", 0)
    + _bson_cstring("admin.$cmd")
    + struct.pack("<ii", 0, -1)
    + bson_document({"isMaster": 1}),
) + _mongo_message(
    2, _MONGO_OP_MSG, struct.pack("<IB", 0, 0) + bson_document({"buildInfo": 1, "$db": "admin"})
)

#: The fixed sizes of BSON values by type byte (double, ObjectId, bool, date, null, int32,
#: timestamp, int64, decimal128, min and max key); strings, documents and binaries carry theirs.
_BSON_FIXED = {1: 8, 7: 12, 8: 1, 9: 8, 10: 0, 16: 4, 17: 8, 18: 8, 19: 16, 127: 0, 255: 0}
_BSON_DEPTH = 4

BsonValue = str | int | float | bool | None | dict[str, Any] | list[Any]


def bson_fields(data: bytes, depth: int = 0) -> dict[str, BsonValue]:
    """The fields of one BSON document (`data` holds exactly it): strings, numbers, booleans,
    and documents and arrays down to a few levels; other values are skipped by their size.
    Raises ValueError or struct.error when the bytes are not a well-formed document."""
    (size,) = struct.unpack_from("<i", data)
    if size != len(data) or size < 5 or data[-1:] != b"\x00":
        raise ValueError("not a BSON document")
    fields: dict[str, BsonValue] = {}
    at = 4
    while data[at] != 0:
        kind = data[at]
        end = data.index(b"\x00", at + 1)
        name = data[at + 1 : end].decode("utf-8", errors="replace")
        at = end + 1
        value: BsonValue = None
        if kind in (2, 13, 14):  # string, JavaScript, symbol
            (length,) = struct.unpack_from("<i", data, at)
            if length < 1 or at + 4 + length > len(data) - 1:
                raise ValueError("a BSON string runs past its document")
            value = data[at + 4 : at + 3 + length].decode("utf-8", errors="replace")
            at += 4 + length
        elif kind in (3, 4):  # document, array
            (length,) = struct.unpack_from("<i", data, at)
            if length < 5 or at + length > len(data) - 1:
                raise ValueError("a BSON document runs past its parent")
            inner = data[at : at + length]
            if depth < _BSON_DEPTH:
                parsed = bson_fields(inner, depth + 1)
                value = parsed if kind == 3 else list(parsed.values())
            at += length
        elif kind == 5:  # binary: length, subtype, bytes
            (length,) = struct.unpack_from("<i", data, at)
            if length < 0:
                raise ValueError("a BSON binary of negative length")
            at += 5 + length
        elif kind in _BSON_FIXED:
            width = _BSON_FIXED[kind]
            if kind == 1:
                (value,) = struct.unpack_from("<d", data, at)
            elif kind == 8:
                value = data[at] != 0
            elif kind == 16:
                (value,) = struct.unpack_from("<i", data, at)
            elif kind == 18:
                (value,) = struct.unpack_from("<q", data, at)
            at += width
        else:
            raise ValueError(f"BSON type {kind} is not read here")
        if at > len(data) - 1:
            raise ValueError("a BSON value runs past its document")
        fields[name] = value
    return fields


def _mongo_messages(data: bytes) -> list[tuple[int, bytes]]:
    """The whole wire messages at the start of `data`: (opcode, body after the header)."""
    messages = []
    at = 0
    while len(data) - at >= 16:
        length, _, _, opcode = struct.unpack_from("<iiii", data, at)
        if not 16 <= length <= MAX_ANSWER_BYTES:
            raise ValueError("not a MongoDB message")
        if len(data) - at < length:
            break
        messages.append((opcode, data[at + 16 : at + length]))
        at += length
    return messages


def mongodb_complete(data: bytes) -> bool:
    try:
        return len(_mongo_messages(data)) >= 2
    except ValueError:
        return True  # not MongoDB: nothing more worth waiting for


def _mongo_reply(opcode: int, body: bytes) -> dict[str, BsonValue] | None:
    """The document of an OP_REPLY (flags, cursor, start, count, documents) or an OP_MSG
    (flags, then a section of kind 0)."""
    if opcode == _MONGO_OP_REPLY and len(body) >= 20:
        (count,) = struct.unpack_from("<i", body, 16)
        document = body[20:]
    elif opcode == _MONGO_OP_MSG and len(body) >= 5 and body[4] == 0:
        count, document = 1, body[5:]
    else:
        return None
    if count < 1 or len(document) < 5:
        return None
    (size,) = struct.unpack_from("<i", document)
    return bson_fields(document[:size])


def _mongo_text(value: BsonValue) -> str:
    if isinstance(value, list):
        return ",".join(_mongo_text(item) for item in value) or "none"
    return _printable(str(value).encode())


def parse_mongodb(data: bytes) -> ProtocolFacts | None:
    """The answers to `isMaster` and `buildInfo`: `MongoDB version:7.0.14 maxWireVersion:21
    bits:64 modules:none target_os:linux target_arch:x86_64 distmod:debian12` (a server
    wanting a login for `buildInfo`, or too old for OP_MSG, gives what `isMaster` says)."""
    try:
        documents = [_mongo_reply(opcode, body) for opcode, body in _mongo_messages(data)]
    except (ValueError, struct.error, IndexError):
        return None
    hello = documents[0] if documents else None
    if not hello or ("maxWireVersion" not in hello and "ismaster" not in hello):
        return None
    said: dict[str, BsonValue] = dict(hello)
    build = documents[1] if len(documents) > 1 else None
    if build and build.get("ok") in (1, 1.0, True):
        said.update(build)
        environment = build.get("buildEnvironment")
        if isinstance(environment, dict):
            said.update({key: environment[key] for key in _MONGO_BUILD_KEPT if key in environment})
    parts = ["MongoDB"]
    for key in (*_MONGO_KEPT, *_MONGO_BUILD_KEPT):
        value = said.get(key)
        if value is not None and value != "":
            parts.append(f"{key}:{_mongo_text(value)}")
    return ProtocolFacts(banner=" ".join(parts), service="mongodb")


def ask_mongodb(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    answer = converse(sock, MONGODB_REQUEST, mongodb_complete, timeout)
    return Answer(parse_mongodb(answer), answer)


# --- DNS over TCP -----------------------------------------------------------------------------

_DNS_ID = 0x5356
#: One query, no recursion: `version.bind` TXT in class CHAOS, with TCP's length prefix.
_DNS_QUERY = (
    struct.pack("!HHHHHH", _DNS_ID, 0, 1, 0, 0, 0)
    + b"\x07version\x04bind\x00"
    + struct.pack("!HH", 16, 3)
)
DNS_REQUEST = struct.pack("!H", len(_DNS_QUERY)) + _DNS_QUERY
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def dns_complete(data: bytes) -> bool:
    return len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0]


def _skip_name(message: bytes, at: int) -> int:
    while at < len(message):
        size = message[at]
        if size == 0:
            return at + 1
        if size & 0xC0 == 0xC0:
            return at + 2
        at += 1 + size
    raise ValueError("a name runs past the message")


def parse_dns_version(data: bytes) -> ProtocolFacts | None:
    """The answer to our `version.bind` query: `version.bind: 9.18.49-1~deb12u3-Debian`, or
    the refusal (`version.bind: REFUSED`), which still says a name server listens."""
    if len(data) < 14:
        return None
    message = data[2 : 2 + struct.unpack("!H", data[:2])[0]]
    if len(message) < 12:
        return None
    ident, flags, questions, answers = struct.unpack("!HHHH", message[:8])
    if ident != _DNS_ID or not flags & 0x8000:
        return None
    rcode = flags & 0x000F
    texts: list[str] = []
    try:
        at = 12
        for _ in range(questions):
            at = _skip_name(message, at) + 4
        for _ in range(answers):
            at = _skip_name(message, at)
            kind, _class, _ttl, size = struct.unpack("!HHIH", message[at : at + 10])
            rdata = message[at + 10 : at + 10 + size]
            at += 10 + size
            while kind == 16 and rdata:
                texts.append(_printable(rdata[1 : 1 + rdata[0]]))
                rdata = rdata[1 + rdata[0] :]
    except (ValueError, struct.error, IndexError):
        return None
    said = " ".join(t for t in texts if t) or _RCODES.get(rcode, f"RCODE{rcode}")
    return ProtocolFacts(banner=f"version.bind: {said}", service="dns")


def ask_dns(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    answer = converse(sock, DNS_REQUEST, dns_complete, timeout)
    return Answer(parse_dns_version(answer), answer)


# --- SMB --------------------------------------------------------------------------------------

#: The SMB2 dialects offered, oldest first (3.1.1 needs negotiate contexts: not offered).
SMB2_DIALECTS = (0x0202, 0x0210, 0x0300, 0x0302)
_SMB2_CLIENT_GUID = b"Surveyor-scan\x00\x00\x00"
_SMB2_NEGOTIATE, _SMB2_SESSION_SETUP = 0, 1
_STATUS_MORE_PROCESSING = 0xC0000016


def _smb2(command: int, message_id: int, body: bytes) -> bytes:
    """An SMB2 request in its 4-byte session message header (direct TCP or NetBIOS)."""
    header = struct.pack(
        "<4sHHIHHIIQIIQ16s",
        *(b"\xfeSMB", 64, 0, 0, command, 1, 0, 0, message_id, 0xFEFF, 0, 0, b"\x00" * 16),
    )
    message = header + body
    return struct.pack("!I", len(message)) + message


SMB_NEGOTIATE = _smb2(
    _SMB2_NEGOTIATE,
    0,
    struct.pack("<HHHHI16sQ", 36, len(SMB2_DIALECTS), 1, 0, 0, _SMB2_CLIENT_GUID, 0)
    + b"".join(struct.pack("<H", dialect) for dialect in SMB2_DIALECTS),
)


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


#: NTLMSSP `NEGOTIATE_MESSAGE` flags: Unicode, OEM, request target, NTLM, always sign,
#: extended session security, target info, version, 128-bit, key exchange, 56-bit.
_NTLM_FLAGS = 0x00000001 | 0x00000002 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00080000
_NTLM_FLAGS |= 0x00800000 | 0x02000000 | 0x20000000 | 0x40000000 | 0x80000000
NTLM_NEGOTIATE = b"NTLMSSP\x00" + struct.pack("<II8s8s8s", 1, _NTLM_FLAGS, *(b"\x00" * 8,) * 3)
_SPNEGO_OID = bytes.fromhex("2b0601050502")
_NTLMSSP_OID = bytes.fromhex("2b06010401823702020a")
#: The NTLMSSP negotiation in a SPNEGO `negTokenInit`: the server answers with its
#: challenge, which names its NTLM version and NetBIOS names. Nothing more is sent: no
#: credentials, no session.
SPNEGO_NTLM_NEGOTIATE = _der(
    0x60,
    _der(0x06, _SPNEGO_OID)
    + _der(
        0xA0,
        _der(
            0x30,
            _der(0xA0, _der(0x30, _der(0x06, _NTLMSSP_OID)))
            + _der(0xA2, _der(0x04, NTLM_NEGOTIATE)),
        ),
    ),
)
SMB_SESSION_SETUP = _smb2(
    _SMB2_SESSION_SETUP,
    1,
    struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24, len(SPNEGO_NTLM_NEGOTIATE), 0)
    + SPNEGO_NTLM_NEGOTIATE,
)


def _netbios_name(name: str, suffix: int) -> bytes:
    """A NetBIOS name in first-level encoding (RFC 1001): 16 bytes as 32 letters."""
    raw = name.upper().ljust(15)[:15].encode("ascii") + bytes([suffix])
    return b"\x20" + bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0x0F))) + b"\x00"


_SESSION_NAMES = _netbios_name("*SMBSERVER", 0x20) + _netbios_name("SURVEYOR", 0x00)
#: A NetBIOS session request (port 139) to `*SMBSERVER`, the name every SMB server takes.
NETBIOS_SESSION_REQUEST = b"\x81\x00" + struct.pack("!H", len(_SESSION_NAMES)) + _SESSION_NAMES
_NETBIOS_ANSWERS = {0x82: "positive", 0x83: "negative"}


def netbios_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + struct.unpack("!H", data[2:4])[0]


def smb_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + (struct.unpack("!I", data[:4])[0] & 0xFFFFFF)


def _dialect(revision: int) -> str:
    return f"{revision >> 8}.{(revision >> 4) & 0xF}.{revision & 0xF}"


def _smb2_message(data: bytes, command: int) -> tuple[int, bytes, bytes] | None:
    """(status, header, body) of an SMB2 answer to `command`; None if it is not one."""
    message = data[4:]
    if len(message) < 64 + 8 or message[:4] != b"\xfeSMB":
        return None
    status, answered = struct.unpack("<IH", message[8:14])
    if answered != command:
        return None
    return status, message[:64], message[64:]


def parse_smb_negotiate(data: bytes) -> ProtocolFacts | None:
    """An SMB2 `NEGOTIATE` response: `SMB2 dialect 3.0.2 signing enabled hints
    not_defined_in_RFC4178@please_ignore` (the server's times, GUID, sizes and capabilities
    are left out: they change from one connection to the next, or tell nothing of it)."""
    found = _smb2_message(data, _SMB2_NEGOTIATE)
    if found is None or len(found[2]) < 64:
        return None
    status, _header, body = found
    size, security_mode, revision = struct.unpack("<HHH", body[:6])
    if size != 65:
        return None
    offset, length = struct.unpack("<HH", body[56:60])
    blob = data[4 + offset : 4 + offset + length]
    parts = [f"SMB2 dialect {_dialect(revision)}"]
    if status:
        parts.append(f"status 0x{status:08x}")
    parts.append("signing required" if security_mode & 2 else "signing enabled")
    hints = re.findall(rb"[A-Za-z][\x20-\x7e]{5,}", blob)
    if hints:
        parts.append("hints " + " ".join(h.decode("ascii") for h in hints))
    return ProtocolFacts(banner=" ".join(parts), service="smb")


#: NTLM target information kept: the server's NetBIOS and DNS names (not its clock).
_AV_NAMES = {2: "domain", 1: "computer", 4: "dns-domain", 3: "dns-computer"}


def parse_ntlm_challenge(data: bytes) -> str | None:
    """The NTLMSSP `CHALLENGE_MESSAGE` in an SMB2 `SESSION_SETUP` answer: `NTLM 6.1.0
    revision 15 domain SAMBA computer SMB ...` (the version the server claims, and its
    names; the challenge itself and the timestamp are left out)."""
    found = _smb2_message(data, _SMB2_SESSION_SETUP)
    if found is None:
        return None
    at = data.find(b"NTLMSSP\x00\x02\x00\x00\x00")
    if at < 0:
        return None
    challenge = data[at:]
    if len(challenge) < 56:
        return None
    flags = struct.unpack("<I", challenge[20:24])[0]
    parts = []
    if flags & 0x02000000:
        major, minor, build, revision = struct.unpack("<BBH3xB", challenge[48:56])
        parts.append(f"NTLM {major}.{minor}.{build} revision {revision}")
    info_length, _, info_offset = struct.unpack("<HHI", challenge[40:48])
    info = challenge[info_offset : info_offset + info_length]
    names: dict[int, str] = {}
    while len(info) >= 4:
        kind, size = struct.unpack("<HH", info[:4])
        if kind == 0:
            break
        if kind in _AV_NAMES:
            names[kind] = _printable(info[4 : 4 + size].decode("utf-16-le", "replace").encode())
        info = info[4 + size :]
    parts += [f"{_AV_NAMES[kind]} {names[kind]}" for kind in _AV_NAMES if names.get(kind)]
    return " ".join(parts) or "NTLM"


def ask_smb(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    """`NEGOTIATE`, then a `SESSION_SETUP` carrying only the NTLMSSP negotiation."""
    answer = converse(sock, SMB_NEGOTIATE, smb_complete, timeout)
    facts = parse_smb_negotiate(answer)
    if facts is None:
        return Answer(None, answer)
    with contextlib.suppress(*PROBE_ERRORS):
        challenge = parse_ntlm_challenge(converse(sock, SMB_SESSION_SETUP, smb_complete, timeout))
        if challenge:
            facts = ProtocolFacts(f"{facts.banner} {challenge}", facts.service)
    return Answer(facts, answer)


def ask_netbios_smb(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    """A NetBIOS session to `*SMBSERVER` (port 139), then SMB as on port 445."""
    answer = converse(sock, NETBIOS_SESSION_REQUEST, netbios_complete, timeout)
    said = _NETBIOS_ANSWERS.get(answer[0]) if answer else None
    if said is None:
        return Answer(None, answer)
    smb = ask_smb(sock, timeout, server_name) if said == "positive" else Answer(None, b"")
    session = f"NetBIOS session {said}"
    banner = f"{session}; {smb.facts.banner}" if smb.facts else session
    return Answer(ProtocolFacts(banner, "netbios"), answer)


# --- RDP --------------------------------------------------------------------------------------

#: Security protocols offered in the negotiation request: TLS, CredSSP, CredSSP with early
#: user authorization. A server picks one; only its TLS handshake follows (no credentials).
_RDP_OFFER = 0x01 | 0x02 | 0x08
#: A TPKT-framed X.224 Connection Request carrying an RDP Negotiation Request.
RDP_REQUEST = b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00" + struct.pack(
    "<BBHI", 1, 0, 8, _RDP_OFFER
)
_RDP_PROTOCOLS = {0: "standard RDP security", 1: "TLS", 2: "CredSSP", 4: "RDSTLS", 8: "CredSSP EX"}
_TLS_PROTOCOLS = frozenset({1, 2, 8})


def tpkt_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= struct.unpack("!H", data[2:4])[0]


def parse_rdp(data: bytes) -> tuple[ProtocolFacts, int | None] | None:
    """An X.224 Connection Confirm and its RDP Negotiation Response or Failure: `RDP
    connection confirm; TLS selected, flags 0x01`, with the protocol the server selected."""
    if len(data) < 11 or data[:2] != b"\x03\x00" or data[5] & 0xF0 != 0xD0:
        return None
    if not tpkt_complete(data):
        return None  # cut short: what is missing may be the negotiation
    negotiation = data[11:19]
    if len(negotiation) < 8:
        return ProtocolFacts("RDP connection confirm; standard RDP security", "rdp"), 0
    kind, flags, _size, value = struct.unpack("<BBHI", negotiation)
    if kind == 2:
        chosen = _RDP_PROTOCOLS.get(value, f"protocol 0x{value:x}")
        said = f"RDP connection confirm; {chosen} selected, flags 0x{flags:02x}"
        return ProtocolFacts(said, "rdp"), value
    if kind == 3:
        return ProtocolFacts(
            f"RDP connection confirm; negotiation failure 0x{value:x}", "rdp"
        ), None
    return None


def ask_rdp(sock: socket.socket, timeout: float, server_name: str | None) -> Answer:
    """The negotiation, then, when the server chose a protocol carried in TLS, the TLS
    handshake for its certificate; nothing of CredSSP is sent."""
    answer = converse(sock, RDP_REQUEST, tpkt_complete, timeout)
    parsed = parse_rdp(answer)
    if parsed is None:
        return Answer(None, answer)
    facts, selected = parsed
    session = None
    if selected in _TLS_PROTOCOLS:
        with contextlib.suppress(*PROBE_ERRORS), tls.handshake(sock, server_name, timeout) as inner:
            session = tls.session_facts(inner)
    return Answer(facts, answer, session)


#: Asks one protocol's first question on a connected socket, within a timeout per answer;
#: the server name (when the target was a name) goes into SNI where TLS follows.
Ask = Callable[[socket.socket, float, str | None], Answer]

#: The well-known ports of client-first protocols, and how each is asked.
PORT_PROBES: dict[int, Ask] = {
    53: ask_dns,
    139: ask_netbios_smb,
    445: ask_smb,
    3389: ask_rdp,
    5432: ask_postgres,
    6379: ask_redis,
    27017: ask_mongodb,
}
