"""The SNMP connector: a device and its ARP neighbours from each target, over SNMP v2c or v3.

Per target it reads the system group (sysName, sysDescr, sysObjectID, sysLocation,
sysServices), the interfaces with their MACs (ifTable, ifXTable's ifName), the device's own
addresses (ipAddrTable) and its neighbours (ipNetToMediaTable and ipNetToPhysicalTable). The
device becomes one `host` record; each neighbour MAC becomes one record with its addresses,
`seen_by` the device. Numeric OIDs only: no MIB is loaded.

Targets are read a batch at a time (`concurrency` at once) on one asyncio loop, and the
records of a batch are yielded before the next starts, so memory holds one batch. An agent
that does not answer is normal in a sweep of many addresses: the run fails only when no
target answered at all, with the first target's problem in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as snmp_auth
from pysnmp.proto import errind
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from surveyor.connectors.base import (
    ConnectorConfig,
    ConnectorError,
    Progress,
    no_progress,
    register,
)
from surveyor.core.targets import TargetError, build_scope, check_scope_cap, parse_targets

DEFAULT_PORT = 161
DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 256
DEFAULT_RETRIES = 1
#: The most addresses one task may sweep, as for scans (SPEC §7).
TARGET_CAP = 65536
#: Rows read from one table of one device at most; a larger table is cut there.
MAX_ROWS = 50000
#: Interfaces whose MAC lands in the device's attributes (the record keeps 50 keys at most).
MAX_INTERFACE_ATTRIBUTES = 40
BULK_REPETITIONS = 25
#: How often a batch waiting on silent agents looks whether the task was stopped.
STOP_CHECK_SECONDS = 0.1

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
SYS_LOCATION = (1, 3, 6, 1, 2, 1, 1, 6, 0)
SYS_SERVICES = (1, 3, 6, 1, 2, 1, 1, 7, 0)
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_PHYS_ADDRESS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 6)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IP_AD_ENT_IF_INDEX = (1, 3, 6, 1, 2, 1, 4, 20, 1, 2)
IP_ADDRESS_IF_INDEX = (1, 3, 6, 1, 2, 1, 4, 34, 1, 3)
IP_NET_TO_MEDIA_PHYS = (1, 3, 6, 1, 2, 1, 4, 22, 1, 2)
IP_NET_TO_MEDIA_TYPE = (1, 3, 6, 1, 2, 1, 4, 22, 1, 4)
IP_NET_TO_PHYSICAL_PHYS = (1, 3, 6, 1, 2, 1, 4, 35, 1, 4)
IP_NET_TO_PHYSICAL_TYPE = (1, 3, 6, 1, 2, 1, 4, 35, 1, 6)
#: ipNetToMediaType and ipNetToPhysicalType: invalid(2) marks a dead row.
INVALID_ROW = 2

AUTH_PROTOCOLS = {
    "none": snmp_auth.USM_AUTH_NONE,
    "md5": snmp_auth.USM_AUTH_HMAC96_MD5,
    "sha": snmp_auth.USM_AUTH_HMAC96_SHA,
    "sha1": snmp_auth.USM_AUTH_HMAC96_SHA,
    "sha224": snmp_auth.USM_AUTH_HMAC128_SHA224,
    "sha256": snmp_auth.USM_AUTH_HMAC192_SHA256,
    "sha384": snmp_auth.USM_AUTH_HMAC256_SHA384,
    "sha512": snmp_auth.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS = {
    "none": snmp_auth.USM_PRIV_NONE,
    "des": snmp_auth.USM_PRIV_CBC56_DES,
    "3des": snmp_auth.USM_PRIV_CBC168_3DES,
    "aes": snmp_auth.USM_PRIV_CFB128_AES,
    "aes128": snmp_auth.USM_PRIV_CFB128_AES,
    "aes192": snmp_auth.USM_PRIV_CFB192_AES,
    "aes256": snmp_auth.USM_PRIV_CFB256_AES,
}
#: What an SNMPv3 agent's report means, in words a user can act on.
_V3_PROBLEMS: tuple[tuple[type[errind.ErrorIndication], str], ...] = (
    (errind.UnknownUserName, "the agent does not know user {user}"),
    (errind.WrongDigest, "authentication of user {user} failed: wrong auth key or protocol"),
    (errind.AuthenticationFailure, "authentication of user {user} failed"),
    (
        errind.DecryptionError,
        "the agent could not decrypt the request of user {user}: wrong privacy key or protocol",
    ),
    (
        errind.UnsupportedSecurityLevel,
        "the agent does not accept user {user} at this security level (auth and privacy)",
    ),
    (errind.NotInTimeWindow, "the agent's clock window rejected the request of user {user}"),
    (errind.UnknownEngineID, "the agent's engine ID could not be learned"),
)


#: Walked tables by their OID: (the index after the column's OID, the value) per row.
_Tables = dict[tuple[int, ...], list[tuple[tuple[int, ...], Any]]]


class _Failure(Exception):
    """A target's problem in words, kept until we know whether any target answered."""


