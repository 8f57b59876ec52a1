"""What the network lab holds: its hosts, their services and the ground truth a scan must find.

The plan is plain data, with no I/O: `netlab` builds it from network namespaces, tests compare
scan results against it. Every open service sits on a port of the `top100` preset, so the
benchmark's preset scan covers all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Final, Protocol, TypeVar

#: The lab's only subnet; it exists solely inside the lab's namespaces.
LAB_SUBNET: Final = IPv4Network("10.77.0.0/24")
SCANNER_ADDRESS: Final = LAB_SUBNET[2]
#: Addresses inside the scan range where no host lives (ARP goes unanswered).
ABSENT_ADDRESSES: Final = tuple(LAB_SUBNET[last] for last in range(22, 31))
#: The delay and loss of the impaired host, as `tc ... netem delay 50ms loss 5%` sets them.
IMPAIRED_DELAY_MS: Final = 50
IMPAIRED_LOSS: Final = 0.05

SSH_BANNER: Final = "SSH-2.0-OpenSSH_9.2p1 Lab"
SMTP_BANNER: Final = "220 mail.lab ESMTP"
HTTP_SERVER: Final = "LabHTTP/1.0"


class ServiceKind(StrEnum):
    """How a lab service answers: a server-first banner, plain HTTP, or HTTP over TLS."""

    BANNER = "banner"
    HTTP = "http"
    HTTPS = "https"


class PortState(StrEnum):
    """What a TCP connect to a lab port meets."""

    OPEN = "open"
    CLOSED = "closed"  # nothing listens: the host answers with a reset
    FILTERED = "filtered"  # the host's firewall drops the SYN


@dataclass(frozen=True, slots=True)
class CertificatePlan:
    """A certificate the lab generates: its subject, its SANs, and whether the lab CA signs it."""

    common_name: str
    alt_names: tuple[str, ...]
    signed_by_lab_ca: bool = True


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """One listening TCP service of a lab host."""

    port: int
    kind: ServiceKind
    banner: str | None = None
    http_title: str | None = None
    certificate: CertificatePlan | None = None


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One lab host: its address, its services, the ports its firewall drops."""

    name: str
    address: IPv4Address
    services: tuple[ServicePlan, ...]
    filtered_ports: tuple[int, ...] = ()
    impaired: bool = False

    @property
    def open_ports(self) -> tuple[int, ...]:
        return tuple(sorted(service.port for service in self.services))

    @property
    def mac(self) -> str:
        """A fixed, locally administered MAC derived from the address, so scans can report it."""
        last = int(self.address) & 0xFF
        return f"02:53:56:4c:00:{last:02x}"

    def port_state(self, port: int) -> PortState:
        if port in self.filtered_ports:
            return PortState.FILTERED
        if port in self.open_ports:
            return PortState.OPEN
        return PortState.CLOSED

    def service(self, port: int) -> ServicePlan:
        for service in self.services:
            if service.port == port:
                return service
        raise KeyError(f"{self.name} has no service on port {port}")


def _host(
    last_octet: int,
    name: str,
    *services: ServicePlan,
    filtered_ports: tuple[int, ...] = (),
    impaired: bool = False,
) -> HostPlan:
    address = LAB_SUBNET[last_octet]
    return HostPlan(name, address, services, filtered_ports=filtered_ports, impaired=impaired)


def _banner(port: int, text: str) -> ServicePlan:
    return ServicePlan(port=port, kind=ServiceKind.BANNER, banner=text)


def _http(port: int, title: str) -> ServicePlan:
    return ServicePlan(port=port, kind=ServiceKind.HTTP, http_title=title)


def _https(port: int, title: str, common_name: str, *, lab_ca: bool = True) -> ServicePlan:
    certificate = CertificatePlan(
        common_name=common_name,
        alt_names=(common_name, f"www.{common_name}"),
        signed_by_lab_ca=lab_ca,
    )
    return ServicePlan(port=port, kind=ServiceKind.HTTPS, http_title=title, certificate=certificate)


