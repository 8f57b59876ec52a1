"""A private Net-SNMP agent (`snmpd`) with a real ARP table, for the SNMP connector's tests.

The agent runs in a network namespace that this module creates, so that every table it serves
is real and known: an interface `sw0` with a fixed MAC and address, and permanent neighbours
(`ip neigh add ... nud permanent`) that fill the kernel's ARP and neighbour tables, which snmpd
serves as ipNetToMediaTable and ipNetToPhysicalTable. (snmpd's `override` directive cannot
build those tables: it has no IpAddress type, and the host's own neighbours would show through.)

The namespace has no route out. The tests reach the agent at 127.0.0.1:PORT in their own
namespace through a UDP relay: a thread that forwards each client's datagrams from a socket it
created inside the agent's namespace (a socket stays in the namespace it was made in, so the
thread enters the namespace with setns(2) only to create it).

The agent has a v2c community and an SNMPv3 user (SHA authentication, AES privacy), all three
secrets random per run. Like the lab (`labnetns`), the namespace is recorded in the lab
registry first, so a run killed before cleaning up is cleaned by the next one;
`running_snmpd()` otherwise removes it, its processes and its folder however the block ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from surveyor.testing import labnetns
from surveyor.testing.servers import stop_process

SNMPD = "/usr/sbin/snmpd"
CLONE_NEWNET = 0x40000000
AGENT_PORT = 161
START_SECONDS = 30.0
SYS_NAME = "lab-switch"
SYS_DESCR = "Surveyor lab switch, Net-SNMP agent in a network namespace"
SYS_OBJECT_ID = "1.3.6.1.4.1.8072.3.2.10"
#: sysServices 2: layer 2 only (a bridge or switch).
SYS_SERVICES = 2
SYS_LOCATION = "rack 7, lab"
INTERFACE = "sw0"
INTERFACE_MAC = "02:00:5e:10:00:01"
INTERFACE_ADDRESS = "10.30.0.1"
INTERFACE_ADDRESS_V6 = "fd00:30::1"


@dataclass(frozen=True)
class Neighbour:
    """A permanent entry of the agent's ARP (or IPv6 neighbour) table."""

    address: str
    mac: str


NEIGHBOURS = (
    Neighbour("10.30.0.5", "02:00:5e:10:00:05"),
    Neighbour("fd00:30::5", "02:00:5e:10:00:05"),
    Neighbour("10.30.0.6", "02:00:5e:10:00:06"),
    Neighbour("10.30.0.7", "02:00:5e:10:00:07"),
)


@dataclass(frozen=True)
class SnmpAgent:
    """A running private snmpd, reachable at `address`:`port` over UDP."""

    address: str
    port: int
    community: str
    user: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str
    priv_key: str
    namespace: str
    directory: Path
    neighbours: tuple[Neighbour, ...] = NEIGHBOURS
    secrets_in_use: tuple[str, ...] = field(default=(), repr=False)

    @property
    def target(self) -> str:
        return self.address

    def v2c_credential(self) -> dict[str, str]:
        return {"version": "2c", "community": self.community}

    def v3_credential(self) -> dict[str, str]:
        return {
            "version": "3",
            "user": self.user,
            "auth_protocol": self.auth_protocol,
            "auth_key": self.auth_key,
            "priv_protocol": self.priv_protocol,
            "priv_key": self.priv_key,
        }

    def log(self) -> str:
        path = self.directory / "snmpd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def snmpd_conf(agent: SnmpAgent) -> str:
    return (
        f"agentaddress udp:127.0.0.1:{AGENT_PORT}\n"
        f"rocommunity {agent.community} 127.0.0.1\n"
        f'createUser {agent.user} SHA "{agent.auth_key}" AES "{agent.priv_key}"\n'
        f"rouser {agent.user} priv\n"
        f"sysName {SYS_NAME}\n"
        f"sysDescr {SYS_DESCR}\n"
        f"sysObjectID .{SYS_OBJECT_ID}\n"
        f"sysServices {SYS_SERVICES}\n"
        f"sysLocation {SYS_LOCATION}\n"
        "sysContact lab@example.test\n"
    )


