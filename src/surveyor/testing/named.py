"""A private BIND 9 (`named`) serving generated zones, for the DNS connector's tests.

The server runs in the foreground from its own directory in a temporary folder, with its own
`named.conf`, listening only on 127.0.0.1 at a free high port, recursion off and no control
channel. As root it drops to the `bind` user (`-u bind`), as the Debian package does. It serves:

- `lab.test`, a forward zone of generated hosts (A, AAAA, CNAME), transferable by 127.0.0.1;
- `20.10.in-addr.arpa`, the reverse zone of those hosts (PTR), transferable by 127.0.0.1;
- `keyed.test`, transferable only with the TSIG key of the server (`tsig_*` fields);
- `closed.test`, which refuses every transfer.

`running_named()` stops the server and removes its folder however the block ends.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from surveyor.testing.servers import stop_process

NAMED = Path("/usr/sbin/named")
ADDRESS = "127.0.0.1"
FORWARD_ZONE = "lab.test"
REVERSE_ZONE = "20.10.in-addr.arpa"
KEYED_ZONE = "keyed.test"
CLOSED_ZONE = "closed.test"
TSIG_NAME = "surveyor-test-key"
TSIG_ALGORITHM = "hmac-sha256"
START_SECONDS = 30.0


class NamedUnavailable(RuntimeError):
    """Raised, never skipped: a test run without BIND must fail loudly."""


@dataclass(frozen=True)
class ZoneHost:
    """One generated host: its name in the forward zone and its addresses."""

    name: str
    ipv4: str
    ipv6: str | None

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{FORWARD_ZONE}"


@dataclass(frozen=True)
class NamedServer:
    """A running private `named` and what its zones hold."""

    address: str
    port: int
    hosts: tuple[ZoneHost, ...]
    #: alias name (fully qualified) -> target name (fully qualified)
    aliases: dict[str, str]
    tsig_name: str
    tsig_algorithm: str
    tsig_secret: str
    directory: Path

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def log(self) -> str:
        path = self.directory / "named.log"
        return path.read_text(errors="replace") if path.exists() else ""


def generated_hosts(count: int) -> tuple[ZoneHost, ...]:
    """`count` hosts host001... at 10.20.x.y; every other one also has an IPv6 address."""
    hosts = []
    for number in range(1, count + 1):
        third, fourth = divmod(number, 250)
        hosts.append(
            ZoneHost(
                name=f"host{number:03d}",
                ipv4=f"10.20.{third}.{fourth + 1}",
                ipv6=f"fd00:20::{number:x}" if number % 2 == 1 else None,
            )
        )
    return tuple(hosts)


def _soa() -> str:
    """The head of a zone file; names in it are relative, so one file serves several zones."""
    return (
        "$TTL 300\n"
        f"@ IN SOA ns.{FORWARD_ZONE}. hostmaster.{FORWARD_ZONE}. 2026120501 3600 600 86400 300\n"
        f"@ IN NS ns.{FORWARD_ZONE}.\n"
    )


def _relative(fqdn: str) -> str:
    return fqdn.removesuffix(f".{FORWARD_ZONE}")


def forward_zone(hosts: tuple[ZoneHost, ...], aliases: dict[str, str]) -> str:
    lines = [_soa(), "ns IN A 10.20.0.250\n"]
    for host in hosts:
        lines.append(f"{host.name} IN A {host.ipv4}\n")
        if host.ipv6:
            lines.append(f"{host.name} IN AAAA {host.ipv6}\n")
    for alias, target in aliases.items():
        lines.append(f"{_relative(alias)} IN CNAME {_relative(target)}\n")
    return "".join(lines)


def reverse_zone(hosts: tuple[ZoneHost, ...]) -> str:
    lines = [_soa()]
    for host in hosts:
        octets = host.ipv4.split(".")
        lines.append(f"{octets[3]}.{octets[2]} IN PTR {host.fqdn}.\n")
    return "".join(lines)


def named_conf(directory: Path, port: int, tsig_secret: str) -> str:
    zones = (
        (FORWARD_ZONE, "forward.zone", f"{ADDRESS};"),
        (REVERSE_ZONE, "reverse.zone", f"{ADDRESS};"),
        (KEYED_ZONE, "forward.zone", f"key {TSIG_NAME};"),
        (CLOSED_ZONE, "forward.zone", "none;"),
    )
    zone_blocks = "".join(
        f'zone "{name}" {{ type primary; file "{file}"; allow-transfer {{ {allow} }}; }};\n'
        for name, file, allow in zones
    )
    return (
        "options {\n"
        f'  directory "{directory}";\n'
        "  pid-file none;\n"
        f'  session-keyfile "{directory}/session.key";\n'
        f'  managed-keys-directory "{directory}";\n'
        f"  listen-on port {port} {{ {ADDRESS}; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
        "  allow-transfer { none; };\n"
        "};\n"
        "controls { };\n"
        f'key "{TSIG_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{tsig_secret}"; }};\n'
        + zone_blocks
    )


def free_port(address: str = ADDRESS) -> int:
    """A port free for both TCP and UDP on `address` (DNS listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise NamedUnavailable(f"no port free for both TCP and UDP on {address}")


def _answers_soa(address: str, port: int) -> bool:
    """Whether the server answers a SOA query for the forward zone over TCP."""
    query = dns.message.make_query(FORWARD_ZONE, "SOA")
    try:
        answer = dns.query.tcp(query, address, port=port, timeout=1.0)
    except (OSError, EOFError, dns.exception.DNSException):
        return False
    return bool(answer.answer)


@contextlib.contextmanager
def running_named(host_count: int = 20) -> Iterator[NamedServer]:
    """Start a private `named` serving `host_count` generated hosts; stop and remove it after."""
    if not NAMED.exists():
        raise NamedUnavailable(f"{NAMED} not found; `make test` installs it (Debian package bind9)")
    hosts = generated_hosts(host_count)
    aliases = {f"www.{FORWARD_ZONE}": hosts[0].fqdn, f"files.{FORWARD_ZONE}": hosts[1].fqdn}
    tsig_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    directory = Path(tempfile.mkdtemp(prefix="surveyor-named-"))
    run_user = "bind" if os.geteuid() == 0 else None
    process: subprocess.Popen[bytes] | None = None
    try:
        (directory / "forward.zone").write_text(forward_zone(hosts, aliases))
        (directory / "reverse.zone").write_text(reverse_zone(hosts))
        port = free_port()
        conf = directory / "named.conf"
        conf.write_text(named_conf(directory, port, tsig_secret))
        conf.chmod(0o640)
        if run_user is not None:
            entry = pwd.getpwnam(run_user)
            for path in (directory, *directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        args = [str(NAMED), "-g", "-c", str(conf), "-4"]
        if run_user is not None:
            args += ["-u", run_user]
        with (directory / "named.log").open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not _answers_soa(ADDRESS, port):
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (directory / "named.log").read_text(errors="replace")
                raise NamedUnavailable(f"named did not start on {ADDRESS}:{port}:\n{log_text}")
            time.sleep(0.05)
        yield NamedServer(
            address=ADDRESS,
            port=port,
            hosts=hosts,
            aliases=aliases,
            tsig_name=TSIG_NAME,
            tsig_algorithm=TSIG_ALGORITHM,
            tsig_secret=tsig_secret,
            directory=directory,
        )
    finally:
        stop_process(process)
        shutil.rmtree(directory, ignore_errors=True)
