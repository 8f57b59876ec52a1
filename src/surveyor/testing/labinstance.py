"""A built lab: its hosts with their ground truth, its namespaces and processes, its teardown.

`netlab.open_lab` creates a `NetLab` and `labbuild` fills it; tests and benchmarks use it to run
commands in the scanner's namespace, probe the lab, and look up what each host should show.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from surveyor.testing import labnetns
from surveyor.testing.labcerts import IssuedCertificate
from surveyor.testing.labnetns import in_namespace
from surveyor.testing.labplan import (
    SCANNER_ADDRESS,
    HostPlan,
    LabPlan,
    PortState,
    ServiceKind,
    ServicePlan,
    find_host,
    find_host_at,
)

STARTUP_SECONDS = 20.0
STOP_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class LabService:
    """A running service and what a scanner should report about it."""

    plan: ServicePlan
    certificate: IssuedCertificate | None

    @property
    def port(self) -> int:
        return self.plan.port


@dataclass(frozen=True, slots=True)
class LabHost:
    """A running lab host: its namespace and the ground truth of its ports."""

    plan: HostPlan
    namespace: str
    services: tuple[LabService, ...]

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def hostname(self) -> str:
        """The name reverse DNS gives for the host inside the scanner's namespace."""
        return f"{self.plan.name}.lab"

    @property
    def address(self) -> IPv4Address:
        return self.plan.address

    def service(self, port: int) -> LabService:
        for service in self.services:
            if service.port == port:
                return service
        raise KeyError(f"{self.name} has no service on port {port}")

    def port_state(self, port: int) -> PortState:
        return self.plan.port_state(port)


class NetLab:
    """A built lab; `open_lab` creates it, `close` (idempotent) removes every trace of it."""

    def __init__(self, plan: LabPlan, tag: str, workdir: Path) -> None:
        self.plan = plan
        self.tag = tag
        self.workdir = workdir
        self.switch_namespace = f"{tag}-sw"
        self.scanner_namespace = f"{tag}-scan"
        self.scanner_address = SCANNER_ADDRESS
        self.hosts: tuple[LabHost, ...] = ()
        #: How the impaired host is slowed down: "netem" or "wire" (see `labwire`).
        self.impairment = ""
        self._processes: list[subprocess.Popen[bytes]] = []
        self._created: list[str] = []
        self._closed = False
        self._lock = threading.Lock()

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace this lab creates, hosts first and the switch last."""
        hosts = tuple(f"{self.tag}-{host.name}" for host in self.plan.hosts)
        return (*hosts, self.scanner_namespace, self.switch_namespace)

    def registry_entry(self) -> labnetns.RegistryEntry:
        return labnetns.RegistryEntry.for_this_process(self.tag, self.namespaces, self.workdir)

    def host(self, name: str) -> LabHost:
        return find_host(self.hosts, name)

    def host_at(self, address: IPv4Address | str) -> LabHost:
        return find_host_at(self.hosts, address)

    def scanner_command(self, args: Sequence[str]) -> list[str]:
        """The argument list that runs `args` in the scanner's namespace."""
        return in_namespace(self.scanner_namespace, args)

    def run_in_scanner(
        self, args: Sequence[str], *, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `args` in the scanner's namespace and return its result (never raises on status)."""
        return subprocess.run(
            self.scanner_command(args), capture_output=True, text=True, timeout=timeout, check=False
        )

    def probe(
        self, targets: Sequence[tuple[IPv4Address | str, int]], *, timeout: float = 2.0
    ) -> dict[tuple[str, int], str]:
        """Connect from the scanner's namespace to each `(address, port)`; return each state."""
        results = self._labprobe(["connect", str(timeout)], targets, timeout)
        return {target: facts["state"] for target, facts in results.items()}

    def grab(
        self, kind: ServiceKind, targets: Sequence[tuple[IPv4Address | str, int]]
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Read banners, HTTP facts or TLS facts from the scanner's namespace (see `labprobe`)."""
        return self._labprobe(["grab", "5.0", str(kind)], targets, 5.0)

    def _labprobe(
        self, command: list[str], targets: Sequence[tuple[IPv4Address | str, int]], timeout: float
    ) -> dict[tuple[str, int], dict[str, Any]]:
        names = [f"{address}:{port}" for address, port in targets]
        args = [sys.executable, "-m", "surveyor.testing.labprobe", *command, *names]
        done = self.run_in_scanner(args, timeout=timeout + 30.0)
        if done.returncode != 0:
            raise labnetns.LabCommandError(f"labprobe {command[0]} failed: {done.stderr}")
        results = json.loads(done.stdout)
        return {
            (str(address), port): results[name]
            for (address, port), name in zip(targets, names, strict=True)
        }

    def scanner_packets_sent(self) -> int:
        """How many packets the scanner's namespace has sent into the lab so far.

        Traffic to a relayed console stays on the namespace's loopback and is not counted, so
        this counter moves only while something in the namespace (a scan) talks to the lab.
        """
        links = json.loads(labnetns.ip(self.scanner_namespace, "-s", "-j", "link", "show", "eth0"))
        return int(links[0]["stats64"]["tx"]["packets"])

    def reach_loopback_port(self, port: int) -> str:
        """Let the scanner's namespace reach 127.0.0.1:`port` of the caller's namespace.

        Inside the scanner's namespace the service then answers at the returned base URL
        (`http://127.0.0.1:PORT`), through a Unix socket relay (`labrelay`): no route is added.
        """
        socket_path = str(self.workdir / f"relay-{port}.sock")
        relay = [sys.executable, "-m", "surveyor.testing.labrelay"]
        outside = self.start(None, [*relay, "listen-unix", socket_path, str(port)], f"relay-{port}")
        self.wait_ready(outside, f"relay-{port}")
        inside_args = [*relay, "listen-tcp", str(port), socket_path]
        inside = self.start(self.scanner_namespace, inside_args, f"relay-{port}-scanner")
        self.wait_ready(inside, f"relay-{port}-scanner")
        return f"http://127.0.0.1:{port}"

    def add_namespace(self, name: str, etc_files: dict[str, str] | None = None) -> None:
        """Create one of this lab's namespaces; `close` deletes it."""
        labnetns.run(["ip", "netns", "add", name])
        self._created.append(name)
        labnetns.prepare_namespace(name, etc_files)

    def start(
        self, namespace: str | None, args: Sequence[str], log_name: str
    ) -> subprocess.Popen[bytes]:
        """Start a lab process in `namespace` (None: the caller's); `close` stops it."""
        log = self.workdir / f"{log_name}.log"
        command = list(args) if namespace is None else in_namespace(namespace, args)
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        self._processes.append(process)
        return process

    def wait_ready(self, process: subprocess.Popen[bytes], log_name: str) -> None:
        log = self.workdir / f"{log_name}.log"
        labnetns.wait_for_line(process, "ready", STARTUP_SECONDS, log)

    def close(self) -> None:
        """Stop every lab process, delete every namespace and file of the lab. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for process in self._processes:
            _stop(process)
        # only what this lab created: a namespace that already existed belongs to someone else
        for namespace in reversed(self._created):
            labnetns.remove_namespace(namespace)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.registry_entry().remove()
        atexit.unregister(self.close)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # Closing stdin asks the process to leave; kill it if it does not.
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)
