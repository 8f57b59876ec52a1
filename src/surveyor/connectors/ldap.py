"""LDAP / Active Directory: the directory's computer objects as hosts (SPEC §9).

ldap3 connects, speaks TLS (`none`, `starttls` or `ldaps`, verified against `ca_file` or the
system's CAs, host name included) and binds; the paged search is read by `ldapwire`, a page
(`PAGE_SIZE` entries) at a time, so memory does not grow with the directory. Each computer
becomes a `host` record; docs/connectors.md lists the mapping field by field.

Referrals are followed only on the same server, by this module rather than by ldap3 (which
would hand the bind password to any server a referral names): a referral back to a base
already searched is a loop and fails the run; continuation references to other servers (AD's
DomainDnsZones and the like) are left alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

import dns.exception
import dns.resolver
import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError
from ldap3.core.results import RESULT_CODES

from surveyor.connectors import ldapwire
from surveyor.connectors.base import (
    ConnectorConfig,
    ConnectorError,
    Progress,
    no_progress,
    register,
)
from surveyor.core.jsonl import encode_record

#: The credential fields that are secrets (SPEC §9): never in a message, a record or a log.
SECRET_FIELDS = ("password",)
DEFAULT_FILTER = "(objectClass=computer)"
TLS_MODES = ("none", "starttls", "ldaps")
PAGE_SIZE = 500
#: Referrals followed from one base before the run gives up.
MAX_REFERRALS = 10
#: A name lookup's whole budget (both record types), and how many run at once.
RESOLVE_SECONDS = 2.0
RESOLVE_PARALLEL = 16
#: Lookups in a row that time out before the DNS server is taken for dead and names stay
#: names: 100,000 lookups into a dead server would otherwise take hours.
RESOLVE_GIVE_UP_AFTER = 32
#: What the search asks for. The cn, the fallback name, is read off the DN instead.
ATTRIBUTES = (
    "dNSHostName",
    "operatingSystem",
    "operatingSystemVersion",
    "lastLogonTimestamp",
    "description",
)
#: Where each of `ATTRIBUTES` goes in a row that `ldapwire.values` reads.
_SLOTS = ldapwire.Slots(ATTRIBUTES)
_OPTIONS = ("base_dn", "filter", "tls", "ca_file", "resolve", "dns_server")
#: Params of a connector task that the task reads itself, passed along with the options.
_TASK_PARAMS = ("server", "connector", "credential_id")
_FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
_UNIX_EPOCH = dt.datetime(1970, 1, 1)
#: The ISO dates of days since the Unix epoch met so far: computers log on over a few years.
_DAYS: dict[int, str] = {}
_DAYS_KEPT = 100_000
#: "THH:MM:" of each minute of a day, and "SS" of each second of a minute.
_HOURS_MINUTES = tuple(f"T{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_SECONDS = tuple(f"{second:02d}" for second in range(60))
_RESULT_SUCCESS = 0
_RESULT_REFERRAL = 10
_RESULT_NO_SUCH_OBJECT = 32
_RESULT_INSUFFICIENT_ACCESS = 50
_RDN_SPLIT = re.compile(r"(?<!\\),")
#: RFC 4514 escapes: a run of hex pairs (the UTF-8 bytes of characters), or one escaped character.
_DN_ESCAPES = re.compile(r"(?:\\[0-9a-fA-F]{2})+|\\(.)")
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")
#: What OpenSSL says when the other end does not speak TLS at all.
_NOT_TLS_REASONS = ("UNEXPECTED_EOF_WHILE_READING", "WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE")
_T = TypeVar("_T")
_VERIFY_REASON = re.compile(r"certificate verify failed: (.+?)(?: \(_ssl\.c:\d+\)|$)")


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _endpoint(server: str, default: int) -> _Endpoint:
    text = server.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConnectorError(f"server {server!r} names no host")
    if not port_text:
        return _Endpoint(host, default)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConnectorError(f"server {server!r}: the port must be a number from 1 to 65535")
    return _Endpoint(host, int(port_text))


def _default_port(tls: str) -> int:
    return 636 if tls == "ldaps" else 389


class _VerifyingTls(ldap3.Tls):  # type: ignore[misc]
    """TLS whose certificate and host name checks are the ssl module's own, done during the
    handshake (ldap3's check uses the deprecated `ssl.match_hostname`)."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_NONE)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_hostname=self._host, do_handshake_on_connect=do_handshake
        )


