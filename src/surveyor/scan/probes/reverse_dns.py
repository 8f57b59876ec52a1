"""Reverse DNS of a scan's hosts: asynchronous, bounded, cached, and within a time budget.

`ReverseLookups` runs every lookup of one scan on one event loop (in a thread of its own),
so hundreds can be in flight without a thread each:

- **Bounded concurrency**: at most `concurrency` lookups are asked at once.
- **Cached per scan**: an address is asked once; asking again shares the first answer.
- **Per lookup**, at most `timeout`; an unanswered query is sent again after a short wait
  that doubles, and an answer to any of the copies counts, so a slow server is not asked
  into the ground and a dropped packet costs a fraction of the timeout.
- **A budget**: once the scan has nothing else left to do, it calls `expire_after(budget)`,
  and every lookup still open then answers "no names" when the budget runs out. Names can
  never make a scan wait longer than that.
- **An unreachable resolver** (many lookups timed out and no server ever answered) is given
  up on: the lookups after that answer at once.

Where the names come from (`NameSource`):
- `DnsSource`: the hosts file first (as the system's resolver does), then DNS over UDP to
  the given servers, or the ones in /etc/resolv.conf. One socket per address family carries
  every query (`_DnsSocket`); answers are matched by id, sender and question. A truncated
  answer is asked again over TCP.
- `ThreadedSource`: any blocking `Resolver` (the system's `gethostbyaddr` where no name
  server is configured; the tests' fakes), on a few daemon threads.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

from surveyor.scan.daemon_pool import DaemonPool
from surveyor.scan.probes.rdns import Resolver, SystemResolver, clean_names

DNS_PORT = 53
#: the first wait before a query is sent again; it doubles after each copy
FIRST_RESEND = 0.4
#: lookups that timed out, with no answer from any server ever, before the servers count as
#: unreachable
UNREACHABLE_AFTER = 32


class NameSource(Protocol):
    """Where reverse lookups get their names; `reverse` may raise OSError or DNSException."""

    async def reverse(self, address: str) -> list[str]: ...

    @property
    def answered(self) -> bool:
        """Whether any answer has ever come back (an unreachable source never answers)."""
        ...

    def close(self) -> None: ...


def parse_dns_server(text: str) -> tuple[str, int]:
    """A name server given as `ADDRESS`, `ADDRESS:PORT`, `[IPV6]:PORT` or `IPV6`; ValueError
    with a message a user can act on otherwise."""
    given = text.strip()
    host, port = given, DNS_PORT
    if given.startswith("["):
        host, _, rest = given[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected [IPV6]:PORT")
            port = _port(rest[1:], text)
    elif given.count(":") == 1:
        host, _, port_text = given.partition(":")
        port = _port(port_text, text)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(
            f"{text!r} is not a name server address (IPv4 or IPv6, with an optional :PORT)"
        ) from None


def _port(text: str, given: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{given!r}: the port must be a number from 1 to 65535")
    return int(text)


def system_servers() -> list[tuple[str, int]]:
    """The name servers of /etc/resolv.conf; empty where there are none."""
    try:
        resolver = dns.resolver.Resolver(configure=True)
    except (dns.resolver.NoResolverConfiguration, OSError):
        return []
    return [(str(server), resolver.port) for server in resolver.nameservers]


def read_hosts_file(path: Path) -> dict[str, list[str]]:
    """Address → names from a hosts file, as the system resolver answers a reverse lookup:
    the first line naming the address gives its canonical name and aliases."""
    names: dict[str, list[str]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return names
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        names.setdefault(address, fields[1:])
    return names


class ReverseLookups:
    """The reverse lookups of one scan (see the module's docstring)."""

    def __init__(
        self,
        source: NameSource,
        *,
        timeout: float,
        concurrency: int,
    ) -> None:
        self._source = source
        self._timeout = timeout
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._lock = threading.Lock()
        self._cache: dict[str, Future[list[str]]] = {}
        self._expired = asyncio.Event()
        self._timeouts = 0
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="surveyor-rdns", daemon=True
        )
        self._thread.start()

    def lookup(self, address: str) -> Future[list[str]]:
        """The names of `address` (lower-case, no trailing dot, each once), once known; no
        names where there are none, the lookup failed, or the budget ran out."""
        with self._lock:
            future = self._cache.get(address)
            if future is None:
                if self._closed:
                    future = Future()
                    future.cancel()
                    return future
                future = self._run(self._lookup(address))
                self._cache[address] = future
            return future

    def expire_after(self, budget: float) -> None:
        """Give every open lookup at most `budget` seconds more (the scan is otherwise done)."""
        self._loop.call_soon_threadsafe(self._loop.call_later, max(0.0, budget), self._expired.set)

    def close(self) -> None:
        """Drop every open lookup and stop; never waits long."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._cache.values())
        for future in pending:
            future.cancel()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._source.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            # one more turn, for the callbacks that closing the sockets scheduled
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def _run(self, work: Coroutine[Any, Any, list[str]]) -> Future[list[str]]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    async def _lookup(self, address: str) -> list[str]:
        if self._expired.is_set() or self._given_up():
            return []
        lookup = asyncio.ensure_future(self._bounded(address))
        expiry = asyncio.ensure_future(self._expired.wait())
        try:
            done, _ = await asyncio.wait({lookup, expiry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            expiry.cancel()
        if lookup not in done:
            lookup.cancel()
            return []
        return lookup.result()

    async def _bounded(self, address: str) -> list[str]:
        async with self._semaphore:
            if self._given_up():
                return []
            try:
                names = await asyncio.wait_for(self._source.reverse(address), self._timeout)
            except TimeoutError:
                self._timeouts += 1
                return []
            except (OSError, UnicodeError, ValueError, dns.exception.DNSException):
                return []
        return clean_names(names)

    def _given_up(self) -> bool:
        return self._timeouts >= UNREACHABLE_AFTER and not self._source.answered


class ThreadedSource:
    """A blocking `Resolver` run on `threads` daemon threads."""

    def __init__(self, resolver: Resolver, threads: int) -> None:
        self._resolver = resolver
        self._pool = DaemonPool(threads, "surveyor-dns")
        self._answered = False

    @property
    def answered(self) -> bool:
        return self._answered

    async def reverse(self, address: str) -> list[str]:
        try:
            names = await asyncio.wrap_future(self._pool.submit(self._resolver.reverse, address))
        except OSError:
            self._answered = True  # "unknown host" is an answer too
            raise
        self._answered = True
        return names

    def close(self) -> None:
        self._pool.close()


class DnsSource:
    """The hosts file, then PTR queries to `servers` over UDP (see the module's docstring)."""

    def __init__(
        self,
        servers: list[tuple[str, int]],
        *,
        hosts: dict[str, list[str]] | None = None,
        first_resend: float = FIRST_RESEND,
    ) -> None:
        if not servers:
            raise ValueError("no name server to ask")
        self._servers = servers
        self._hosts = hosts or {}
        self._first_resend = first_resend
        self._sockets: dict[int, asyncio.Future[_DnsSocket]] = {}
        self._answered = False

    @property
    def answered(self) -> bool:
        return self._answered

    async def reverse(self, address: str) -> list[str]:
        known = self._hosts.get(address)
        if known is not None:
            return list(known)
        name = dns.reversename.from_address(address)
        response = await self._ask(name)
        if response.flags & dns.flags.TC:
            host, port = self._servers[0]
            query = dns.message.make_query(name, dns.rdatatype.PTR)
            response = await dns.asyncquery.tcp(query, host, port=port)
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return []
        return [
            rdata.target.to_text()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.PTR
            for rdata in rrset
        ]

    async def _ask(self, name: dns.name.Name) -> dns.message.Message:
        """Send the query, and again after a wait that doubles, round the servers; the first
        answer to any copy wins (the caller's timeout ends the asking)."""
        query = dns.message.make_query(name, dns.rdatatype.PTR)
        waiting: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()
        placed: list[tuple[_DnsSocket, int]] = []
        try:
            wait, attempt = self._first_resend, 0
            while True:
                server = self._servers[attempt % len(self._servers)]
                sock = await self._socket_for(server[0])
                placed.append((sock, sock.send(query, server, waiting)))
                try:
                    response = await asyncio.wait_for(asyncio.shield(waiting), wait)
                except TimeoutError:
                    wait, attempt = wait * 2, attempt + 1
                    continue
                self._answered = True
                return response
        finally:
            for sock, query_id in placed:
                sock.forget(query_id)

    async def _socket_for(self, host: str) -> _DnsSocket:
        family = ipaddress.ip_address(host).version
        opening = self._sockets.get(family)
        if opening is None:  # the first lookup opens it; the ones meanwhile wait for it
            opening = asyncio.ensure_future(_DnsSocket.open(family))
            self._sockets[family] = opening
        return await asyncio.shield(opening)

    def close(self) -> None:
        for opening in self._sockets.values():
            if opening.done() and not opening.cancelled() and opening.exception() is None:
                opening.result().close()
            else:
                opening.cancel()
        self._sockets.clear()


class _DnsSocket(asyncio.DatagramProtocol):
    """One UDP socket for many queries, matched to their answers by id, sender and question."""

    def __init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._waiting: dict[
            int, tuple[dns.message.Message, tuple[str, int], asyncio.Future[dns.message.Message]]
        ] = {}
        self._random = random.SystemRandom()

    @classmethod
    async def open(cls, family: int) -> _DnsSocket:
        loop = asyncio.get_running_loop()
        inet = socket.AF_INET if family == 4 else socket.AF_INET6
        _, protocol = await loop.create_datagram_endpoint(cls, family=inet)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def send(
        self,
        query: dns.message.Message,
        server: tuple[str, int],
        answer: asyncio.Future[dns.message.Message],
    ) -> int:
        """Send a copy of `query` with an id of its own; its answer resolves `answer`."""
        query_id = self._free_id()
        query.id = query_id
        self._waiting[query_id] = (query, server, answer)
        if self._transport is not None:
            self._transport.sendto(query.to_wire(), server)
        return query_id

    def forget(self, query_id: int) -> None:
        self._waiting.pop(query_id, None)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) < 2:
            return
        entry = self._waiting.get(int.from_bytes(data[:2], "big"))
        if entry is None:
            return
        query, server, answer = entry
        if (str(ipaddress.ip_address(addr[0])), addr[1]) != server or answer.done():
            return
        try:
            response = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return
        if response.question != query.question:
            return
        answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        """ICMP unreachable and the like: the copy is lost, the resend or timeout follows."""

    def _free_id(self) -> int:
        while True:
            query_id = self._random.randrange(65536)
            if query_id not in self._waiting:
                return query_id

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def lookups_for(
    resolver: Resolver | None,
    *,
    servers: list[tuple[str, int]],
    timeout: float,
    concurrency: int,
    threads: int,
    hosts_file: Path = Path("/etc/hosts"),
) -> ReverseLookups:
    """The scan's reverse lookups: through `resolver` when one is given (tests), else DNS to
    `servers` (or /etc/resolv.conf's) after the hosts file, else the system's resolver."""
    source: NameSource
    if resolver is not None:
        source = ThreadedSource(resolver, threads)
    else:
        asked = servers or system_servers()
        if asked:
            source = DnsSource(asked, hosts=read_hosts_file(hosts_file))
        else:
            source = ThreadedSource(SystemResolver(), threads)
    return ReverseLookups(source, timeout=timeout, concurrency=concurrency)