class _Stopped(Exception):
    """The task was stopped while a target was being read."""


@dataclass(frozen=True)
class Agent:
    """One agent to read: `shown` is how messages name it."""

    host: str
    port: int

    @property
    def shown(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_name(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return True
        return False


@dataclass
class AgentReading:
    """What one agent said."""

    target: Agent
    system: dict[tuple[int, ...], Any] = field(default_factory=dict)
    tables: _Tables = field(default_factory=dict)


def _mac(value: Any) -> str | None:
    raw = bytes(value) if value is not None else b""
    if len(raw) != 6 or raw in (b"\x00" * 6, b"\xff" * 6):
        return None
    return ":".join(f"{byte:02x}" for byte in raw)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = bytes(value).decode("utf-8", errors="replace").strip().strip("\x00")
    return text or None


def _address_from_index(index: tuple[int, ...]) -> str | None:
    """The address of an ipNetToPhysicalTable index tail: type, length, the address bytes."""
    if len(index) < 2:
        return None
    kind, length, raw = index[0], index[1], bytes(index[2:])
    if kind in (1, 3) and length >= 4:  # ipv4, ipv4z (the zone follows the 4 bytes)
        return str(ipaddress.IPv4Address(raw[:4]))
    if kind in (2, 4) and length >= 16:  # ipv6, ipv6z
        return str(ipaddress.IPv6Address(raw[:16]))
    return None


def device_type_of(services: Any) -> str | None:
    """What sysServices says the device is: only routing (layer 3) or only bridging (layer 2)
    tells; an end host (layers 4 or 7) says nothing more."""
    if services is None:
        return None
    value = int(services)
    layers = {layer for layer in range(1, 8) if value & (1 << (layer - 1))}
    if layers & {4, 7}:
        return None
    if 3 in layers:
        return "router"
    if 2 in layers:
        return "switch"
    return None


def _is_identity(address: str) -> bool:
    """Whether an address can tell one host from another (loopback and link-local cannot)."""
    parsed = ipaddress.ip_address(address)
    return not (parsed.is_loopback or parsed.is_link_local or parsed.is_unspecified)


def _interfaces(tables: _Tables) -> tuple[dict[int, str], dict[int, str]]:
    """Each interface's name (ifName, else ifDescr) and MAC, by ifIndex."""
    names: dict[int, str] = {}
    for table in (IF_DESCR, IF_NAME):
        for (index, *_), value in tables.get(table, []):
            if text := _text(value):
                names[index] = text
    macs: dict[int, str] = {}
    for (index, *_), value in tables.get(IF_PHYS_ADDRESS, []):
        if mac := _mac(value):
            macs[index] = mac
    return names, macs


def _own_addresses(
    tables: _Tables, target: Agent, macs: Mapping[int, str]
) -> tuple[list[str], str | None]:
    """The device's addresses that identify it (the target's first) and the MAC of the
    interface holding the first of them: ipAddrTable's (IPv4), then ipAddressTable's (IPv4
    and IPv6, where the agent has it)."""
    own: list[str] = []
    mac: str | None = None
    rows = [
        (str(ipaddress.IPv4Address(bytes(suffix))), value)
        for suffix, value in tables.get(IP_AD_ENT_IF_INDEX, [])
        if len(suffix) == 4
    ]
    for suffix, value in tables.get(IP_ADDRESS_IF_INDEX, []):
        if (address := _address_from_index(suffix)) is not None:
            rows.append((address, value))
    for address, if_index in rows:
        if _is_identity(address) and address not in own:
            own.append(address)
            mac = mac or macs.get(int(if_index))
    if not target.is_name and _is_identity(target.host):
        reached = str(ipaddress.ip_address(target.host))
        own = [reached, *(address for address in own if address != reached)]
    return own, mac


def device_records(reading: AgentReading) -> list[dict[str, Any]]:
    """The device's record, then one record per neighbour MAC."""
    system, tables, target = reading.system, reading.tables, reading.target
    names, macs = _interfaces(tables)
    own, mac = _own_addresses(tables, target, macs)
    sys_name = _text(system.get(SYS_NAME))
    hostnames = [sys_name] if sys_name else []
    if target.is_name and target.host.lower() not in hostnames:
        hostnames.append(target.host.lower())
    if not own and not hostnames:
        own.append(target.host)  # nothing else tells this device apart: where it answered
    attributes: dict[str, str] = {}
    object_id = system.get(SYS_OBJECT_ID)
    if object_id is not None:
        attributes["sysObjectID"] = ".".join(str(part) for part in tuple(object_id))
    if location := _text(system.get(SYS_LOCATION)):
        attributes["sysLocation"] = location
    attributes["snmp_agent"] = target.shown
    for index in sorted(macs)[:MAX_INTERFACE_ATTRIBUTES]:
        attributes[f"interface {names.get(index, index)}"] = macs[index]
    device: dict[str, Any] = {"type": "host", "source": "snmp"}
    if own:
        device["addresses"] = own
    mac = mac or next((macs[index] for index in sorted(macs)), None)
    if mac:
        device["mac"] = mac
    device["hostnames"] = hostnames
    if description := _text(system.get(SYS_DESCR)):
        device["description"] = description
    if device_type := device_type_of(system.get(SYS_SERVICES)):
        device["device_type"] = device_type
    device["attributes"] = attributes
    seen_by = sys_name or (own[0] if own else target.host)
    return [device, *_neighbour_records(tables, names, set(own), seen_by)]


def _neighbour_records(
    tables: _Tables,
    interface_names: Mapping[int, str],
    own: set[str],
    seen_by: str,
) -> list[dict[str, Any]]:
    invalid = {suffix for suffix, value in tables.get(IP_NET_TO_MEDIA_TYPE, []) if int(value) == 2}
    invalid |= {
        suffix for suffix, value in tables.get(IP_NET_TO_PHYSICAL_TYPE, []) if int(value) == 2
    }
    by_mac: dict[str, tuple[list[str], int]] = {}

    def add(index: int, address: str | None, value: Any) -> None:
        mac = _mac(value)
        if mac is None or address is None or address in own or not _is_identity(address):
            return
        addresses, _ = by_mac.setdefault(mac, ([], index))
        if address not in addresses:
            addresses.append(address)

    for suffix, value in tables.get(IP_NET_TO_MEDIA_PHYS, []):
        if suffix in invalid or len(suffix) != 5:
            continue
        add(suffix[0], str(ipaddress.IPv4Address(bytes(suffix[1:]))), value)
    for suffix, value in tables.get(IP_NET_TO_PHYSICAL_PHYS, []):
        if suffix in invalid or len(suffix) < 3:
            continue
        add(suffix[0], _address_from_index(suffix[1:]), value)
    records = []
    for mac, (addresses, index) in sorted(by_mac.items()):
        record: dict[str, Any] = {
            "type": "host",
            "source": "snmp",
            "addresses": addresses,
            "mac": mac,
            "seen_by": seen_by,
        }
        if index in interface_names:
            record["attributes"] = {"seen_on_interface": interface_names[index]}
        records.append(record)
    return records


@dataclass(frozen=True)
class _Session:
    """How to talk to agents: the credential as pysnmp wants it, and the timing."""

    version: str
    user: str
    auth_data: CommunityData | UsmUserData = field(repr=False)
    try_timeout: float
    retries: int
    total_timeout: float

    def describe(self) -> str:
        return "SNMPv2c" if self.version == "2c" else f"SNMPv3 as {self.user}"


def _session(config: ConnectorConfig) -> _Session:
    """The credential turned into pysnmp's terms; raises ConnectorError, never showing a key."""
    credential = config.credential
    version = str(config.options.get("version") or credential.get("version") or "2c")
    retries = int(config.options.get("retries", DEFAULT_RETRIES))
    try_timeout = config.timeout / (retries + 1)
    auth_data: CommunityData | UsmUserData
    if version == "2c":
        community = credential.get("community") or ""
        if not community:
            raise ConnectorError("the SNMP credential has no community for SNMPv2c")
        # v2c is insecure, and a credential of kind snmp may still choose it (SPEC §9)
        auth_data = CommunityData(community, mpModel=1)  # noqa: S508
        user = ""
    elif version == "3":
        user = (credential.get("user") or "").strip()
        if not user:
            raise ConnectorError("the SNMP credential has no user for SNMPv3")
        auth_key = credential.get("auth_key") or None
        priv_key = credential.get("priv_key") or None
        auth_name = (credential.get("auth_protocol") or ("sha" if auth_key else "none")).lower()
        priv_name = (credential.get("priv_protocol") or ("aes" if priv_key else "none")).lower()
        if auth_name not in AUTH_PROTOCOLS:
            raise ConnectorError(
                f"unknown SNMPv3 auth protocol {auth_name!r}; known: {', '.join(AUTH_PROTOCOLS)}"
            )
        if priv_name not in PRIV_PROTOCOLS:
            raise ConnectorError(
                f"unknown SNMPv3 privacy protocol {priv_name!r}; known: {', '.join(PRIV_PROTOCOLS)}"
            )
        if priv_key and not auth_key:
            raise ConnectorError(f"SNMPv3 user {user} has a privacy key but no auth key")
        for name, key in (("auth", auth_key), ("privacy", priv_key)):
            if key is not None and len(key) < 8:
                raise ConnectorError(
                    f"the SNMPv3 {name} key of user {user} is shorter than 8 characters"
                )
        try:
            auth_data = UsmUserData(
                user,
                authKey=auth_key,
                privKey=priv_key,
                authProtocol=AUTH_PROTOCOLS[auth_name] if auth_key else snmp_auth.USM_AUTH_NONE,
                privProtocol=PRIV_PROTOCOLS[priv_name] if priv_key else snmp_auth.USM_PRIV_NONE,
            )
        except PySnmpError:
            raise ConnectorError(f"the SNMPv3 settings of user {user} do not fit") from None
    else:
        raise ConnectorError(f"SNMP version {version!r} is not supported; use 2c or 3")
    return _Session(version, user, auth_data, try_timeout, retries, config.timeout)


def _problem(session: _Session, target: Agent, indication: Any) -> _Failure:
    where = target.shown
    if isinstance(indication, errind.RequestTimedOut):
        if session.version == "2c":
            why = "wrong community, or no SNMP agent there"
        else:
            # an agent drops a request it cannot decrypt without a report
            why = "wrong privacy key, or no SNMPv3 agent there"
        return _Failure(f"no answer from {where} within {session.total_timeout:g} s: {why}")
    for kind, words in _V3_PROBLEMS:
        if isinstance(indication, kind):
            return _Failure(f"{where}: {words.format(user=session.user)}")
    return _Failure(f"{where} failed: {indication}")


class _Reader:
    """Reads agents on one asyncio loop."""

    def __init__(self, session: _Session, config: ConnectorConfig) -> None:
        self.session = session
        self.config = config
        self.engine: SnmpEngine | None = None

    async def _transport(self, target: Agent) -> UdpTransportTarget | Udp6TransportTarget:
        kind = Udp6TransportTarget if ":" in target.host else UdpTransportTarget
        try:
            return await kind.create(
                (target.host, target.port),
                timeout=self.session.try_timeout,
                retries=self.session.retries,
            )
        except PySnmpError:
            raise _Failure(f"cannot resolve SNMP target {target.host}") from None

    async def read(self, target: Agent, *, tables: bool = True) -> AgentReading:
        if self.engine is None:
            self.engine = SnmpEngine()
        transport = await self._transport(target)
        reading = AgentReading(target)
        indication, status, _, binds = await get_cmd(
            self.engine,
            self.session.auth_data,
            transport,
            ContextData(),
            *(
                ObjectType(ObjectIdentity(oid))
                for oid in (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME, SYS_LOCATION, SYS_SERVICES)
            ),
            lookupMib=False,
        )
        if indication:
            raise _problem(self.session, target, indication)
        if status:
            raise _Failure(f"{target.shown} refused to read the system group: {status}")
        for name, value in binds:
            if not isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
                reading.system[tuple(name)] = value
        if not tables:
            return reading
        for table in (
            IF_DESCR,
            IF_NAME,
            IF_PHYS_ADDRESS,
            IP_AD_ENT_IF_INDEX,
            IP_ADDRESS_IF_INDEX,
            IP_NET_TO_MEDIA_PHYS,
            IP_NET_TO_MEDIA_TYPE,
            IP_NET_TO_PHYSICAL_PHYS,
            IP_NET_TO_PHYSICAL_TYPE,
        ):
            reading.tables[table] = await self._walk(transport, target, table)
        return reading

    async def _walk(
        self, transport: Any, target: Agent, table: tuple[int, ...]
    ) -> list[tuple[tuple[int, ...], Any]]:
        assert self.engine is not None
        rows: list[tuple[tuple[int, ...], Any]] = []
        async for indication, status, _, binds in bulk_walk_cmd(
            self.engine,
            self.session.auth_data,
            transport,
            ContextData(),
            0,
            BULK_REPETITIONS,
            ObjectType(ObjectIdentity(table)),
            lookupMib=False,
            lexicographicMode=False,
        ):
            if self.config.stopped.is_set():
                raise _Stopped
            if indication:
                raise _problem(self.session, target, indication)
            if status:
                break  # a table the agent does not serve is an empty one
            for name, value in binds:
                oid = tuple(name)
                if oid[: len(table)] != table or isinstance(
                    value, NoSuchObject | NoSuchInstance | EndOfMibView
                ):
                    continue
                rows.append((oid[len(table) :], value))
            if len(rows) >= MAX_ROWS:
                break
        return rows

    async def read_all(self, targets: Sequence[Agent]) -> list[AgentReading | _Failure]:
        """Reads a batch at once; raises _Stopped soon after the task is stopped, even while
        agents are still silent."""

        async def one(target: Agent) -> AgentReading | _Failure:
            try:
                return await self.read(target)
            except _Failure as failure:
                return failure

        batch = asyncio.gather(*(one(target) for target in targets))
        while not batch.done():
            await asyncio.wait({batch}, timeout=STOP_CHECK_SECONDS)
            if self.config.stopped.is_set() and not batch.done():
                batch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await batch  # collects the cancellation, so none is left unretrieved
                raise _Stopped
        return list(batch.result())

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close_dispatcher()
            self.engine = None


def _port_of(config: ConnectorConfig) -> int:
    port = config.options.get("port", DEFAULT_PORT)
    return int(port)


def _split_server(server: str) -> tuple[str, int | None]:
    text = server.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            raise ConnectorError(f"SNMP server {server!r} has a bad port {port!r}")
        return host, int(port)
    return text, None


def _targets(config: ConnectorConfig) -> tuple[Iterator[Agent], int]:
    """The targets of the options (lazily) and how many, or the `server` when no targets
    are given."""
    port = _port_of(config)
    if config.options.get("targets"):
        try:
            scope = build_scope(
                parse_targets(config.options["targets"]),
                parse_targets(config.options.get("excludes") or [], field="excludes"),
            )
        except TargetError as exc:
            raise ConnectorError(f"bad SNMP targets: {exc}") from None
        return (Agent(str(item), port) for item in scope.iter_addresses()), scope.size
    if not config.server.strip():
        raise ConnectorError("no SNMP targets given: set `targets` (or `server`)")
    host, server_port = _split_server(config.server)
    return iter([Agent(host, server_port or port)]), 1


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a stop or a failure left running, then close the loop."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class SnmpConnector:
    """The device and its ARP neighbours from each SNMP agent of the targets."""

    name = "snmp"
    credential_kind = "snmp"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(options)
        targets = options.get("targets")
        if targets is None and not options.get("server"):
            raise ValueError("'targets' is required: the addresses of the SNMP agents to read")
        if targets is not None:
            try:
                parsed = parse_targets(targets)
                excludes = parse_targets(options.get("excludes") or [], field="excludes")
                check_scope_cap(build_scope(parsed, excludes), TARGET_CAP)
            except TargetError as exc:
                raise ValueError(str(exc)) from None
            checked["targets"] = parsed.text
        version = options.get("version")  # absent: the credential's version decides
        if version is not None and version not in ("2c", "3"):
            raise ValueError('\'version\' must be "2c" or "3"')
        for name, default, low, high in (
            ("port", DEFAULT_PORT, 1, 65535),
            ("concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY),
            ("retries", DEFAULT_RETRIES, 0, 5),
        ):
            value = options.get(name, default)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"'{name}' must be a whole number from {low} to {high}")
            checked[name] = value
        return checked

    def verify(self, config: ConnectorConfig) -> str:
        session = _session(config)
        reader = _Reader(session, config)
        loop = asyncio.new_event_loop()
        first: _Failure | None = None
        try:
            for target in itertools.islice(_targets(config)[0], 8):
                try:
                    reading = loop.run_until_complete(reader.read(target, tables=False))
                except _Failure as failure:
                    first = first or failure
                    continue
                name = _text(reading.system.get(SYS_NAME)) or "a device without sysName"
                return f"{target.shown} answered {session.describe()}: {name}"
        finally:
            reader.close()
            _close(loop)
        assert first is not None
        raise ConnectorError(str(first))

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        session = _session(config)
        remaining, total = _targets(config)
        batch_size = int(config.options.get("concurrency", DEFAULT_CONCURRENCY))
        reader = _Reader(session, config)
        loop = asyncio.new_event_loop()
        answered = tried = 0
        failures: list[_Failure] = []
        try:
            while batch := list(itertools.islice(remaining, batch_size)):
                if config.stopped.is_set():
                    return
                try:
                    results = loop.run_until_complete(reader.read_all(batch))
                except _Stopped:
                    return
                for result in results:
                    tried += 1
                    if isinstance(result, _Failure):
                        if not failures:
                            failures.append(result)
                        continue
                    answered += 1
                    yield from device_records(result)
                progress(tried, total)
        finally:
            reader.close()
            _close(loop)
        if not answered:
            others = f" (none of the {tried} targets answered)" if tried > 1 else ""
            raise ConnectorError(f"{failures[0]}{others}")


register(SnmpConnector())
