"""SSH KEXINIT packets: their algorithm lists and HASSH-style hash (scan/probes/ssh.py)."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.probes.ssh import after_identification, parse_kexinit

LISTS = [
    "curve25519-sha256,diffie-hellman-group14-sha256",
    "ssh-ed25519",
    "aes128-ctr",
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
    "hmac-sha2-256",
    "umac-128-etm@openssh.com",
    "none",
    "none,zlib@openssh.com",
    "",
    "",
]


def kexinit_packet(lists: list[str], padding: int = 6) -> bytes:
    payload = bytes([20]) + bytes(range(16))
    for text in lists:
        payload += struct.pack("!I", len(text)) + text.encode()
    payload += b"\0" + bytes(4)  # first_kex_packet_follows, reserved
    return struct.pack("!IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)


def test_the_server_to_client_lists_are_kept_and_hashed_as_hassh_joins_them() -> None:
    found = parse_kexinit(kexinit_packet(LISTS))
    assert found is not None
    assert found["kex"] == LISTS[0]
    assert found["host_key"] == LISTS[1]
    # the server-to-client lists, not the client-to-server ones before them
    assert (found["ciphers"], found["macs"], found["compression"]) == (LISTS[3], LISTS[5], LISTS[7])
    joined = f"{LISTS[0]};{LISTS[3]};{LISTS[5]};{LISTS[7]}"
    assert found["hassh"] == hashlib.md5(joined.encode()).hexdigest()  # noqa: S324


def test_what_is_no_whole_kexinit_is_none() -> None:
    packet = kexinit_packet(LISTS)
    assert parse_kexinit(packet[:-12]) is None  # cut short
    assert parse_kexinit(packet[:5] + b"\x15" + packet[6:]) is None  # another message
    assert parse_kexinit(kexinit_packet(LISTS[:4])) is None  # too few lists
    assert parse_kexinit(b"") is None


def test_bytes_after_the_identification_line_are_the_start_of_the_packet() -> None:
    packet = kexinit_packet(LISTS)
    assert after_identification(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + packet[:9]) == packet[:9]
    assert after_identification(b"a notice first\r\nSSH-2.0-dropbear\r\n") == b""
    assert after_identification(b"SSH-2.0-cut") is None
    assert after_identification(b"220 mail ready\r\n") is None


@given(st.binary(max_size=300))
def test_any_bytes_are_a_kexinit_or_not_without_an_error(data: bytes) -> None:
    parse_kexinit(data)
