"""A network lab whose hosts run real Debian servers, for measuring what a scanner identifies.

    with open_daemon_lab() as lab:
        lab.net.run_in_scanner([surveyor, "scan", scan_range(), "-o", out])

The topology is the network lab's (`netlab`): a bridge in `<tag>-sw`, the scanner in
`<tag>-scan` at the lab's `SCANNER_ADDRESS` with no route out, one namespace per host of
`DAEMON_HOSTS`. In each host's namespace a `daemonrun` process prepares and runs that host's
servers (`daemonconf`: OpenSSH, nginx, Apache, lighttpd, Exim, Dovecot, vsftpd, MariaDB,
PostgreSQL, Redis, Samba, BIND, Net-SNMP) from the lab's temporary folder. All hosts start at
once; the lab is ready when every server's ports are up and its servers have stayed up.

Teardown is the network lab's: the runners stop their servers, then every namespace is deleted
(which ends whatever still runs in it) and the folder removed, on any exit, SIGTERM included; a
run killed outright is cleaned up by the next lab. The truth about each service (`Truth`:
product and upstream version) comes from `dpkg-query`.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from surveyor.testing import labnetns
from surveyor.testing.daemonconf import HostFolder, TlsFiles, setup
from surveyor.testing.daemonplan import (
    APACHE,
    DAEMON_HOSTS,
    NGINX,
    DaemonHost,
    Truth,
    ground_truth,
)
from surveyor.testing.daemonrun import Command, HostRun
from surveyor.testing.labbuild import LabBuilder, _scanner_etc_files
from surveyor.testing.labcerts import IssuedCertificate, LabCertificates
from surveyor.testing.labinstance import NetLab
from surveyor.testing.labnetns import LabUnavailable
from surveyor.testing.labplan import CertificatePlan, HostPlan, LabPlan
from surveyor.testing.netlab import _sigterm_as_exit, new_tag

#: How long a host may take to prepare and start its servers (MariaDB's first start is the
#: slowest, a few seconds on an idle machine).
READY_SECONDS = 180.0

__all__ = ["DaemonLab", "LabUnavailable", "open_daemon_lab"]


@dataclass(frozen=True, slots=True)
class DaemonLab:
    """A built daemon lab: the network lab it lives in, its hosts, the truth about them."""

    net: NetLab
    hosts: tuple[DaemonHost, ...]
    truth: dict[str, Truth]
    certificates: dict[tuple[str, int], IssuedCertificate]

    def truth_of(self, host: DaemonHost, port: int) -> Truth:
        return self.truth[host.daemon_on(port).key]


def _plan(hosts: tuple[DaemonHost, ...]) -> LabPlan:
    """The network lab's view: the hosts' names and addresses; `daemonrun` serves them."""
    plans = tuple(HostPlan(host.name, host.address, ()) for host in hosts)
    return LabPlan(hosts=plans, absent_addresses=())


class _DaemonBuilder(LabBuilder):
    def __init__(self, lab: NetLab, hosts: tuple[DaemonHost, ...]) -> None:
        super().__init__(lab, "wire")
        self.hosts = hosts
        self.certificates: dict[tuple[str, int], IssuedCertificate] = {}

    def build(self) -> None:
        lab = self.lab
        lab.add_namespace(lab.switch_namespace)
        labnetns.ip(lab.switch_namespace, "link", "add", "br0", "type", "bridge")
        labnetns.ip(lab.switch_namespace, "link", "set", "br0", "up")
        lab.add_namespace(lab.scanner_namespace, _scanner_etc_files(lab.plan))
        self._attach_by_veth(lab.scanner_namespace, "to-scanner")
        self._configure_eth0(lab.scanner_namespace, lab.scanner_address, mac=None)
        # the servers' users (www-data, postgres, mysql, ...) reach their files through here
        lab.workdir.chmod(0o711)
        issuer = LabCertificates(lab.workdir)
        runners = []
        for index, (host, plan) in enumerate(zip(self.hosts, lab.plan.hosts, strict=True)):
            namespace = f"{lab.tag}-{host.name}"
            lab.add_namespace(namespace)
            self._attach_by_veth(namespace, f"to-h{index:02d}")
            self._configure_eth0(namespace, host.address, mac=plan.mac)
            run = self._host_run(host, issuer)
            config = lab.workdir / f"daemons-{host.name}.json"
            run.write(config)
            args = [sys.executable, "-m", "surveyor.testing.daemonrun", str(config)]
            runners.append((lab.start(namespace, args, f"daemons-{host.name}"), host.name))
        failures = []
        for process, name in runners:
            log = lab.workdir / f"daemons-{name}.log"
            try:
                labnetns.wait_for_line(process, "ready", READY_SECONDS, log)
            except labnetns.LabCommandError as exc:
                failures.append(f"host {name}: {exc}")
        if failures:
            raise labnetns.LabCommandError("\n".join(failures))
        lab.hosts = ()

    def _host_run(self, host: DaemonHost, issuer: LabCertificates) -> HostRun:
        root = self.lab.workdir / host.name
        root.mkdir(mode=0o755)
        folder = HostFolder(root, host.name, host.address, self._tls(host, issuer))
        prepare: list[Command] = []
        servers: list[Command] = []
        for daemon in host.daemons:
            found = setup(daemon, folder)
            prepare.extend(found.prepare)
            servers.extend(found.servers)
        logs = folder.folder("logs")
        return HostRun(
            address=str(host.address),
            logs=str(logs),
            prepare=tuple(prepare),
            servers=tuple(servers),
            tcp_ports=host.tcp_ports,
            udp_ports=tuple(port for daemon in host.daemons for port in daemon.udp_ports),
        )

    def _tls(self, host: DaemonHost, issuer: LabCertificates) -> TlsFiles | None:
        """nginx presents a chain (its certificate and the lab CA), Apache a self-signed one."""
        chained = NGINX in host.daemons
        if not chained and APACHE not in host.daemons:
            return None
        name = f"{host.name}.lab"
        plan = CertificatePlan(name, (name, f"www.{name}"), signed_by_lab_ca=chained)
        issued = issuer.issue(plan, f"{host.name}-443")
        self.certificates[(host.name, 443)] = issued
        chain = issued.cert_file.read_bytes()
        if chained:
            chain += issuer.ca_certificate.public_bytes(serialization.Encoding.PEM)
        chain_file = self.lab.workdir / f"{host.name}-443-chain.crt"
        chain_file.write_bytes(chain)
        chain_file.chmod(0o644)
        return TlsFiles(chain_file, issued.key_file)


@contextlib.contextmanager
def open_daemon_lab(
    hosts: tuple[DaemonHost, ...] = DAEMON_HOSTS, *, tag: str | None = None
) -> Iterator[DaemonLab]:
    """Build the daemon lab (`hosts`: all of `DAEMON_HOSTS`, or some of them, or hosts of
    their kind), yield it, and always remove it (see the module's text).

    Raises `LabUnavailable` when this machine cannot build a lab (not root, no `ip`), and
    `LookupError` when a server's Debian package is missing.
    """
    tag = tag or new_tag()
    if not re.fullmatch(rf"{labnetns.TAG_PREFIX}[0-9a-f]{{6}}", tag):
        raise ValueError(f"a lab tag is {labnetns.TAG_PREFIX} and 6 hex digits, not {tag!r}")
    labnetns.require_lab_support()
    truth = ground_truth()
    labnetns.remove_crashed_labs()
    if labnetns.namespaces_of_lab(tag) or (labnetns.REGISTRY / f"{tag}.json").exists():
        raise ValueError(f"the lab tag {tag} is in use")
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    net = NetLab(_plan(hosts), tag, workdir)
    with _sigterm_as_exit():
        net.registry_entry().save()
        atexit.register(net.close)
        try:
            builder = _DaemonBuilder(net, hosts)
            builder.build()
            yield DaemonLab(net, hosts, truth, builder.certificates)
        finally:
            net.close()
