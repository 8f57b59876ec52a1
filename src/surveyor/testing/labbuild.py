"""The steps that turn a lab plan into namespaces, links, firewall rules and service processes.

Every namespace is created through `NetLab.add_namespace`, and every process through
`NetLab.start`, so whatever a failed build leaves half done, `NetLab.close` removes.
"""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv4Address

from surveyor.testing import labnetns
from surveyor.testing.labcerts import IssuedCertificate, LabCertificates
from surveyor.testing.labinstance import LabHost, LabService, NetLab
from surveyor.testing.labnetns import LabUnavailable, in_namespace, ip
from surveyor.testing.labplan import (
    IMPAIRED_DELAY_MS,
    IMPAIRED_LOSS,
    LAB_SUBNET,
    HostPlan,
    LabPlan,
    ServicePlan,
)
from surveyor.testing.labservices import ServiceConfig, write_config

BRIDGE = "br0"


def netem_problem(namespace: str) -> str | None:
    """Why `tc netem` does not work in this kernel, or None when it does.

    Tried on the loopback of `namespace`, a lab namespace that nothing else uses yet.
    """
    try:
        labnetns.run(["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem"])
    except labnetns.LabCommandError as exc:
        return str(exc)
    labnetns.run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"])
    return None


def _scanner_etc_files(plan: LabPlan) -> dict[str, str]:
    """Reverse DNS in the scanner's namespace answers from /etc/hosts; no resolver is reachable."""
    lines = ["127.0.0.1 localhost"]
    lines += [f"{host.address} {host.name}.lab {host.name}" for host in plan.hosts]
    return {"hosts": "\n".join(lines) + "\n", "resolv.conf": "nameserver 127.0.0.1\n"}


def _filter_ruleset(ports: tuple[int, ...]) -> str:
    port_list = ", ".join(str(port) for port in ports)
    return (
        "table inet svl_lab {\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    tcp dport {{ {port_list} }} drop\n"
        "  }\n"
        "}\n"
    )


class LabBuilder:
    """The steps that turn a plan into namespaces, links, rules and processes."""

    def __init__(self, lab: NetLab, impairment: str) -> None:
        self.lab = lab
        self.requested_impairment = impairment
        self.prefix_len = LAB_SUBNET.prefixlen

    def build(self) -> None:
        lab = self.lab
        lab.add_namespace(lab.switch_namespace)
        ip(lab.switch_namespace, "link", "add", BRIDGE, "type", "bridge")
        ip(lab.switch_namespace, "link", "set", BRIDGE, "up")
        lab.impairment = self._choose_impairment()
        lab.add_namespace(lab.scanner_namespace, _scanner_etc_files(lab.plan))
        self._attach_by_veth(lab.scanner_namespace, "to-scanner")
        self._configure_eth0(lab.scanner_namespace, lab.scanner_address, mac=None)
        certificates = LabCertificates(lab.workdir)
        runners: list[tuple[subprocess.Popen[bytes], str]] = []
        hosts: list[LabHost] = []
        for index, plan in enumerate(lab.plan.hosts):
            namespace = f"{lab.tag}-{plan.name}"
            lab.add_namespace(namespace)
            port_name = f"to-h{index:02d}"
            if plan.impaired and lab.impairment == "wire":
                self._attach_by_wire(namespace, port_name)
            else:
                self._attach_by_veth(namespace, port_name)
            self._configure_eth0(namespace, plan.address, mac=plan.mac)
            if plan.impaired and lab.impairment == "netem":
                self._add_netem(namespace)
            if plan.filtered_ports:
                labnetns.run(
                    in_namespace(namespace, ["nft", "-f", "-"]),
                    stdin=_filter_ruleset(plan.filtered_ports),
                )
            services = tuple(
                LabService(service, self._certificate(certificates, plan, service))
                for service in plan.services
            )
            hosts.append(LabHost(plan, namespace, services))
            runners.append((self._start_services(namespace, plan.name, services), plan.name))
        for process, name in runners:
            lab.wait_ready(process, f"services-{name}")
        lab.hosts = tuple(hosts)

    def _choose_impairment(self) -> str:
        if self.requested_impairment == "wire":
            return "wire"
        problem = netem_problem(self.lab.switch_namespace)
        if problem is None:
            return "netem"
        if self.requested_impairment == "netem":
            raise LabUnavailable(
                f"this kernel cannot run `tc netem` ({problem}); it needs the sch_netem "
                "qdisc (CONFIG_NET_SCH_NETEM), or open the lab with impairment 'wire' or 'auto'"
            )
        return "wire"

    def _attach_by_veth(self, namespace: str, port_name: str) -> None:
        switch = self.lab.switch_namespace
        peer = ["peer", "name", "eth0", "netns", namespace]
        ip(switch, "link", "add", port_name, "type", "veth", *peer)
        ip(switch, "link", "set", port_name, "master", BRIDGE, "up")

    def _attach_by_wire(self, namespace: str, port_name: str) -> None:
        lab = self.lab
        inner = f"{port_name}-in"
        args = [
            sys.executable,
            "-m",
            "surveyor.testing.labwire",
            port_name,
            inner,
            str(IMPAIRED_DELAY_MS),
            str(IMPAIRED_LOSS),
        ]
        wire = lab.start(lab.switch_namespace, args, "wire")
        lab.wait_ready(wire, "wire")
        ip(lab.switch_namespace, "link", "set", inner, "netns", namespace)
        ip(namespace, "link", "set", inner, "name", "eth0")
        ip(lab.switch_namespace, "link", "set", port_name, "master", BRIDGE, "up")

    def _configure_eth0(self, namespace: str, address: IPv4Address, mac: str | None) -> None:
        if mac is not None:
            ip(namespace, "link", "set", "eth0", "address", mac)
        ip(namespace, "addr", "add", f"{address}/{self.prefix_len}", "dev", "eth0")
        ip(namespace, "link", "set", "eth0", "up")

    def _add_netem(self, namespace: str) -> None:
        labnetns.run(
            [
                "tc",
                "-n",
                namespace,
                "qdisc",
                "add",
                "dev",
                "eth0",
                "root",
                "netem",
                "delay",
                f"{IMPAIRED_DELAY_MS}ms",
                "loss",
                f"{IMPAIRED_LOSS * 100:g}%",
            ]
        )

    @staticmethod
    def _certificate(
        certificates: LabCertificates, host: HostPlan, service: ServicePlan
    ) -> IssuedCertificate | None:
        if service.certificate is None:
            return None
        return certificates.issue(service.certificate, f"{host.name}-{service.port}")

    def _start_services(
        self, namespace: str, name: str, services: tuple[LabService, ...]
    ) -> subprocess.Popen[bytes]:
        configs = [
            ServiceConfig(
                port=service.port,
                kind=str(service.plan.kind),
                banner=service.plan.banner,
                http_title=service.plan.http_title,
                cert_file=str(service.certificate.cert_file) if service.certificate else None,
                key_file=str(service.certificate.key_file) if service.certificate else None,
            )
            for service in services
        ]
        config_file = self.lab.workdir / f"services-{name}.json"
        write_config(config_file, configs)
        args = [sys.executable, "-m", "surveyor.testing.labservices", str(config_file)]
        return self.lab.start(namespace, args, f"services-{name}")
