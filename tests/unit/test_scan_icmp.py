"""ICMP echo packets for host discovery: built with a valid checksum, replies recognised."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.icmp import ECHO_REPLY, checksum, echo_reply_identifier, echo_request


def ipv4_packet(icmp: bytes, header_words: int = 5) -> bytes:
    header = bytes([0x40 | header_words]) + bytes(header_words * 4 - 1)
    return header + icmp


def test_an_echo_request_carries_our_identifier_and_sums_to_zero() -> None:
    packet = echo_request(0x1234, 7)
    kind, code, _sum, identifier, sequence = struct.unpack("!BBHHH", packet[:8])
    assert (kind, code, identifier, sequence) == (8, 0, 0x1234, 7)
    assert checksum(packet) == 0


def test_an_echo_reply_is_recognised_by_its_identifier() -> None:
    reply = bytes([ECHO_REPLY]) + echo_request(0x4321, 1)[1:]
    assert echo_reply_identifier(ipv4_packet(reply)) == 0x4321
    assert echo_reply_identifier(ipv4_packet(reply, header_words=6)[:-4] + b"xxxx") is not None


def test_requests_and_other_messages_are_not_replies() -> None:
    assert echo_reply_identifier(ipv4_packet(echo_request(1, 1))) is None
    unreachable = struct.pack("!BBHHH", 3, 1, 0, 0, 0)
    assert echo_reply_identifier(ipv4_packet(unreachable)) is None
    assert echo_reply_identifier(b"\x60" + bytes(40)) is None


@given(st.binary(max_size=100))
def test_any_bytes_are_a_reply_or_not_without_an_error(data: bytes) -> None:
    echo_reply_identifier(data)


@given(st.binary(max_size=200))
def test_a_packet_with_its_checksum_sums_to_zero(data: bytes) -> None:
    padded = data + b"\0" * (len(data) % 2)
    assert checksum(padded + struct.pack("!H", checksum(padded))) == 0