#: The standard lab: eleven hosts at 10.77.0.11-21, each with at least one open service.
STANDARD_HOSTS: Final[tuple[HostPlan, ...]] = (
    _host(11, "web", _http(80, "Lab Intranet")),
    # an en dash: titles are UTF-8, and a scanner must decode them as such
    _host(
        12, "portal", _http(80, "Lab Portal \u2013 Sign in"), _https(443, "Portal", "portal.lab")
    ),
    _host(13, "bastion", _banner(22, SSH_BANNER)),
    _host(
        14,
        "mail",
        _banner(25, SMTP_BANNER),
        _banner(110, "+OK lab POP3 ready"),
        _banner(143, "* OK [CAPABILITY IMAP4rev1] lab IMAP ready"),
        _banner(587, SMTP_BANNER),
    ),
    _host(15, "firewalled", _banner(22, SSH_BANNER), filtered_ports=(80, 443, 8080)),
    _host(16, "remote", _banner(22, SSH_BANNER), _http(80, "Lab Remote Office"), impaired=True),
    _host(
        17, "admin", _http(8080, "Lab Admin Console"), _https(8443, "Lab Admin TLS", "admin.lab")
    ),
    _host(18, "files", _banner(21, "220 files.lab FTP server ready"), _banner(22, SSH_BANNER)),
    _host(19, "vault", _https(443, "Lab Vault", "vault.lab", lab_ca=False)),
    _host(20, "apps", _http(3000, "Lab Dashboard"), _http(8000, "Lab App"), filtered_ports=(3389,)),
    _host(21, "printer", _http(631, "Lab Printer"), filtered_ports=(9100,)),
)


class _Host(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def address(self) -> IPv4Address: ...


_H = TypeVar("_H", bound=_Host)


def find_host(hosts: Iterable[_H], name: str, lab: str = "lab") -> _H:
    """The host called `name` (a KeyError naming the `lab` when there is none)."""
    for host in hosts:
        if host.name == name:
            return host
    raise KeyError(f"the {lab} has no host named {name!r}")


def find_host_at(hosts: Iterable[_H], address: IPv4Address | str, lab: str = "lab") -> _H:
    """The host at `address` (a KeyError naming the `lab` when there is none)."""
    wanted = IPv4Address(address)
    for host in hosts:
        if host.address == wanted:
            return host
    raise KeyError(f"no {lab} host has address {wanted}")


@dataclass(frozen=True, slots=True)
class LabPlan:
    """The hosts of one lab; `standard()` is the lab the tests and the benchmark use."""

    hosts: tuple[HostPlan, ...]
    absent_addresses: tuple[IPv4Address, ...] = field(default=ABSENT_ADDRESSES)

    @classmethod
    def standard(cls) -> LabPlan:
        return cls(hosts=STANDARD_HOSTS)

    @classmethod
    def small(cls) -> LabPlan:
        """Three standard hosts (impaired, TLS, firewalled): quick to build, for lab self-tests."""
        hosts = tuple(
            host for host in STANDARD_HOSTS if host.name in {"remote", "portal", "firewalled"}
        )
        return cls(hosts=hosts, absent_addresses=())

    def host(self, name: str) -> HostPlan:
        return find_host(self.hosts, name)

    def host_at(self, address: IPv4Address | str) -> HostPlan:
        return find_host_at(self.hosts, address)

    @property
    def scan_range(self) -> str:
        """A target range over every host and every absent address, but not the scanner."""
        addresses = [host.address for host in self.hosts] + list(self.absent_addresses)
        return f"{min(addresses)}-{max(addresses)}"

    def expected_open_ports(self, ports: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Address -> open ports among `ports`, for every host with at least one of them open."""
        expected: dict[str, tuple[int, ...]] = {}
        for host in self.hosts:
            found = tuple(port for port in host.open_ports if port in ports)
            if found:
                expected[str(host.address)] = found
        return expected
