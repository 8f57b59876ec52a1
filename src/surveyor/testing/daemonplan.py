"""What the daemon lab holds: hosts that run real Debian servers, and the truth about them.

Plain data, no I/O but `dpkg-query` (`installed_version`). `daemonlab` builds the hosts inside
network namespaces; tests and `bench/identify.py` compare what a scanner names against the
package each service comes from: its product, and its upstream version (`9.2p1` of
`1:9.2p1-2+deb12u7`). Every host runs Debian, so the right OS family is Linux everywhere.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Final

from surveyor.testing.labplan import LAB_SUBNET, find_host, find_host_at

#: The OS family of every daemon lab host (they all run this machine's Debian).
OS_FAMILY: Final = "Linux"
#: Where a scanner's product or OS text names the family of a lab host.
OS_FAMILY_PATTERN: Final = re.compile(r"linux|debian", re.I)


@dataclass(frozen=True, slots=True)
class Daemon:
    """One real server program: its Debian package, its ports and how tools may name it.

    `product` is the name the fingerprint rules give; `names` is a pattern any tool's product
    text (product and version read together, since nmap reports MariaDB as `MySQL
    5.5.5-<version>-MariaDB`) must match to name the product right. `announces_version` says
    whether the server tells its version without a login (a greeting, a header), so that a
    scanner reading only its answers can know it.
    """

    key: str
    package: str
    product: str
    names: str
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...] = ()
    announces_version: bool = True


OPENSSH: Final = Daemon("openssh", "openssh-server", "OpenSSH", r"\bOpenSSH\b", (22,))
NGINX: Final = Daemon("nginx", "nginx", "nginx", r"\bnginx\b", (80, 443))
APACHE: Final = Daemon("apache2", "apache2", "Apache httpd", r"\bApache\b(?! Tomcat)", (80, 443))
LIGHTTPD: Final = Daemon("lighttpd", "lighttpd", "lighttpd", r"\blighttpd\b", (80,))
EXIM: Final = Daemon("exim4", "exim4-daemon-light", "Exim", r"\bExim\b", (25,))
#: Dovecot's greetings say `Dovecot (Debian) ready.`, no version.
DOVECOT: Final = Daemon(
    "dovecot", "dovecot-core", "Dovecot", r"\bDovecot\b", (110, 143), announces_version=False
)
VSFTPD: Final = Daemon("vsftpd", "vsftpd", "vsftpd", r"\bvsftpd\b", (21,))
MARIADB: Final = Daemon("mariadb", "mariadb-server", "MariaDB", r"\bMariaDB\b", (3306,))
#: PostgreSQL says nothing before a client's startup message, and tells no version after it
#: without a login.
POSTGRESQL: Final = Daemon(
    "postgresql", "postgresql-15", "PostgreSQL", r"\bPostgreSQL\b", (5432,), announces_version=False
)
#: Redis answers commands, never greets; `INFO` (which tells the version) may need a login.
REDIS: Final = Daemon(
    "redis", "redis-server", "Redis", r"\bRedis\b", (6379,), announces_version=False
)
#: SMB tells dialects, not the Samba version, to a client that has not logged in.
SAMBA: Final = Daemon("samba", "samba", "Samba", r"\bSamba\b", (139, 445), announces_version=False)
#: BIND tells its version to a `version.bind` CHAOS TXT query, over UDP and TCP.
BIND: Final = Daemon("bind9", "bind9", "BIND", r"\bBIND\b", (53,), udp_ports=(53,))
#: SNMP is UDP only: no TCP scan sees it; `sysDescr` names the system, not the agent.
SNMPD: Final = Daemon(
    "snmpd", "snmpd", "Net-SNMP", r"\bNet-?SNMP\b", (), udp_ports=(161,), announces_version=False
)

DAEMONS: Final = (
    OPENSSH,
    NGINX,
    APACHE,
    LIGHTTPD,
    EXIM,
    DOVECOT,
    VSFTPD,
    MARIADB,
    POSTGRESQL,
    REDIS,
    SAMBA,
    BIND,
    SNMPD,
)


@dataclass(frozen=True, slots=True)
class DaemonHost:
    """One lab host: its name, address and the servers it runs."""

    name: str
    address: IPv4Address
    daemons: tuple[Daemon, ...]

    @property
    def tcp_ports(self) -> tuple[int, ...]:
        return tuple(sorted(port for daemon in self.daemons for port in daemon.tcp_ports))

    def daemon_on(self, port: int) -> Daemon:
        for daemon in self.daemons:
            if port in daemon.tcp_ports:
                return daemon
        raise KeyError(f"{self.name} runs nothing on TCP port {port}")


def _host(last_octet: int, name: str, *daemons: Daemon) -> DaemonHost:
    return DaemonHost(name, LAB_SUBNET[last_octet], daemons)


#: The daemon lab: eleven hosts at the lab subnet's .11 to .21 (inside the lab's namespaces
#: only). nginx serves TLS with a certificate chain (leaf and lab CA), Apache with a
#: self-signed one.
DAEMON_HOSTS: Final = (
    _host(11, "ssh", OPENSSH),
    _host(12, "nginx", NGINX, OPENSSH),
    _host(13, "apache", APACHE),
    _host(14, "lighttpd", LIGHTTPD),
    _host(15, "mail", EXIM, DOVECOT, OPENSSH),
    _host(16, "ftp", VSFTPD),
    _host(17, "mariadb", MARIADB),
    _host(18, "postgres", POSTGRESQL),
    _host(19, "redis", REDIS),
    _host(20, "smb", SAMBA),
    _host(21, "dns", BIND, SNMPD),
)
#: Every TCP port a daemon of the lab listens on: what the scanners are asked to probe.
DAEMON_PORTS: Final = tuple(sorted({port for host in DAEMON_HOSTS for port in host.tcp_ports}))


def daemon_host(name: str) -> DaemonHost:
    return find_host(DAEMON_HOSTS, name, lab="daemon lab")


def daemon_host_at(address: IPv4Address | str) -> DaemonHost:
    return find_host_at(DAEMON_HOSTS, address, lab="daemon lab")


def scan_range() -> str:
    addresses = [host.address for host in DAEMON_HOSTS]
    return f"{min(addresses)}-{max(addresses)}"


_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?(?P<upstream>.+?)(?:-[^-]+)?$")
_REPACK = re.compile(r"[+~](?:dfsg|ds|repack)\d*$")


def upstream_version(debian_version: str) -> str:
    """`9.2p1` of `1:9.2p1-2+deb12u7`: without the epoch, the Debian revision and `+dfsg`."""
    found = _DEBIAN_VERSION.match(debian_version.strip())
    if found is None:
        raise ValueError(f"{debian_version!r} is not a Debian version")
    return _REPACK.sub("", found.group("upstream"))


def installed_version(package: str) -> str:
    """The Debian version of an installed package, from `dpkg-query -W`; raises if absent."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = done.stdout.partition("|")
    if done.returncode != 0 or not status.startswith("ii") or not version:
        raise LookupError(
            f"the Debian package {package} is not installed; `make test` installs it "
            "(scripts/install-system-deps)"
        )
    return version


@dataclass(frozen=True, slots=True)
class Truth:
    """What a scanner should name for one daemon: product, and version where it is told."""

    daemon: Daemon
    debian_version: str

    @property
    def version(self) -> str:
        return upstream_version(self.debian_version)

    def names_product(self, text: str) -> bool:
        return re.search(self.daemon.names, text, re.I) is not None

    def names_version(self, text: str) -> bool:
        """Whether `text` holds the upstream version as a whole (`9.18.49` in
        `9.18.49-1~deb12u3-Debian`, `11.4.5` in `5.5.5-11.4.5-MariaDB`, not in `11.4.50`)."""
        pattern = rf"(?<![\w.]){re.escape(self.version)}(?![\w]|\.\d)"
        return re.search(pattern, text) is not None


def ground_truth() -> dict[str, Truth]:
    """Daemon key -> what it is, read from the installed packages."""
    return {daemon.key: Truth(daemon, installed_version(daemon.package)) for daemon in DAEMONS}
