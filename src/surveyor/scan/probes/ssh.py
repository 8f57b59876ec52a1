"""SSH algorithm lists: the server's KEXINIT, read after its identification string.

On a connection whose greeting was an SSH identification string, the probe sends its own
(`CLIENT_ID`) and reads the server's first binary packet, its key exchange offer (RFC 4253
§7.1), which is sent in the clear before any key is agreed. It answers nothing: the server
then waits for our offer, and the probe closes the connection; nothing is ever negotiated,
no key exchanged, no login tried. The read is bounded by `MAX_PACKET` bytes and the
greeting wait (a real server answers within a round trip).

`hassh` is the MD5 of the server's key exchange, encryption, MAC and compression lists
(server to client), joined by `;`: the HASSH-style hash that tells SSH implementations and
their configurations apart whatever their version strings say.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from typing import Any, Final

from surveyor import __version__

CLIENT_ID: Final = f"SSH-2.0-Surveyor_{__version__}\r\n".encode()
#: RFC 4253 §6.1: the largest packet an implementation must accept.
MAX_PACKET: Final = 35_000
SSH_MSG_KEXINIT: Final = 20
#: The name-lists of a KEXINIT, in order (RFC 4253 §7.1).
LISTS: Final = (
    "kex",
    "host_key",
    "ciphers_client_to_server",
    "ciphers",
    "macs_client_to_server",
    "macs",
    "compression_client_to_server",
    "compression",
    "languages_client_to_server",
    "languages",
)
#: The lists a service entry keeps (server to client, where the direction matters).
KEPT: Final = ("kex", "host_key", "ciphers", "macs", "compression")


def after_identification(greeting: bytes) -> bytes | None:
    """The bytes a server sent after its identification line (some send their KEXINIT at
    once); None when the greeting holds no complete `SSH-` line."""
    at = greeting.find(b"SSH-")
    if at < 0:
        return None
    end = greeting.find(b"\n", at)
    return greeting[end + 1 :] if end >= 0 else None


def read_kexinit(sock: socket.socket, already: bytes, timeout: float) -> dict[str, Any] | None:
    """Send our identification and read the server's KEXINIT; its lists and `hassh`, or
    None when what came is no KEXINIT (a server that closed, or talks another protocol)."""
    sock.settimeout(timeout)
    sock.sendall(CLIENT_ID)
    data = already
    while True:
        need = 4096
        if len(data) >= 5:
            length = struct.unpack_from("!I", data)[0]
            if not 6 <= length <= MAX_PACKET:
                return None
            if len(data) >= 4 + length:
                return parse_kexinit(data[: 4 + length])
            need = 4 + length - len(data)
        more = sock.recv(need)
        if not more:
            return None
        data += more


def parse_kexinit(packet: bytes) -> dict[str, Any] | None:
    """The lists of an unencrypted SSH binary packet holding a KEXINIT, and their `hassh`."""
    if len(packet) < 6:
        return None
    length, padding = struct.unpack_from("!IB", packet)
    payload = packet[5 : 4 + length - padding]
    if len(packet) < 4 + length or not payload or payload[0] != SSH_MSG_KEXINIT:
        return None
    at = 1 + 16  # the message number, then a random cookie
    lists: dict[str, str] = {}
    for name in LISTS:
        if at + 4 > len(payload):
            return None
        size = struct.unpack_from("!I", payload, at)[0]
        at += 4
        if at + size > len(payload):
            return None
        lists[name] = payload[at : at + size].decode("ascii", errors="replace")
        at += size
    joined = ";".join(lists[name] for name in ("kex", "ciphers", "macs", "compression"))
    return {
        "hassh": hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest(),
        **{name: lists[name] for name in KEPT},
    }
