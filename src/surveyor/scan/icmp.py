"""ICMP echo for host discovery (IPv4), when the process may open a raw socket.

Only the privileged can send ICMP echo from a raw socket; `EchoPinger.open` is the privilege
check, returning None when it is not allowed, and the scan then relies on TCP probes alone.
Replies are matched to our requests by the echo identifier, and to hosts by source address.
"""

from __future__ import annotations

import socket
import struct

ECHO_REQUEST = 8
ECHO_REPLY = 0
PAYLOAD = b"surveyor"
_HEADER = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int) -> bytes:
    """An ICMP echo request carrying our identifier and a sequence number."""
    unsigned = _HEADER.pack(ECHO_REQUEST, 0, 0, identifier, sequence) + PAYLOAD
    return _HEADER.pack(ECHO_REQUEST, 0, checksum(unsigned), identifier, sequence) + PAYLOAD


def echo_reply_identifier(packet: bytes) -> int | None:
    """The identifier of an IPv4 packet holding an ICMP echo reply; None for anything else."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header_length = (packet[0] & 0x0F) * 4
    icmp = packet[header_length : header_length + _HEADER.size]
    if len(icmp) < _HEADER.size:
        return None
    kind, _code, _sum, identifier, _sequence = _HEADER.unpack(icmp)
    return identifier if kind == ECHO_REPLY else None


class EchoPinger:
    """Sends echo requests and collects the addresses that answered ours, without blocking."""

    def __init__(self, sock: socket.socket, identifier: int) -> None:
        self._sock = sock
        self._identifier = identifier & 0xFFFF
        self._sequence = 0

    @classmethod
    def open(cls, identifier: int) -> EchoPinger | None:
        """A pinger on a raw ICMP socket, or None when the process lacks the privilege."""
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except OSError:
            return None
        sock.setblocking(False)
        return cls(sock, identifier)

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, address: str) -> bool:
        """Send one echo request; False if the network refused it."""
        self._sequence = (self._sequence + 1) & 0xFFFF
        try:
            self._sock.sendto(echo_request(self._identifier, self._sequence), (address, 0))
        except OSError:
            return False
        return True

    def answered(self) -> list[str]:
        """Source addresses of the echo replies to our requests received so far."""
        sources: list[str] = []
        while True:
            try:
                packet, (source, _port) = self._sock.recvfrom(2048)
            except OSError:  # nothing more to read (or the socket failed): done for now
                return sources
            if echo_reply_identifier(packet) == self._identifier:
                sources.append(source)

    def close(self) -> None:
        self._sock.close()