class _Netns:
    """Enters a network namespace in the calling thread only, and comes back."""

    def __init__(self, namespace: str) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.namespace = namespace

    def socket_inside(self) -> socket.socket:
        """A UDP socket that belongs to the namespace."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(labnetns.NETNS_RUN / self.namespace, os.O_RDONLY)
        try:
            if self._libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"cannot enter namespace {self.namespace}")
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            finally:
                if self._libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "cannot return to the test's namespace")
        finally:
            os.close(home)
            os.close(target)


class UdpRelay:
    """Forwards datagrams between 127.0.0.1:`port` here and the agent in its namespace: one
    upstream socket per client, so answers find their way back."""

    def __init__(self, namespace: str, upstream_port: int) -> None:
        self._netns = _Netns(namespace)
        self._upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listener.bind(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._clients: dict[tuple[str, int], socket.socket] = {}
        self._thread = threading.Thread(target=self._run, name="snmp-relay", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._forward()
        except BaseException as exc:  # kept for running_snmpd(), which fails the test with it
            self.error = exc

    def _forward(self) -> None:
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_read, selectors.EVENT_READ, "stop")
        while True:
            for key, _ in self._selector.select():
                if key.data == "stop":
                    return
                if key.data is None:
                    data, client = self.listener.recvfrom(65535)
                    upstream = self._clients.get(client)
                    if upstream is None:
                        upstream = self._netns.socket_inside()
                        upstream.connect(self._upstream)
                        self._clients[client] = upstream
                        self._selector.register(upstream, selectors.EVENT_READ, client)
                    with contextlib.suppress(OSError):
                        upstream.send(data)
                else:
                    with contextlib.suppress(OSError):
                        answer = key.fileobj.recv(65535)  # type: ignore[union-attr]
                        self.listener.sendto(answer, key.data)

    def close(self) -> None:
        if self._thread.is_alive():
            self._wake_write.send(b"x")
            self._thread.join(timeout=10)
        for sock in (*self._clients.values(), self.listener, self._wake_read, self._wake_write):
            sock.close()
        self._selector.close()


def _build_namespace(namespace: str) -> None:
    labnetns.run(["ip", "netns", "add", namespace])
    labnetns.prepare_namespace(namespace)
    ip = labnetns.ip
    ip(namespace, "link", "add", INTERFACE, "type", "veth", "peer", "name", f"{INTERFACE}peer")
    ip(namespace, "link", "set", INTERFACE, "address", INTERFACE_MAC)
    ip(namespace, "addr", "add", f"{INTERFACE_ADDRESS}/24", "dev", INTERFACE)
    ip(namespace, "-6", "addr", "add", f"{INTERFACE_ADDRESS_V6}/64", "dev", INTERFACE, "nodad")
    for name in (INTERFACE, f"{INTERFACE}peer"):
        ip(namespace, "link", "set", name, "up")
    for neighbour in NEIGHBOURS:
        family = "-6" if ":" in neighbour.address else "-4"
        entry = (
            f"neigh add {neighbour.address} lladdr {neighbour.mac} dev {INTERFACE} nud permanent"
        )
        ip(namespace, family, *entry.split())


def _agent_answers(namespace: str, community: str) -> bool:
    """Whether the agent answers a GET of sysName, asked from inside its namespace."""
    # no MIB (-m ""): the answer is read by number
    get = ["snmpget", "-v2c", "-t", "1", "-r", "0", "-On", "-m", "", "-c", community]
    get += [f"127.0.0.1:{AGENT_PORT}", "1.3.6.1.2.1.1.5.0"]
    done = subprocess.run(
        labnetns.in_namespace(namespace, get),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and SYS_NAME in done.stdout


@contextlib.contextmanager
def running_snmpd() -> Iterator[SnmpAgent]:
    """Start snmpd in a new namespace with a relay at 127.0.0.1; remove everything after."""
    labnetns.require_lab_support()
    if not Path(SNMPD).exists():
        raise labnetns.LabUnavailable(
            f"{SNMPD} not found; `make test` installs it (Debian packages snmpd and snmp)"
        )
    labnetns.remove_crashed_labs()
    tag = f"{labnetns.TAG_PREFIX}{secrets.token_hex(3)}"
    namespace = f"{tag}-snmp"
    directory = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    entry = labnetns.RegistryEntry.for_this_process(tag, (namespace,), directory)
    entry.save()
    process: subprocess.Popen[bytes] | None = None
    relay: UdpRelay | None = None
    try:
        _build_namespace(namespace)
        agent = SnmpAgent(
            address="127.0.0.1",
            port=0,
            community=f"community-{secrets.token_hex(8)}",
            user="surveyor-v3",
            auth_protocol="SHA",
            auth_key=f"auth-{secrets.token_hex(8)}",
            priv_protocol="AES",
            priv_key=f"priv-{secrets.token_hex(8)}",
            namespace=namespace,
            directory=directory,
        )
        conf = directory / "snmpd.conf"
        conf.write_text(snmpd_conf(agent))
        conf.chmod(0o600)
        command = [
            *f"{SNMPD} -f -C -c {conf} -Lf {directory / 'snmpd.log'}".split(),
            f"--persistentDir={directory / 'persist'}",
            *["-M", str(directory), "-m", ""],  # no MIB files: nothing to load or warn about
        ]
        process = subprocess.Popen(
            labnetns.in_namespace(namespace, command),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while not _agent_answers(namespace, agent.community):
            if process.poll() is not None or time.monotonic() > deadline:
                raise labnetns.LabUnavailable(f"snmpd did not start in {namespace}:\n{agent.log()}")
            time.sleep(0.05)
        relay = UdpRelay(namespace, AGENT_PORT)
        relay.start()
        yield dataclasses.replace(
            agent,
            port=relay.port,
            secrets_in_use=(agent.community, agent.auth_key, agent.priv_key),
        )
    finally:
        if relay is not None:
            relay.close()
        stop_process(process)
        labnetns.remove_namespace(namespace)
        shutil.rmtree(directory, ignore_errors=True)
        entry.remove()
    if relay is not None and relay.error is not None:
        raise RuntimeError(f"the SNMP relay failed: {relay.error!r}") from relay.error
