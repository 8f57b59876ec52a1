"""Benchmark: what Surveyor names on real Debian servers, against nmap's service detection.

    .venv/bin/python -m bench.identify [--repeat N] [--json-out FILE]

Builds the daemon lab (`surveyor.testing.daemonlab`: eleven hosts running OpenSSH, nginx,
Apache, lighttpd, Exim, Dovecot, vsftpd, MariaDB, PostgreSQL, Redis, Samba, BIND and Net-SNMP
from Debian's packages) and, from its scanner namespace (no route out), scans its hosts on
the lab's TCP ports, alternately with `surveyor scan` (default probes), `nmap -sT -sV
--version-light` and `nmap -sT -sV` (default intensity), N times each. For each tool it
reports the share of open services whose product is named right, the share whose version is
named right (of all open services, and of those whose server tells its version), the hosts
whose OS family is right, and the wall time, with the load average beside it; then which
services one tool names and the other does not. The truth is `dpkg-query`'s. Run as root,
Surveyor reads the TCP/IP stack hints of its SYN-ACKs too (`scan/stack.py`), as nmap's `-sT`
reads nothing of the kind.

Goal (issue 16): Surveyor names product and version right at least as often as
`nmap -sV --version-light`, in at most 1/5 of its time, and the OS family right for >= 90 %
of the hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from defusedxml import ElementTree

from surveyor.core.identify import STACK_ATTRIBUTE, identify
from surveyor.core.ports import format_ports
from surveyor.processing.records import parse_host
from surveyor.scan.taskdata import read_task_data
from surveyor.testing.daemonlab import DaemonLab, open_daemon_lab
from surveyor.testing.daemonplan import DAEMON_PORTS, OS_FAMILY_PATTERN, scan_range

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
SURVEYOR_TOOL = "surveyor scan"
NMAP_LIGHT = "nmap -sT -sV --version-light"
NMAP_DEFAULT = "nmap -sT -sV"
TOOLS = (SURVEYOR_TOOL, NMAP_LIGHT, NMAP_DEFAULT)
NMAP_ARGS = {NMAP_LIGHT: ("-sT", "-sV", "--version-light"), NMAP_DEFAULT: ("-sT", "-sV")}
SCAN_TIMEOUT = 900.0
TIME_SHARE_GOAL = 0.2
OS_GOAL = 0.9

#: (address, port) -> (product text, version text) as the tool names them.
Named = dict[str, tuple[str, str]]


@dataclass
class Run:
    """One timed scan of the daemon lab by one tool, and what it named."""

    tool: str
    seconds: float
    load: float  # the 1-minute load average when the run started
    services: Named = field(default_factory=dict)  # "address:port" -> (product, version)
    systems: dict[str, str] = field(default_factory=dict)  # address -> OS text


@dataclass(frozen=True)
class Score:
    services: int
    found: int
    product: int
    version: int
    version_told: int  # of the services whose server tells its version
    told: int
    hosts: int
    os_family: int
    product_right: frozenset[str]
    version_right: frozenset[str]


def _timed(lab: DaemonLab, args: list[str]) -> tuple[float, float]:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = lab.net.run_in_scanner(args, timeout=SCAN_TIMEOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, load


def run_surveyor(lab: DaemonLab, workdir: Path) -> Run:
    output = workdir / "surveyor.jsonl.gz"
    output.unlink(missing_ok=True)
    ports = format_ports(DAEMON_PORTS)
    seconds, load = _timed(lab, [SURVEYOR, "scan", scan_range(), "-p", ports, "-o", str(output)])
    run = Run(SURVEYOR_TOOL, seconds, load)
    for line, record in enumerate(read_task_data(output), start=1):
        if record["type"] != "host":
            continue
        observation = parse_host(record, line)
        details = dict(observation.details.attributes) if observation.details else {}
        found = identify(observation.services, stack=details.get(STACK_ATTRIBUTE, ""))
        services = found.services or {}
        for address in record["addresses"]:
            run.systems[address] = found.os
            for service in observation.services:
                if service.state != "open":
                    continue
                identity = services.get(service.key)
                named = (identity.product, identity.version) if identity else ("", "")
                run.services[f"{address}:{service.port}"] = named
    return run


def run_nmap(lab: DaemonLab, tool: str, workdir: Path) -> Run:
    output = workdir / "nmap.xml"
    addresses = [str(host.address) for host in lab.hosts]
    args = ["nmap", *NMAP_ARGS[tool], "-n", "-p", format_ports(DAEMON_PORTS)]
    seconds, load = _timed(lab, [*args, "-oX", str(output), *addresses])
    run = Run(tool, seconds, load)
    for host in ElementTree.parse(output).getroot().iter("host"):
        element = host.find("address[@addrtype='ipv4']")
        if element is None:
            continue
        address = str(element.get("addr"))
        systems: Counter[str] = Counter()
        for port in host.iter("port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            service = port.find("service")
            product = version = ""
            if service is not None:
                product = service.get("product", "")
                version = " ".join(
                    part for part in (service.get("version"), service.get("extrainfo")) if part
                )
                if service.get("ostype"):
                    systems[service.get("ostype", "")] += 1
            run.services[f"{address}:{port.get('portid')}"] = (product, version)
        run.systems[address] = systems.most_common(1)[0][0] if systems else ""
    return run


def score(lab: DaemonLab, run: Run) -> Score:
    product_right: set[str] = set()
    version_right: set[str] = set()
    services = found = told = version_told = 0
    for host in lab.hosts:
        for port in host.tcp_ports:
            key = f"{host.address}:{port}"
            truth = lab.truth_of(host, port)
            services += 1
            told += truth.daemon.announces_version
            if key not in run.services:
                continue
            found += 1
            product, version = run.services[key]
            if product and truth.names_product(f"{product} {version}"):
                product_right.add(key)
                if truth.names_version(version):
                    version_right.add(key)
                    version_told += truth.daemon.announces_version
    os_right = sum(
        1
        for host in lab.hosts
        if OS_FAMILY_PATTERN.search(run.systems.get(str(host.address), "") or "")
    )
    return Score(
        services=services,
        found=found,
        product=len(product_right),
        version=len(version_right),
        version_told=version_told,
        told=told,
        hosts=len(lab.hosts),
        os_family=os_right,
        product_right=frozenset(product_right),
        version_right=frozenset(version_right),
    )


def _name(lab: DaemonLab, key: str) -> str:
    address, port = key.split(":")
    host = next(host for host in lab.hosts if str(host.address) == address)
    return f"{host.name}:{port} ({host.daemon_on(int(port)).key})"


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} {100 * part / whole:3.0f}%" if whole else "-"


def report(lab: DaemonLab, runs: list[Run], build_seconds: float) -> tuple[str, dict[str, object]]:
    by_tool = {tool: [run for run in runs if run.tool == tool] for tool in TOOLS}
    last = {tool: score(lab, items[-1]) for tool, items in by_tool.items()}
    median = {tool: statistics.median(r.seconds for r in items) for tool, items in by_tool.items()}
    truth = {daemon: lab.truth[daemon] for daemon in sorted(lab.truth)}
    lines = [
        f"Benchmark: identification on the daemon lab ({len(lab.hosts)} hosts, "
        f"{last[SURVEYOR_TOOL].services} open TCP services on ports {format_ports(DAEMON_PORTS)};"
        f" built in {build_seconds:.1f} s); median of {len(by_tool[SURVEYOR_TOOL])} alternating "
        f"runs each; {os.cpu_count()} CPUs",
        "packages: " + ", ".join(f"{t.daemon.package} {t.debian_version}" for t in truth.values()),
        f"{'tool':<30} {'found':>7} {'product right':>14} {'version right':>14} "
        f"{'of told':>12} {'OS family':>11} {'seconds':>8}  {'runs (s @ load)'}",
    ]
    for tool, items in by_tool.items():
        got = last[tool]
        runs_text = " ".join(f"{r.seconds:.2f}@{r.load:.1f}" for r in items)
        lines.append(
            f"{tool:<30} {got.found:>3}/{got.services:<3} {_share(got.product, got.services):>14} "
            f"{_share(got.version, got.services):>14} {_share(got.version_told, got.told):>12} "
            f"{_share(got.os_family, got.hosts):>11} {median[tool]:>8.2f}  {runs_text}"
        )
    ours, light = last[SURVEYOR_TOOL], last[NMAP_LIGHT]
    time_share = median[SURVEYOR_TOOL] / median[NMAP_LIGHT]
    goals = {
        "product": ours.product >= light.product,
        "version": ours.version >= light.version,
        "time": time_share <= TIME_SHARE_GOAL,
        "os": ours.os_family >= OS_GOAL * ours.hosts,
    }
    lines.append(
        f"surveyor vs {NMAP_LIGHT}: product {ours.product} vs {light.product} "
        f"({'met' if goals['product'] else 'NOT met'}), version {ours.version} vs {light.version} "
        f"({'met' if goals['version'] else 'NOT met'}), time {time_share:.2f}x of nmap's "
        f"(goal <= {TIME_SHARE_GOAL}; {'met' if goals['time'] else 'NOT met'}), OS family "
        f"{ours.os_family}/{ours.hosts} (goal >= {OS_GOAL:.0%}; "
        f"{'met' if goals['os'] else 'NOT met'})"
    )
    for tool in (NMAP_LIGHT, NMAP_DEFAULT):
        theirs = last[tool]
        for what, mine, other in (
            ("product", ours.product_right, theirs.product_right),
            ("version", ours.version_right, theirs.version_right),
        ):
            only_them = sorted(_name(lab, key) for key in other - mine)
            only_us = sorted(_name(lab, key) for key in mine - other)
            lines.append(
                f"{what} named right by {tool} only: {', '.join(only_them) or 'none'}; "
                f"by surveyor only: {', '.join(only_us) or 'none'}"
            )
    summary: dict[str, object] = {
        "median_seconds": median,
        "scores": {
            tool: {k: v for k, v in asdict(got).items() if not isinstance(v, frozenset)}
            for tool, got in last.items()
        },
        "goals": goals,
        "packages": {key: t.debian_version for key, t in truth.items()},
        "runs": [asdict(run) for run in runs],
    }
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (default 1)")
    parser.add_argument("--json-out", type=Path, default=None)
    options = parser.parse_args(argv)
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is not installed; `make bench` installs it (Debian package nmap)")
    with tempfile.TemporaryDirectory(prefix="surveyor-bench-identify-") as tmp:
        started = time.perf_counter()
        with open_daemon_lab() as lab:
            build_seconds = time.perf_counter() - started
            workdir = Path(tmp)
            runs: list[Run] = []
            for _ in range(options.repeat):
                runs.append(run_surveyor(lab, workdir))
                runs.append(run_nmap(lab, NMAP_LIGHT, workdir))
                runs.append(run_nmap(lab, NMAP_DEFAULT, workdir))
            table, summary = report(lab, runs, build_seconds)
    print(table)
    if options.json_out is not None:
        options.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
