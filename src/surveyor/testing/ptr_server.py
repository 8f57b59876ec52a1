"""A small authoritative DNS server for reverse lookups, for the tests and `bench.rdns`.

It answers PTR queries for the addresses of one network with `host-<c>-<d>.<domain>` names,
and NXDOMAIN for everything else, over UDP. To look like a real network's resolver it can
be made unkind, per address and deterministically (the same address always gets the same
treatment, so two resolvers measured against it meet the same faults):

- `delay_every=N`: every Nth address is answered only after `delay` seconds;
- `drop_first_every=N`: every Nth address loses its first query (a retry is answered);
- `silent_every=N`: every Nth address is never answered;
- `silent=True`: nothing is ever answered (an unreachable resolver).

It counts what it saw (`stats`), including the most queries it held unanswered at once. Run
it in a thread (`PtrServer(...).start()`), or as its own process so that it does not share
the measured program's interpreter: `python -m surveyor.testing.ptr_server --listen
127.0.0.153:53 --network 127.80.0.0/20 ...` prints `ready` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset


@dataclass
class Faults:
    """Which addresses the server treats badly (0 turns a fault off)."""

    delay_every: int = 0
    delay: float = 0.0
    drop_first_every: int = 0
    silent_every: int = 0
    silent: bool = False


@dataclass
class Stats:
    """What the server saw."""

    queries: int = 0
    answered: int = 0
    most_outstanding: int = 0
    #: queries per asked name (lower-case, no trailing dot)
    asked: Counter[str] = field(default_factory=Counter)


def ptr_name(address: str, domain: str) -> str:
    """The name the server gives `address`: host-<third>-<fourth>.<domain>."""
    octets = address.split(".")
    return f"host-{octets[2]}-{octets[3]}.{domain}"


class PtrServer:
    """Serves PTR records for `network` on (`host`, `port`) over UDP, from its own thread."""

    def __init__(
        self,
        network: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        domain: str = "rdns-test.test",
        faults: Faults | None = None,
    ) -> None:
        self.network = ipaddress.IPv4Network(network)
        self.domain = domain
        self.faults = faults or Faults()
        self.stats = Stats()
        self._address = (host, port)
        self._outstanding = 0
        self._loop = asyncio.new_event_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port once started)."""
        return self._address

    def start(self) -> PtrServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._transport is not None:
                self._transport.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def __enter__(self) -> PtrServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expected(self) -> dict[str, str]:
        """Every address of the network that the server will ever answer, with its name."""
        return {
            str(address): ptr_name(str(address), self.domain)
            for index, address in enumerate(self.network)
            if not self._never_answered(index)
        }

    async def _listen(self) -> None:
        server = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                server._received(data, addr)

        transport, _ = await self._loop.create_datagram_endpoint(Protocol, local_addr=self._address)
        self._transport = transport
        self._address = transport.get_extra_info("sockname")[:2]

    def _never_answered(self, index: int) -> bool:
        every = self.faults.silent_every
        return self.faults.silent or bool(every and index % every == every - 1)

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        if not query.question:
            return
        question = query.question[0]
        asked = question.name.to_text(omit_final_dot=True).lower()
        self.stats.queries += 1
        self.stats.asked[asked] += 1
        index = self._index_of(question.name)
        if index is not None and self._never_answered(index):
            return
        if index is not None and self._drops_first(index) and self.stats.asked[asked] == 1:
            return
        response = self._response(query, index)
        delay = self._delay_of(index)
        if delay <= 0:
            self._send(response, addr)
            return
        self._outstanding += 1
        self.stats.most_outstanding = max(self.stats.most_outstanding, self._outstanding)
        self._loop.call_later(delay, self._send_late, response, addr)

    def _send_late(self, response: dns.message.Message, addr: tuple[str, int]) -> None:
        self._outstanding -= 1
        self._send(response, addr)

    def _send(self, response: dns.message.Message, addr: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self.stats.answered += 1
            self._transport.sendto(response.to_wire(), addr)

    def _index_of(self, name: dns.name.Name) -> int | None:
        """The position in the network of the address a PTR name asks about, or None."""
        try:
            address = ipaddress.ip_address(dns.reversename.to_address(name))
        except (dns.exception.DNSException, ValueError):
            return None
        if address not in self.network:
            return None
        return int(address) - int(self.network.network_address)

    def _drops_first(self, index: int) -> bool:
        every = self.faults.drop_first_every
        return bool(every and index % every == every // 2)

    def _delay_of(self, index: int | None) -> float:
        every = self.faults.delay_every
        if index is None or not every or index % every != 1 % every:
            return 0.0
        return self.faults.delay

    def _response(self, query: dns.message.Message, index: int | None) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if index is None or question.rdtype != dns.rdatatype.PTR:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        address = str(self.network.network_address + index)
        target = dns.name.from_text(ptr_name(address, self.domain))
        response.answer.append(
            dns.rrset.from_text(
                question.name, 300, dns.rdataclass.IN, dns.rdatatype.PTR, target.to_text()
            )
        )
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.153:53", help="HOST:PORT")
    parser.add_argument("--network", required=True)
    parser.add_argument("--domain", default="rdns-test.test")
    parser.add_argument("--delay-every", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--drop-first-every", type=int, default=0)
    parser.add_argument("--silent-every", type=int, default=0)
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    faults = Faults(args.delay_every, args.delay, args.drop_first_every, args.silent_every)
    faults.silent = args.silent
    server = PtrServer(args.network, host=host, port=int(port), domain=args.domain, faults=faults)
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or exits)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
