"""The DNS connector: zone transfers (AXFR) of the listed zones, with an optional TSIG key.

Each zone is checked with a SOA query first, so a zone the server does not serve fails with
that in words instead of a bare transfer error. The transfer is read message by message and
turned into `host` records as it arrives:

- the A and AAAA records of one owner name become one record with those addresses and the
  name (a zone transfer sends all records of a name together);
- a PTR record becomes a record with the address of its reverse name and the names it points
  to;
- CNAME records are kept until the zone ends (a zone has far fewer aliases than hosts), then
  each target becomes a record with the target's name first and its aliases after it, so the
  aliases join the asset the target's name identifies.

Wildcard owners and the other record types (SOA, NS, MX, TXT, ...) name no host and are
skipped.
"""

from __future__ import annotations

import binascii
import ipaddress
import socket
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import dns.tsig
import dns.xfr

from surveyor.connectors.base import (
    ConnectorConfig,
    ConnectorError,
    Progress,
    no_progress,
    register,
)

DEFAULT_PORT = 53
DEFAULT_TSIG_ALGORITHM = "hmac-sha256"
_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)
_TSIG_PROBLEMS = {
    dns.tsig.PeerBadKey: "the server does not know this key name",
    dns.tsig.PeerBadSignature: "bad signature: the secret or the algorithm differs",
    dns.tsig.PeerBadTime: "the clocks of the server and this machine differ too much",
    dns.tsig.PeerBadTruncation: "the server rejected the truncated signature",
}


@dataclass(frozen=True)
class _Endpoint:
    """Where the server is: `shown` is what messages name, `address` what is dialled."""

    shown: str
    address: str
    port: int


@dataclass(frozen=True)
class _Tsig:
    keyring: dict[dns.name.Name, dns.tsig.Key]
    name: dns.name.Name
    algorithm: str

    def __repr__(self) -> str:  # dns.tsig.Key's own repr shows the secret
        return f"_Tsig(name={self.name}, algorithm={self.algorithm})"


