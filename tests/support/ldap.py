"""The LDAP side of the connector tests: configs for the private slapd, a directory server
that accepts connections and never answers, and a small DNS server for name resolution."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from surveyor.connectors.base import ConnectorConfig
from surveyor.testing.slapd import SlapdServer

#: Computers in the session's slapd: more than two pages of the connector's 500.
LAB_COMPUTER_COUNT = 1234


def ldap_config(
    slapd: SlapdServer,
    *,
    server: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
    stopped: threading.Event | None = None,
    **options: Any,
) -> ConnectorConfig:
    """A config for the session's slapd, bound as cn=svc,dc=lab, searching dc=lab unless the
    options say otherwise."""
    return ConnectorConfig(
        server=server or slapd.server,
        options={"base_dn": slapd.base_dn, **options},
        credential={
            "bind_dn": slapd.bind_dn,
            "password": slapd.password if password is None else password,
        },
        timeout=timeout,
        stopped=stopped or threading.Event(),
    )


@dataclass
class SilentServer:
    """A directory server that accepts connections and never answers a byte."""

    port: int
    #: Set once a client has connected.
    connected: threading.Event = field(default_factory=threading.Event)


@contextmanager
def silent_server(host: str = "127.0.0.2") -> Iterator[SilentServer]:
    """A server that stalls: it accepts every connection and keeps it open, silent."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(8)
    server = SilentServer(port=int(listener.getsockname()[1]))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return
            server.connected.set()

    thread = threading.Thread(target=accept, name="silent-ldap", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()


@contextmanager
def dns_server(answers: Mapping[str, str], host: str = "127.0.0.1") -> Iterator[str]:
    """A UDP DNS server answering A queries for the names in `answers` (name -> IPv4) and
    NXDOMAIN for every other name; yields its `host:port`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    known = {name.lower().rstrip(".") + ".": address for name, address in answers.items()}
    closing = threading.Event()

    def serve() -> None:
        while not closing.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                return
            if closing.is_set():
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().lower()
            if name not in known:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", known[name]))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, name="test-dns", daemon=True)
    thread.start()
    try:
        yield f"{host}:{sock.getsockname()[1]}"
    finally:
        closing.set()
        sock.sendto(b"", sock.getsockname())  # wakes the thread out of recvfrom
        thread.join(timeout=5)
        sock.close()
