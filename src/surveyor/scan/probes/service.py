"""Describe one open port: which probes to try, in which order, and the service entry they fill.

A port is probed the way its number suggests (TLS first on 443, HTTP first on 8080), and any
other port the way that tells the protocols apart cheapest: wait for a server-first greeting,
then try plain HTTP, then a TLS handshake. Each step opens its own connection; the first step
that learns something ends the description. On a port not known for a server-first protocol
the greeting is given a short wait, and then the HTTP request goes out on the same
connection: a greeting that comes late then answers the request, and names the service just
as well.

On the well-known port of a client-first protocol (PostgreSQL, Redis, SMB, DNS: see
`protocols.PORT_PROBES`) the banner probe sends that protocol's own first message at once,
instead of waiting for a greeting that never comes. A port that stays silent, to that
message or to the HTTP request, is given only a short second chance (`ProbeTimeouts.quiet`
for each later step): a web or TLS server answers at once what it cannot read, so silence
is what a silent port keeps giving, and it should not cost every full timeout in turn.
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

from surveyor.core.scan_params import Probe
from surveyor.scan.probes import banner, http, protocols, ssh, tls
from surveyor.scan.records import open_port_entry

#: Opens a TCP connection with a timeout; tests may pass their own.
Dial = Callable[[str, int, float], socket.socket]

TLS_PORTS = frozenset(
    {443, 465, 636, 853, 990, 992, 993, 994, 995, 2376, 4443, 5061, 5986, 6443, 8443, 8883, 9443}
    | {10250}
)
HTTP_PORTS = frozenset(
    {80, 81, 591, 2375, 3000, 5000, 5984, 7001, 8000, 8008, 8080, 8081, 8088, 8500, 8888}
    | {9000, 9090, 9200, 10000}
)
#: TLS ports whose protocol greets first (SMTPS, FTPS, IMAPS, POP3S, ...).
SERVER_FIRST_TLS_PORTS = frozenset({465, 990, 992, 993, 994, 995})
#: Plain ports whose protocol greets first (FTP, SSH, Telnet, SMTP, POP3, NNTP, IMAP, MySQL,
#: VNC): the greeting is waited for in full before anything is asked.
SERVER_FIRST_PORTS = frozenset(
    {21, 22, 23, 25, 110, 119, 143, 220, 587, 2222, 2525, 3306, 5900, 5901}
)
_SECURE_NAMES = {"smtp": "smtps", "ftp": "ftps", "imap": "imaps", "pop3": "pop3s"}
_PROBE_ERRORS = (OSError, ssl.SSLError, ValueError, struct.error)
#: A TLS record header (alert or handshake, any version): what a TLS server says to plain text.
_TLS_RECORD = re.compile(rb"\A[\x15\x16]\x03[\x00-\x04]")
_WANTS_TLS = re.compile(rb"HTTPS port|HTTP request to an HTTPS server|SSL", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """Where a service listens; `hostname` (when the target was a name) goes into SNI and Host."""

    address: str
    port: int
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeTimeouts:
    #: the wait for a greeting on a port known for a server-first protocol
    banner: float = 2.0
    #: connect, TLS handshake and HTTP exchange, each
    exchange: float = 3.0
    #: the wait for a greeting on any other port, before the HTTP request is sent
    greeting: float = 0.5
    #: the HTTP exchange and TLS handshake on a port that stayed silent so far (no byte,
    #: no close) to the protocol message of its port, or to the HTTP request
    quiet: float = 1.0


def open_connection(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def probe_order(port: int, probes: frozenset[Probe]) -> list[Probe]:
    """The probes worth trying on a port, most likely first."""
    if port in TLS_PORTS:
        order = [Probe.TLS, Probe.BANNER, Probe.HTTP]
    elif port in HTTP_PORTS:
        order = [Probe.HTTP, Probe.TLS]
    else:
        # plain HTTP before TLS: a TLS server refuses a request at once, while many web
        # servers wait for the rest of a TLS hello until their own timeout
        order = [Probe.BANNER, Probe.HTTP, Probe.TLS]
    return [probe for probe in order if probe in probes]


def describe_port(
    target: ServiceTarget,
    probes: frozenset[Probe],
    timeouts: ProbeTimeouts,
    dial: Dial = open_connection,
) -> dict[str, Any]:
    """Run the probes on an open port and return its service entry (SPEC §7)."""
    port = _PortProbes(open_port_entry(target.port), target, probes, timeouts, dial)
    order = probe_order(target.port, probes)
    ask = asks_after_greeting(target.port, probes)
    first_message = protocols.PORT_PROBES.get(target.port) if Probe.BANNER in probes else None
    if first_message is not None:
        try:
            if port.protocol_step(first_message):
                return port.entry
        except _PROBE_ERRORS:
            pass
        # the protocol step listened as long as a greeting wait would have
        order, ask = [p for p in order if p is not Probe.BANNER], False
        if port.tls_record:
            order = [p for p in order if p is Probe.TLS]
    if ask:
        order.remove(Probe.HTTP)  # the banner step asks
    steps: dict[Probe, Callable[[], bool]] = {
        Probe.BANNER: lambda: port.banner_step(ask=ask),
        Probe.TLS: port.tls_step,
        Probe.HTTP: port.http_step,
    }
    for probe in order:
        try:
            if steps[probe]():
                break
        except _PROBE_ERRORS:
            continue
    return port.entry


def asks_after_greeting(port: int, probes: frozenset[Probe]) -> bool:
    """Whether the greeting gets only a short wait before the HTTP request follows on the
    same connection: on ports tried greeting first that are not known to greet first."""
    order = probe_order(port, probes)
    return (
        bool(order)
        and order[0] is Probe.BANNER
        and Probe.HTTP in order
        and port not in SERVER_FIRST_PORTS
    )


@dataclass
class _PortProbes:
    """The probe steps on one open port; each fills `entry` and says whether the port is
    identified (no later step is needed)."""

    entry: dict[str, Any]
    target: ServiceTarget
    probes: frozenset[Probe]
    timeouts: ProbeTimeouts
    dial: Dial
    #: the port has let a whole wait pass without a byte: later steps wait `quiet`
    quiet: bool = False
    #: the port answered the protocol message with a TLS record
    tls_record: bool = False

    def protocol_step(self, ask: protocols.Ask) -> bool:
        """Send the port's own protocol message and fill the entry from the answer."""
        wait = self.timeouts.banner
        started = time.monotonic()
        with self._connect() as sock:
            answer = ask(sock, wait, self.target.hostname)
        if answer.tls is not None:
            self.entry["tls"] = answer.tls
        if answer.facts is not None:
            self.entry.update(banner=answer.facts.banner, service=answer.facts.service)
            return True
        if not answer.raw:
            self.quiet = time.monotonic() - started >= wait
            return False
        if _TLS_RECORD.match(answer.raw):
            self.tls_record = True
            return False
        # another protocol on this port: its answer names it as a greeting or a page would
        return self._fill_http(answer.raw)

    def banner_step(self, *, ask: bool) -> bool:
        """Listen for a greeting; with `ask`, briefly, then send the HTTP request."""
        with self._connect() as sock:
            timeouts = self.timeouts
            greeting = banner.read_banner(sock, timeouts.greeting if ask else timeouts.banner)
            if _TLS_RECORD.match(greeting):
                return False  # a TLS server's alert: the TLS probe will tell more
            if greeting or not ask:
                filled = self._fill_banner(greeting)
                if filled and self.entry["service"] == "ssh":
                    self._read_ssh_lists(sock, greeting)
                return filled
            return self._ask_http(sock, over_tls=False)

    def _read_ssh_lists(self, sock: socket.socket, greeting: bytes) -> None:
        """The SSH server's algorithm lists and their hash, on the greeting's connection
        (`probes/ssh.py`); the entry keeps its banner whatever comes of it."""
        already = ssh.after_identification(greeting)
        if already is None:
            return
        with contextlib.suppress(*_PROBE_ERRORS):
            wait = min(self.timeouts.greeting, self.timeouts.banner)  # real servers: one RTT
            lists = ssh.read_kexinit(sock, already, wait)
            if lists is not None:
                self.entry["ssh"] = lists

    def http_step(self) -> bool:
        with self._connect() as sock:
            return self._ask_http(sock, over_tls=False)

    def tls_step(self) -> bool:
        """A TLS handshake (offering HTTP/2 and HTTP/1.1 by ALPN where HTTP is asked inside),
        its facts, then what is spoken inside: a greeting, or the answer to an HTTP/1.1
        request, on a session of its own when the server chose HTTP/2."""
        target = self.target
        asks_http = target.port not in SERVER_FIRST_TLS_PORTS and Probe.HTTP in self.probes
        offer = tls.HTTP_ALPN if asks_http else ()
        try:
            chose_h2 = self._tls_session(offer)
        except ssl.SSLError as error:
            if not (offer and tls.refused_alpn(error)):
                raise
            chose_h2 = self._tls_session(())  # refused the offer: asked as without one
        if chose_h2:
            with contextlib.suppress(*_PROBE_ERRORS):
                self._tls_session(("http/1.1",), facts=False)
        self.entry["service"] = _over_tls(self.entry["service"])
        return True

    def _tls_session(self, offer: tuple[str, ...], *, facts: bool = True) -> bool:
        """One TLS session: its facts (unless `facts` is off), then what is spoken inside;
        True when the server chose HTTP/2, and nothing was asked inside."""
        target, entry = self.target, self.entry
        with (
            self._connect() as sock,
            tls.handshake(sock, target.hostname, self._wait(), offer) as session,
        ):
            if facts:
                entry["tls"] = tls.session_facts(session)
            if session.selected_alpn_protocol() == "h2":
                return True
            # the handshake already identified the port; what is spoken inside is a bonus
            with contextlib.suppress(*_PROBE_ERRORS):
                if target.port in SERVER_FIRST_TLS_PORTS or Probe.HTTP not in self.probes:
                    greeting = banner.read_banner(session, self.timeouts.banner)
                    if Probe.BANNER in self.probes:
                        self._fill_banner(greeting)
                else:
                    self._ask_http(session, over_tls=True)
        return False

    def _connect(self) -> socket.socket:
        return self.dial(self.target.address, self.target.port, self.timeouts.exchange)

    def _wait(self) -> float:
        """How long the next exchange waits for an answer."""
        return (
            min(self.timeouts.quiet, self.timeouts.exchange)
            if self.quiet
            else self.timeouts.exchange
        )

    def _ask_http(self, sock: socket.socket, *, over_tls: bool) -> bool:
        """Send the HTTP request on the connection and fill the entry from the answer."""
        target = self.target
        host = http.host_header(target.hostname or target.address, target.port, tls=over_tls)
        wait = self._wait()
        started = time.monotonic()
        data = http.exchange(sock, host, wait)
        if not data and time.monotonic() - started >= wait:
            self.quiet = True
        filled = self._fill_http(data)
        if "http" in self.entry and self.entry["http"] is not None:
            with contextlib.suppress(*_PROBE_ERRORS):
                self._ask_icon(host, http.icon_path(data), over_tls=over_tls)
        return filled

    def _ask_icon(self, host: str, path: str, *, over_tls: bool) -> None:
        """The site's icon, on a connection of its own (HTTP/1.1 inside TLS): its MD5 and size
        go into the entry's `http` as `favicon`."""
        with self._connect() as sock:
            channel: socket.socket | ssl.SSLSocket = sock
            if over_tls:
                channel = tls.handshake(sock, self.target.hostname, self._wait(), ("http/1.1",))
            with channel:
                icon = http.icon_facts(http.exchange(channel, host, self._wait(), path))
        if icon is not None:
            self.entry["http"]["favicon"] = {"path": path, **icon}

    def _fill_banner(self, data: bytes) -> bool:
        facts = banner.identify_banner(data, self.target.port)
        if facts is None:
            return False
        self.entry.update(banner=facts.banner, service=facts.service, product=facts.product)
        return True

    def _fill_http(self, data: bytes) -> bool:
        entry = self.entry
        facts = http.parse_response(data)
        if facts is None:
            if _TLS_RECORD.match(data):
                return False  # a TLS server's alert: the TLS probe will tell more
            # not HTTP, but whatever it said identifies it as well as a greeting would
            return Probe.BANNER in self.probes and self._fill_banner(data)
        entry.update(http=facts.as_record(), product=facts.server)
        entry["service"] = "https" if entry["tls"] else "http"
        # "The plain HTTP request was sent to HTTPS port": keep it, but let TLS say more
        return entry["tls"] is not None or not _WANTS_TLS.search(data)


def _over_tls(service: str | None) -> str:
    """The name of a protocol spoken inside TLS (`imap` → `imaps`); bare TLS is `tls`."""
    if service is None:
        return "tls"
    return _SECURE_NAMES.get(service, service)