def _tls_context(ca_file: str | None, endpoint: _Endpoint) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConnectorError(
            f"TLS with {endpoint} not tried: ca_file {ca_file} cannot be read ({reason})"
        ) from None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for arg in current.args:
            # ldap3 lists the attempts of each address of the host: [(exception, ...), ...]
            if isinstance(arg, list):
                for attempt in arg:
                    if isinstance(attempt, tuple) and attempt and isinstance(attempt[0], Exception):
                        pending.append(attempt[0])
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _explain(exc: BaseException, endpoint: _Endpoint, timeout: float) -> str:
    """What went wrong with the connection to `endpoint`, in words a user can act on."""
    causes = list(_chain(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            found = _VERIFY_REASON.search(str(cause))
            reason = getattr(cause, "verify_message", None) or (
                found.group(1) if found else str(cause)
            )
            return (
                f"TLS with {endpoint} failed: the server's certificate could not be verified "
                f"({reason}); check ca_file and that the server's name matches its certificate"
            )
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            found = _SSL_REASON.search(str(cause))
            reason = getattr(cause, "reason", None) or (found.group(1) if found else "HANDSHAKE")
            words = str(reason).replace("_", " ").lower()
            hint = ""
            if reason in _NOT_TLS_REASONS:
                hint = "; does that port speak TLS? (ldaps is usually 636, starttls 389)"
            return f"TLS with {endpoint} failed: {words}{hint}"
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot connect to LDAP server {endpoint}: connection refused"
        if isinstance(cause, socket.timeout | TimeoutError):
            return f"LDAP server {endpoint} did not answer within {timeout:g} s (timeout)"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return f"LDAP server {endpoint} closed the connection"
        if isinstance(cause, socket.gaierror):
            return f"cannot find LDAP server {endpoint}: the host name does not resolve"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect to LDAP server {endpoint}: {cause.strerror.lower()}"
    return f"LDAP server {endpoint}: {exc}"


def _close(connection: ldap3.Connection) -> None:
    """Unbinds if it can, and closes the socket in any case."""
    with contextlib.suppress(LDAPException, OSError):
        if connection.bound:
            connection.unbind()
    with contextlib.suppress(LDAPException, OSError):
        connection.strategy.close()
    if connection.socket is not None:  # ldap3 keeps the socket of a failed connect open
        with contextlib.suppress(OSError):
            connection.socket.close()


def _failure(exc: BaseException, endpoint: _Endpoint, config: ConnectorConfig) -> ConnectorError:
    return ConnectorError(_scrubbed(_explain(exc, endpoint, config.timeout), config))


def _result_words(result: Mapping[str, Any]) -> str:
    code = result.get("result")
    name = str(result.get("description") or RESULT_CODES.get(code, f"result {code}"))
    words = re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()
    message = str(result.get("message") or "").strip()
    return f"{words} ({message})" if message else words


def _scrubbed(message: str, config: ConnectorConfig) -> str:
    """The message with any credential value in it blanked out: the last guard, since the
    messages above are built from server answers and exception texts."""
    for field in SECRET_FIELDS:
        value = config.credential.get(field)
        if value and len(value) >= 3 and value in message:
            message = message.replace(value, "***")
    return message


@dataclass(frozen=True, slots=True)
class _Options:
    base_dn: str
    search_filter: str
    tls: str
    ca_file: str | None
    resolve: bool
    dns_server: str | None


def _filetime_iso(value: str) -> str | None:
    """lastLogonTimestamp (a FILETIME: 100 ns ticks since 1601) as ISO 8601 UTC, to the
    microsecond when there is a fraction, e.g. 2026-12-05T16:30:15.123456Z; None for AD's
    "never" (0 and the largest value) and for what is not a number (as int() reads it)."""
    try:
        ticks = int(value)
    except ValueError:
        return None
    if ticks <= _FILETIME_UNIX_EPOCH:
        return None  # 0, or "never": AD's way of saying the computer never logged on
    micros = (ticks - _FILETIME_UNIX_EPOCH) // 10
    days = micros // 86_400_000_000
    day = _DAYS.get(days)
    if day is None:
        try:
            day = (_UNIX_EPOCH + dt.timedelta(days=days)).date().isoformat()
        except OverflowError:
            return None  # 0x7FFFFFFFFFFFFFFF, AD's other "never"
        if len(_DAYS) < _DAYS_KEPT:
            _DAYS[days] = day
    seconds = (micros - days * 86_400_000_000) // 1_000_000
    fraction = micros % 1_000_000
    if fraction:
        return f"{day}{_HOURS_MINUTES[seconds // 60]}{_SECONDS[seconds % 60]}.{fraction:06d}Z"
    return f"{day}{_HOURS_MINUTES[seconds // 60]}{_SECONDS[seconds % 60]}Z"


def _container(dn: str) -> str | None:
    """The OUs and containers holding the object: its DN without its own RDN and the
    domain's `dc=` components, e.g. "ou=Paris,ou=Workstations"."""
    if "\\" not in dn and ", " not in dn:  # the usual DN: plain commas, the dc= parts last
        parent = dn.partition(",")[2]
        lowered = parent.lower()
        if lowered.startswith("dc="):
            return None
        cut = lowered.find(",dc=")
        return (parent if cut < 0 else parent[:cut]) or None
    parts = _RDN_SPLIT.split(dn)
    kept = [part.strip() for part in parts[1:] if part.lstrip()[:3].lower() != "dc="]
    return ",".join(kept) or None


def _own_name(dn: str) -> str:
    """The value of the DN's first RDN (a computer's cn, its NetBIOS name), unescaped."""
    first = _RDN_SPLIT.split(dn, maxsplit=1)[0] if "\\" in dn else dn.split(",", 1)[0]
    value = first.partition("=")[2].strip()
    if "\\" not in value:
        return value
    return _DN_ESCAPES.sub(_unescaped, value)


def _unescaped(found: re.Match[str]) -> str:
    if found.group(1) is not None:
        return found.group(1)  # "\," and the like
    return bytes.fromhex(found.group(0).replace("\\", "")).decode("utf-8", "replace")


class Entry(NamedTuple):
    """A computer entry: its DN, and the first value of each attribute it holds, keyed by the
    lowercased attribute name."""

    dn: str
    attributes: dict[str, str]


def host_record(entry: Entry, addresses: Sequence[str] = ()) -> dict[str, Any] | None:
    """The `host` record of one computer entry; None for an entry with no name at all."""
    values = entry.attributes
    return _host_record(
        entry.dn,
        values.get("dnshostname"),
        values.get("operatingsystem"),
        values.get("operatingsystemversion"),
        values.get("lastlogontimestamp"),
        values.get("description"),
        addresses,
    )


def _host_record(
    dn: str,
    dns_host_name: str | None,
    system: str | None,
    version: str | None,
    logon: str | None,
    description: str | None,
    addresses: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The record of one entry, from its DN and the values of `ATTRIBUTES` in their order."""
    name = (dns_host_name and dns_host_name.strip()) or _own_name(dn)
    if not name:
        return None
    record: dict[str, Any] = {"type": "host", "source": "ldap", "hostnames": [name]}
    if addresses:
        record["addresses"] = list(addresses)
    if system and (system := system.strip()):
        record["os"] = system
    if version and (version := version.strip()):
        record["os_version"] = version
    if description and (description := description.strip()):
        record["description"] = description
    attributes = {"dn": dn}
    container = _container(dn)
    if container is not None:
        attributes["ou"] = container
    if logon:
        when = _filetime_iso(logon)
        if when is not None:
            attributes["last_logon"] = when
    record["attributes"] = attributes
    return record


#: JSON fragments met so far, by the raw value they come from: operating systems and their
#: versions repeat over a directory, and so do the containers of its computers.
_OS_FRAGMENTS: dict[bytes | None, str] = {None: ""}
_VERSION_FRAGMENTS: dict[bytes | None, str] = {None: ""}
_OU_FRAGMENTS: dict[str, str] = {}
_FRAGMENTS_KEPT = 4096


def _trimmed_fragment(key: str, raw: bytes) -> str:
    """`,"key":"value"` for a value that is not blank once stripped, else ""."""
    text = raw.decode("utf-8", "replace").strip()
    return f',"{key}":{encode_basestring(text)}' if text else ""


def _ou_fragment(dn: str) -> str:
    container = _container(dn)
    return "" if container is None else f',"ou":{encode_basestring(container)}'


def _logon_fragment(raw: bytes) -> str:
    when = _filetime_iso(raw.decode("utf-8", "replace"))
    return f',"last_logon":"{when}"' if when is not None else ""


def _page_lines(rows: list[list[bytes | None]]) -> tuple[bytes, int]:
    """The `host` records of a page's rows (`ldapwire.raw_values`), as task data lines, and
    how many: the very bytes `encode_record(_host_record(...))` writes for each, without the
    dictionaries. The hot path of a directory sync; the acceptance tests compare the two."""
    quoted = encode_basestring
    systems, versions, containers, days = _OS_FRAGMENTS, _VERSION_FRAGMENTS, _OU_FRAGMENTS, _DAYS
    hours_minutes, seconds_of = _HOURS_MINUTES, _SECONDS
    lines: list[str] = []
    append = lines.append
    for dns_host_name, system, version, logon, description, raw_dn in rows:
        dn = raw_dn.decode("utf-8", "replace")  # type: ignore[union-attr]
        name = (dns_host_name and dns_host_name.decode("utf-8", "replace").strip()) or _own_name(dn)
        if not name:
            continue
        system_part = systems.get(system)
        if system_part is None:
            system_part = _trimmed_fragment("os", system)  # type: ignore[arg-type]
            if len(systems) < _FRAGMENTS_KEPT:
                systems[system] = system_part
        version_part = versions.get(version)
        if version_part is None:
            version_part = _trimmed_fragment("os_version", version)  # type: ignore[arg-type]
            if len(versions) < _FRAGMENTS_KEPT:
                versions[version] = version_part
        description_part = _trimmed_fragment("description", description) if description else ""
        if "\\" not in dn and ", " not in dn:  # the container depends on the parent alone
            parent = dn.partition(",")[2]
            ou_part = containers.get(parent)
            if ou_part is None:
                ou_part = _ou_fragment(dn)
                if len(containers) < _FRAGMENTS_KEPT:
                    containers[parent] = ou_part
        else:
            ou_part = _ou_fragment(dn)
        logon_part = ""
        if logon:
            try:
                ticks = int(logon)
            except ValueError:  # words, or digits int() reads only as text
                logon_part = _logon_fragment(logon)
            else:
                # _filetime_iso's arithmetic, for a day already met; the rest goes there
                if ticks > _FILETIME_UNIX_EPOCH:
                    micros = (ticks - _FILETIME_UNIX_EPOCH) // 10
                    day = days.get(micros // 86_400_000_000)
                    if day is None:
                        logon_part = _logon_fragment(logon)
                    else:
                        seconds, fraction = divmod(micros % 86_400_000_000, 1_000_000)
                        time_of_day = hours_minutes[seconds // 60] + seconds_of[seconds % 60]
                        if fraction:
                            logon_part = f',"last_logon":"{day}{time_of_day}.{fraction:06d}Z"'
                        else:
                            logon_part = f',"last_logon":"{day}{time_of_day}Z"'
        append(
            f'{{"type":"host","source":"ldap","hostnames":[{quoted(name)}]'
            f"{system_part}{version_part}{description_part}"
            f',"attributes":{{"dn":{quoted(dn)}{ou_part}{logon_part}}}}}\n'
        )
    return "".join(lines).encode(), len(lines)


class _Names:
    """Resolves dNSHostNames to addresses, a page at a time, in bounded parallel."""

    def __init__(self, dns_server: str | None, timeout: float) -> None:
        if dns_server:
            resolver = dns.resolver.Resolver(configure=False)
            where = _endpoint(dns_server, 53)
            resolver.nameservers = [where.host]
            resolver.port = where.port
        else:
            resolver = dns.resolver.Resolver()
        resolver.lifetime = min(RESOLVE_SECONDS, timeout)
        self._resolver = resolver
        self._pool = ThreadPoolExecutor(RESOLVE_PARALLEL, thread_name_prefix="ldap-resolve")
        self._timeouts_in_a_row = 0

    def addresses(self, names: list[str]) -> list[list[str]]:
        if self._timeouts_in_a_row >= RESOLVE_GIVE_UP_AFTER:
            return [[] for _ in names]
        return list(self._pool.map(self._lookup, names))

    def _lookup(self, name: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            if self._timeouts_in_a_row >= RESOLVE_GIVE_UP_AFTER:
                return found
            try:
                answer = self._resolver.resolve(name, rdtype, search=False)
            except dns.exception.Timeout:
                self._timeouts_in_a_row += 1
                continue
            except dns.exception.DNSException:
                self._timeouts_in_a_row = 0
                continue
            self._timeouts_in_a_row = 0
            found.extend(str(item) for item in answer)
        return found

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LdapConnector:
    """Computers of an LDAP directory or Active Directory domain."""

    name = "ldap"
    credential_kind = "ldap"

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(_OPTIONS) - set(_TASK_PARAMS))
        if unknown:
            raise ValueError(
                f"unknown ldap option {unknown[0]!r}; the options are {', '.join(_OPTIONS)}"
            )
        base_dn = options.get("base_dn")
        if not isinstance(base_dn, str) or not base_dn.strip():
            raise ValueError("base_dn is required: the DN to search under, e.g. dc=corp,dc=example")
        search_filter = options.get("filter", DEFAULT_FILTER)
        if not isinstance(search_filter, str) or not search_filter.strip():
            raise ValueError("filter must be an LDAP filter such as (objectClass=computer)")
        try:
            ldapwire.search_request(1, base_dn, search_filter, ATTRIBUTES, PAGE_SIZE, b"")
        except LDAPInvalidFilterError as exc:
            raise ValueError(
                f"filter {search_filter!r} is not a valid LDAP filter: {exc}"
            ) from None
        tls = options.get("tls", "none")
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        ca_file = options.get("ca_file")
        if ca_file is not None and (not isinstance(ca_file, str) or not ca_file.strip()):
            raise ValueError("ca_file must be the path of a PEM file of CA certificates")
        resolve = options.get("resolve", False)
        if not isinstance(resolve, bool):
            raise ValueError("resolve must be true or false")
        dns_server = options.get("dns_server")
        if dns_server is not None:
            if not isinstance(dns_server, str) or not dns_server.strip():
                raise ValueError("dns_server must be host[:port]")
            try:
                _endpoint(dns_server, 53)
            except ConnectorError as exc:
                raise ValueError(f"dns_server: {exc}") from None
        return {
            "base_dn": base_dn.strip(),
            "filter": search_filter.strip(),
            "tls": tls,
            "ca_file": ca_file,
            "resolve": resolve,
            "dns_server": dns_server,
        }

    def verify(self, config: ConnectorConfig) -> str:
        options = self._options(config)
        endpoint = _endpoint(config.server, _default_port(options.tls))
        connection = self._connection(config, options, endpoint)
        self._bind(connection, config, options, endpoint)
        _close(connection)
        bind_dn = config.credential.get("bind_dn") or ""
        who = f"as {bind_dn}" if bind_dn else "anonymously"
        tls = "" if options.tls == "none" else f" over {options.tls}"
        return f"bound {who} to {endpoint}{tls}"

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        return self._search(config, progress, self._records)

    def fetch_lines(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[tuple[bytes, int]]:
        """The records of `fetch`, a page at a time, already encoded as task data lines:
        the bytes `encode_record` makes of each, and how many records they hold."""
        return self._search(config, progress, self._lines)

    def _search(
        self,
        config: ConnectorConfig,
        progress: Progress,
        convert: Callable[[ldapwire.Page, _Names | None], Iterator[_T]],
    ) -> Iterator[_T]:
        """The whole run: `convert` turns each page into what the caller takes."""
        options = self._options(config)
        endpoint = _endpoint(config.server, _default_port(options.tls))
        if config.stopped.is_set():
            return
        connection = self._connection(config, options, endpoint)
        finished = threading.Event()
        watcher = threading.Thread(
            target=self._close_when_stopped,
            args=(config.stopped, finished, connection),
            name="ldap-stop",
            daemon=True,
        )
        watcher.start()
        names = None
        try:
            self._bind(connection, config, options, endpoint)
            names = _Names(options.dns_server, config.timeout) if options.resolve else None
            for page in self._search_all(config, options, endpoint, connection, progress):
                yield from convert(page, names)
        except ConnectorError:
            if config.stopped.is_set():
                return  # the stop closed the socket under the bind: not a failure
            raise
        except (OSError, LDAPException, ldapwire.WireError) as exc:
            if config.stopped.is_set():
                return  # the stop closed the socket under the read: not a failure
            raise _failure(exc, endpoint, config) from None
        finally:
            finished.set()
            if names is not None:
                names.close()
            _close(connection)

    @staticmethod
    def _close_when_stopped(
        stopped: threading.Event, finished: threading.Event, connection: ldap3.Connection
    ) -> None:
        """Shuts the socket down once the task is stopped (and again while the run goes on,
        in case the socket was not open yet), so that a read waiting on a slow server
        returns at once instead of after its timeout."""
        while not finished.is_set():
            if stopped.wait(0.2):
                with contextlib.suppress(OSError, AttributeError):
                    connection.socket.shutdown(socket.SHUT_RDWR)
                finished.wait(0.2)

    def _options(self, config: ConnectorConfig) -> _Options:
        try:
            checked = self.check_options(config.options)
        except ValueError as exc:
            raise ConnectorError(f"LDAP server {config.server}: {exc}") from None
        return _Options(
            base_dn=checked["base_dn"],
            search_filter=checked["filter"],
            tls=checked["tls"],
            ca_file=checked["ca_file"],
            resolve=checked["resolve"],
            dns_server=checked["dns_server"],
        )

    @staticmethod
    def _connection(
        config: ConnectorConfig, options: _Options, endpoint: _Endpoint
    ) -> ldap3.Connection:
        """The connection to open, not opened yet."""
        tls = None
        if options.tls != "none":
            tls = _VerifyingTls(_tls_context(options.ca_file, endpoint), endpoint.host)
        server = ldap3.Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=options.tls == "ldaps",
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=config.timeout,
        )
        bind_dn = config.credential.get("bind_dn") or None
        return ldap3.Connection(
            server,
            user=bind_dn,
            password=config.credential.get("password") or None,
            authentication=ldap3.SIMPLE if bind_dn else ldap3.ANONYMOUS,
            auto_referrals=False,
            raise_exceptions=False,
            receive_timeout=None,  # the socket keeps connect_timeout for every read
            read_only=True,
        )

    @staticmethod
    def _bind(
        connection: ldap3.Connection,
        config: ConnectorConfig,
        options: _Options,
        endpoint: _Endpoint,
    ) -> None:
        """Opens the connection, starts TLS if asked, and binds; closes it on any failure."""
        bind_dn = config.credential.get("bind_dn") or None
        try:
            connection.open()
            if options.tls == "starttls" and not connection.start_tls():
                raise ConnectorError(
                    f"StartTLS with {endpoint} failed: {_result_words(connection.result)}"
                )
            if not connection.bind():
                who = f"as {bind_dn}" if bind_dn else "anonymously"
                words = _result_words(connection.result)
                if connection.result.get("description") == "invalidCredentials":
                    words = "invalid credentials"
                raise ConnectorError(_scrubbed(f"bind {who} to {endpoint} failed: {words}", config))
        except BaseException as exc:
            _close(connection)
            if isinstance(exc, LDAPException):
                raise _failure(exc, endpoint, config) from None
            raise

    def _search_all(
        self,
        config: ConnectorConfig,
        options: _Options,
        endpoint: _Endpoint,
        connection: ldap3.Connection,
        progress: Progress,
    ) -> Iterator[ldapwire.Page]:
        """Searches the base DN, then the same-server referrals and references it meets:
        its pages, each reported to `progress` once the caller has read it."""
        pending = [options.base_dn]
        searched: set[str] = set()
        message_ids = itertools.count(1000)
        fetched = 0
        while pending:
            base = pending.pop(0)
            searched.add(base.lower())
            if len(searched) > MAX_REFERRALS + 1:
                raise ConnectorError(
                    f"LDAP server {endpoint}: more than {MAX_REFERRALS} referrals from "
                    f"{options.base_dn}; point base_dn at the directory's own naming context"
                )
            search = ldapwire.PagedSearch(base, options.search_filter, ATTRIBUTES, PAGE_SIZE)
            message_id = next(message_ids)
            connection.socket.sendall(search.request(message_id, b""))
            while True:
                page = ldapwire.read_page(connection.socket, message_id)
                done = page.done
                for reference in page.references:
                    for url in reference.urls:
                        self._follow(url, base, endpoint, searched, pending, loop_ok=True)
                if done.result_code == _RESULT_REFERRAL:
                    if not done.referrals:
                        raise ConnectorError(
                            f"LDAP server {endpoint}: {base} is a referral that names no server"
                        )
                    self._follow(
                        done.referrals[0], base, endpoint, searched, pending, loop_ok=False
                    )
                    break
                if done.result_code != _RESULT_SUCCESS:
                    raise ConnectorError(self._search_failure(done, base, endpoint, config))
                more = bool(done.cookie) and not config.stopped.is_set()
                if more:  # the server prepares the next page while this one is read
                    message_id = next(message_ids)
                    connection.socket.sendall(search.request(message_id, done.cookie))
                yield page
                fetched += len(page.entries)
                progress(fetched, None)
                if config.stopped.is_set():
                    return
                if not more:
                    break

    @classmethod
    def _lines(cls, page: ldapwire.Page, names: _Names | None) -> Iterator[tuple[bytes, int]]:
        if names is None:
            yield _page_lines(ldapwire.raw_values(page, _SLOTS))
        else:  # the names' addresses: rare enough for the records' own path
            records = list(cls._records(page, names))
            yield b"".join([encode_record(record) for record in records]), len(records)

    @staticmethod
    def _records(page: ldapwire.Page, names: _Names | None) -> Iterator[dict[str, Any]]:
        rows = ldapwire.values(page, _SLOTS)  # each row ends with the entry's DN
        if names is None:
            for dns_host_name, system, version, logon, description, dn in rows:
                record = _host_record(dn, dns_host_name, system, version, logon, description)
                if record is not None:
                    yield record
            return
        hostnames = [row[0] or "" for row in rows]
        for row, addresses in zip(rows, names.addresses(hostnames), strict=True):
            dns_host_name, system, version, logon, description, dn = row
            record = _host_record(dn, dns_host_name, system, version, logon, description, addresses)
            if record is not None:
                yield record

    @staticmethod
    def _follow(
        url: str,
        base: str,
        endpoint: _Endpoint,
        searched: set[str],
        pending: list[str],
        *,
        loop_ok: bool,
    ) -> None:
        """Queues the base a referral or continuation reference names on this server. A
        referral back to a base already searched is a loop; a reference elsewhere is left."""
        parts = urlsplit(url)
        default_port = 636 if parts.scheme.lower() == "ldaps" else 389
        try:
            port = parts.port or default_port
        except ValueError:
            port = -1
        target = unquote(parts.path.lstrip("/"))
        same_server = (parts.hostname or "").lower() == endpoint.host.lower() and (
            port == endpoint.port
        )
        if not same_server:
            if loop_ok:
                return  # a continuation reference to another directory: not ours to read
            raise ConnectorError(
                f"LDAP server {endpoint}: {base} is a referral to another server ({url}); "
                f"set server to that directory"
            )
        if target.lower() in searched or target.lower() in (p.lower() for p in pending):
            if loop_ok and target.lower() != base.lower():
                return  # a reference to a part already searched
            raise ConnectorError(
                f"referral loop at LDAP server {endpoint}: {base} refers back to "
                f"{target or 'the root'} ({url}); fix the referral or choose another base_dn"
            )
        pending.append(target)

    @staticmethod
    def _search_failure(
        done: ldapwire.Done, base: str, endpoint: _Endpoint, config: ConnectorConfig
    ) -> str:
        if done.result_code == _RESULT_NO_SUCH_OBJECT:
            nearest = (
                f" (the nearest entry that exists is {done.matched_dn})" if done.matched_dn else ""
            )
            return f"base DN {base} does not exist on LDAP server {endpoint}{nearest}"
        if done.result_code == _RESULT_INSUFFICIENT_ACCESS:
            who = config.credential.get("bind_dn") or "an anonymous bind"
            return f"{who} may not search {base} on LDAP server {endpoint}: insufficient access"
        words = _result_words({"result": done.result_code, "message": done.message})
        return _scrubbed(f"search of {base} on LDAP server {endpoint} failed: {words}", config)


CONNECTOR = register(LdapConnector())
