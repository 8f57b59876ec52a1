"""A directory server that answers from a script, for what slapd will not send: entries whose
values are not UTF-8, attribute names in odd cases, repeated or valueless attributes, values
long enough for every BER length form. It speaks just enough LDAP over a real socket on
127.0.0.1 for the connector: a simple bind, paged subtree searches (the page size and cookie
the client asks for), and an unbind. Requests are decoded with ldap3's own ASN.1 definitions;
answers are BER written here byte by byte, so the entries reach the client exactly as given.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ldap3.protocol.rfc4511 import LDAPMessage
from pyasn1.codec.ber import decoder

PAGED_RESULTS_OID = b"1.2.840.113556.1.4.319"

#: One entry as it goes on the wire: its DN, and its attributes in order, each a type and
#: its values (any bytes).
ScriptedEntry = tuple[bytes, Sequence[tuple[bytes, Sequence[bytes]]]]


def tlv(tag: int, content: bytes) -> bytes:
    """A BER element, in the shortest length form (short, then one to three length bytes)."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _integer(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def message(message_id: int, op: bytes, controls: bytes = b"") -> bytes:
    return tlv(0x30, tlv(0x02, _integer(message_id)) + op + controls)


def entry_op(entry: ScriptedEntry) -> bytes:
    dn, attributes = entry
    encoded = b"".join(
        tlv(0x30, tlv(0x04, name) + tlv(0x31, b"".join(tlv(0x04, v) for v in values)))
        for name, values in attributes
    )
    return tlv(0x64, tlv(0x04, dn) + tlv(0x30, encoded))


def _result(tag: int, code: int = 0, text: bytes = b"") -> bytes:
    return tlv(tag, tlv(0x0A, bytes([code])) + tlv(0x04, b"") + tlv(0x04, text))


def _paged_done(cookie: bytes) -> bytes:
    value = tlv(0x30, tlv(0x02, b"\x00") + tlv(0x04, cookie))
    control = tlv(0x30, tlv(0x04, PAGED_RESULTS_OID) + tlv(0x04, value))
    return tlv(0xA0, control)


@dataclass
class ScriptedDirectory:
    """Where the scripted server listens, and what it was asked."""

    server: str
    #: The page size of every search request received, in order.
    page_sizes: list[int] = field(default_factory=list)


def _read_message(connection: socket.socket, pending: bytearray) -> bytes | None:
    while True:
        if len(pending) >= 2:
            first = pending[1]
            if first < 0x80:
                size = 2 + first
            else:
                count = first & 0x7F
                size = 2 + count + int.from_bytes(pending[2 : 2 + count], "big")
            if len(pending) >= size:
                data = bytes(pending[:size])
                del pending[:size]
                return data
        chunk = connection.recv(65536)
        if not chunk:
            return None
        pending += chunk


def _paged_request(request: LDAPMessage) -> tuple[int, bytes]:
    """(page size, cookie) of a search request's paged results control."""
    for control in request["controls"]:
        if bytes(control["controlType"]) == PAGED_RESULTS_OID:
            value, _ = decoder.decode(bytes(control["controlValue"]))
            return int(value[0]), bytes(value[1])
    raise AssertionError("the connector searched without the paged results control")


def _serve(
    connection: socket.socket,
    entries: Sequence[bytes],
    references: Sequence[bytes],
    directory: ScriptedDirectory,
) -> None:
    pending = bytearray()
    with connection:
        while True:
            data = _read_message(connection, pending)
            if data is None:
                return
            request, _ = decoder.decode(data, asn1Spec=LDAPMessage())
            message_id = int(request["messageID"])
            operation = request["protocolOp"].getName()
            if operation == "bindRequest":
                connection.sendall(message(message_id, _result(0x61)))
            elif operation == "searchRequest":
                size, cookie = _paged_request(request)
                directory.page_sizes.append(size)
                start = int(cookie.decode()) if cookie else 0
                end = min(len(entries), start + size)
                answer = b"".join(message(message_id, op) for op in entries[start:end])
                if start == 0:
                    answer += b"".join(message(message_id, ref) for ref in references)
                following = str(end).encode() if end < len(entries) else b""
                done = message(message_id, _result(0x65), _paged_done(following))
                connection.sendall(answer + done)
            else:  # unbind, or anything else: the end of the conversation
                return


@contextmanager
def scripted_directory(
    entries: Sequence[ScriptedEntry], references: Sequence[str] = ()
) -> Iterator[ScriptedDirectory]:
    """Serves `entries` (and, on the first page, continuation references to `references`)
    to every search, whatever its base and filter; yields where it listens."""
    ops = [entry_op(entry) for entry in entries]
    refs = [tlv(0x73, tlv(0x04, url.encode())) for url in references]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    directory = ScriptedDirectory(server=f"127.0.0.1:{listener.getsockname()[1]}")
    threads: list[threading.Thread] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=_serve, args=(connection, ops, refs, directory), daemon=True
            )
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, name="scripted-ldap", daemon=True)
    acceptor.start()
    try:
        yield directory
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(timeout=5)
        for thread in threads:
            thread.join(timeout=5)