def _split_server(server: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    text = server.strip()
    if not text:
        raise ConnectorError("no DNS server given: set `server` to host[:port]")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConnectorError(f"DNS server {server!r} has a bad port {port_text!r}")
    return host, int(port_text)


def _endpoint(server: str) -> _Endpoint:
    host, port = _split_server(server)
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectorError(f"cannot resolve DNS server {host}: {exc.strerror}") from None
        address = str(found[0][4][0])
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _Endpoint(shown=shown, address=address, port=port)


def _tsig(credential: Mapping[str, str]) -> _Tsig | None:
    """The TSIG key of the credential, or None when it has none. Never shows the secret."""
    name = (credential.get("tsig_name") or "").strip()
    secret = (credential.get("tsig_secret") or "").strip()
    algorithm = (credential.get("tsig_algorithm") or "").strip() or DEFAULT_TSIG_ALGORITHM
    if not name and not secret:
        return None
    if not name:
        raise ConnectorError("the credential has a TSIG secret but no TSIG key name")
    if not secret:
        raise ConnectorError(f"TSIG key {name} has no secret in the credential")
    try:
        key_name = dns.name.from_text(name)
        key = dns.tsig.Key(key_name, secret, algorithm)
    except (binascii.Error, ValueError):
        raise ConnectorError(f"the secret of TSIG key {name} is not valid base64") from None
    except dns.exception.DNSException:
        raise ConnectorError(f"TSIG key name {name!r} is not a valid DNS name") from None
    if key.algorithm not in dns.tsig.mac_sizes:
        raise ConnectorError(f"TSIG key {name} has an unknown algorithm {algorithm!r}")
    return _Tsig(keyring={key_name: key}, name=key_name, algorithm=algorithm)


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _failure(
    exc: BaseException, endpoint: _Endpoint, zone: str, doing: str, config: ConnectorConfig
) -> ConnectorError:
    """The words for what went wrong while `doing` something with `zone`."""
    where = endpoint.shown
    if isinstance(exc, ConnectionRefusedError):
        return ConnectorError(f"connection to {where} refused: no DNS server is listening there")
    if isinstance(exc, dns.exception.Timeout | TimeoutError):
        return ConnectorError(
            f"no answer from {where} within {config.timeout:g} s during the {doing} of zone {zone}"
        )
    for kind, problem in _TSIG_PROBLEMS.items():
        if isinstance(exc, kind):
            key = (config.credential.get("tsig_name") or "").strip()
            return ConnectorError(f"{where} rejected TSIG key {key} for zone {zone}: {problem}")
    if isinstance(exc, dns.xfr.TransferError):
        if exc.rcode == dns.rcode.REFUSED:
            return ConnectorError(
                f"{where} refused the transfer (AXFR) of zone {zone}: the server must allow "
                "transfers to this machine's address or to the credential's TSIG key"
            )
        if exc.rcode == dns.rcode.NOTAUTH:
            return ConnectorError(
                f"{where} refused the transfer (AXFR) of zone {zone} as not authorized: "
                "the server wants a TSIG key this credential does not have, or a different one"
            )
        return ConnectorError(
            f"{where} stopped the transfer (AXFR) of zone {zone}: "
            f"it answered {dns.rcode.to_text(exc.rcode)}"
        )
    if isinstance(exc, EOFError | ConnectionResetError):
        return ConnectorError(f"{where} closed the connection during the {doing} of zone {zone}")
    if isinstance(exc, OSError):
        return ConnectorError(f"cannot reach {where}: {exc.strerror or type(exc).__name__}")
    if isinstance(exc, dns.exception.DNSException):
        return ConnectorError(f"{where} sent a bad answer during the {doing} of zone {zone}: {exc}")
    return ConnectorError(f"the {doing} of zone {zone} at {where} failed: {type(exc).__name__}")


_EXPECTED = (OSError, EOFError, dns.exception.DNSException)


def _soa_serial(endpoint: _Endpoint, zone: str, tsig: _Tsig | None, config: ConnectorConfig) -> int:
    """The zone's SOA serial, asked over TCP; raises ConnectorError when the server does not
    serve the zone."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    if tsig is not None:
        query.use_tsig(tsig.keyring, tsig.name, algorithm=tsig.algorithm)
    try:
        answer = dns.query.tcp(query, endpoint.address, port=endpoint.port, timeout=config.timeout)
    except _EXPECTED as exc:
        raise _failure(exc, endpoint, zone, "SOA query", config) from None
    rcode = answer.rcode()
    if rcode == dns.rcode.NOTAUTH and tsig is not None:
        raise ConnectorError(
            f"{endpoint.shown} rejected TSIG key {_text(tsig.name)} for zone {zone}: "
            "it does not accept the key's signature"
        )
    soa = answer.get_rrset(
        answer.answer, dns.name.from_text(zone), answer.question[0].rdclass, dns.rdatatype.SOA
    )
    if rcode != dns.rcode.NOERROR or soa is None or not answer.flags & dns.flags.AA:
        said = dns.rcode.to_text(rcode) if rcode != dns.rcode.NOERROR else "with no SOA of its own"
        raise ConnectorError(
            f"{endpoint.shown} does not serve zone {zone}: it answered the SOA query {said}"
        )
    return int(soa[0].serial)


def _transfer(
    endpoint: _Endpoint, zone: str, tsig: _Tsig | None, config: ConnectorConfig
) -> Generator[dns.message.Message]:
    """The messages of an AXFR of `zone`, failures turned into ConnectorError."""
    messages = dns.query.xfr(
        endpoint.address,
        zone,
        port=endpoint.port,
        timeout=config.timeout,
        relativize=False,
        keyring=tsig.keyring if tsig else None,
        keyname=tsig.name if tsig else None,
        keyalgorithm=tsig.algorithm if tsig else dns.tsig.default_algorithm,
    )
    try:
        while True:
            try:
                message = next(messages)
            except StopIteration:
                return
            except _EXPECTED as exc:
                raise _failure(exc, endpoint, zone, "transfer (AXFR)", config) from None
            yield message
    finally:
        messages.close()


def _address_of(reverse_name: dns.name.Name) -> str | None:
    try:
        return str(ipaddress.ip_address(dns.reversename.to_address(reverse_name)))
    except (dns.exception.DNSException, ValueError):
        return None  # a partial name: the apex or a delegation label, not one address


class ZoneMapper:
    """Turns the rrsets of one zone, in transfer order, into host records."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.owner: dns.name.Name | None = None
        self.addresses: list[str] = []
        self.aliases: dict[str, list[str]] = {}

    def _record(self, addresses: list[str], hostnames: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {"type": "host", "source": "dns"}
        if addresses:
            record["addresses"] = addresses
        record["hostnames"] = hostnames
        record["attributes"] = {"dns_zone": self.zone}
        return record

    def _flush(self) -> Iterator[dict[str, Any]]:
        if self.owner is not None and self.addresses:
            yield self._record(self.addresses, [_text(self.owner)])
        self.owner, self.addresses = None, []

    def add(self, rrset: dns.rrset.RRset) -> Iterator[dict[str, Any]]:
        if rrset.name.is_wild():
            return
        if rrset.rdtype in _ADDRESS_TYPES:
            if rrset.name != self.owner:
                yield from self._flush()
                self.owner = rrset.name
            for rdata in rrset:
                text = str(ipaddress.ip_address(rdata.address))
                if text not in self.addresses:
                    self.addresses.append(text)
        elif rrset.rdtype == dns.rdatatype.PTR:
            address = _address_of(rrset.name)
            names = sorted({_text(rdata.target) for rdata in rrset})
            if address is not None and names:
                yield self._record([address], names)
        elif rrset.rdtype == dns.rdatatype.CNAME:
            for rdata in rrset:
                self.aliases.setdefault(_text(rdata.target), []).append(_text(rrset.name))

    def finish(self) -> Iterator[dict[str, Any]]:
        yield from self._flush()
        for target, aliases in sorted(self.aliases.items()):
            yield self._record([], [target, *sorted(set(aliases))])
        self.aliases = {}


def _zone_option(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("'zones' must be a non-empty list of zone names")
    zones: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"'zones' item {index} must be a zone name")
        try:
            name = dns.name.from_text(item.strip())
        except dns.exception.DNSException as exc:
            raise ValueError(f"'zones' item {index} ({item!r}) is not a DNS name: {exc}") from None
        text = _text(name)
        if text not in zones:
            zones.append(text)
    return zones


class DnsConnector:
    """AXFR of the listed zones; A, AAAA, CNAME and PTR records become names on assets."""

    name = "dns"
    credential_kind = "dns"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(options)
        checked["zones"] = _zone_option(options.get("zones"))
        server = options.get("server")
        if server is not None and (not isinstance(server, str) or not server.strip()):
            raise ValueError("'server' must be host[:port]")
        return checked

    def verify(self, config: ConnectorConfig) -> str:
        endpoint = _endpoint(config.server)
        tsig = _tsig(config.credential)
        zones = _zone_option(config.options.get("zones"))
        said = []
        for zone in zones:
            serial = _soa_serial(endpoint, zone, tsig, config)
            first = _transfer(endpoint, zone, tsig, config)
            try:
                next(first, None)
            finally:
                first.close()
            said.append(f"{zone} (serial {serial})")
        key = f" with TSIG key {_text(tsig.name)}" if tsig else ""
        return f"{endpoint.shown} serves and allows the transfer{key} of {', '.join(said)}"

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        try:
            yield from self._fetch(config, progress)
        except ConnectorError:
            if config.stopped.is_set():
                return  # a stop that came while waiting on the server is no failure
            raise

    def _fetch(self, config: ConnectorConfig, progress: Progress) -> Iterator[dict[str, Any]]:
        endpoint = _endpoint(config.server)
        tsig = _tsig(config.credential)
        fetched = 0
        for zone in _zone_option(config.options.get("zones")):
            if config.stopped.is_set():
                return
            _soa_serial(endpoint, zone, tsig, config)
            mapper = ZoneMapper(zone)
            messages = _transfer(endpoint, zone, tsig, config)
            try:
                for message in messages:
                    for rrset in message.answer:
                        for record in mapper.add(rrset):
                            fetched += 1
                            yield record
                    progress(fetched, None)
                    if config.stopped.is_set():
                        return
            finally:
                messages.close()
            for record in mapper.finish():
                fetched += 1
                yield record
            progress(fetched, None)


register(DnsConnector())
