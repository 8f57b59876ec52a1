"""Benchmark (b): Surveyor against nmap, on the network lab, 100 common ports.

    .venv/bin/python -m bench.scan_lab [--repeat N] [--rate PPS] [--impairment auto|netem|wire]
                                       [--json-out FILE]

Builds the standard lab (`surveyor.testing.netlab`) and, inside its scanner namespace (no route
out), scans the lab's range (11 hosts, 9 absent addresses) on the `top100` ports, alternately
with `surveyor scan`, `nmap -sT -Pn -n -T4 --max-retries 2`, and `surveyor scan --probes none`
(the port scan alone, for diagnosis), N times each. Prints the probes/s of each (address x
port pairs over wall-clock seconds, process start included), the ratio to nmap, and how the
open-port sets agree with each other and with the lab's ground truth.
Goal: Surveyor finds at least what nmap finds, at >= 1.5x nmap's probes/s.
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
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address
from pathlib import Path

from defusedxml import ElementTree

from surveyor.core.ports import TOP100, format_ports
from surveyor.scan.taskdata import read_task_data
from surveyor.testing.netlab import NetLab, open_lab

RATIO_GOAL = 1.5
NMAP_ARGS = ("-sT", "-Pn", "-n", "-T4", "--max-retries", "2")
SURVEYOR_TOOL = "surveyor"
#: Surveyor without service probes: its port scan alone, as nmap -sT does no service detection.
PORTS_ONLY_TOOL = "surveyor --probes none"
TOOLS = (SURVEYOR_TOOL, PORTS_ONLY_TOOL, "nmap")
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
SCAN_TIMEOUT = 600.0

OpenPorts = set[tuple[str, int]]


@dataclass(frozen=True)
class Run:
    """One timed scan of the lab by one tool."""

    tool: str
    seconds: float  # wall clock of the whole command, process start included
    scan_seconds: float  # the scan's own duration, as the tool reports it
    open_ports: list[tuple[str, int]]


def _addresses(scan_range: str) -> list[str]:
    first, last = (IPv4Address(part) for part in scan_range.split("-"))
    return [str(IPv4Address(value)) for value in range(int(first), int(last) + 1)]


def _timed(lab: NetLab, args: list[str]) -> float:
    started = time.perf_counter()
    done = lab.run_in_scanner(args, timeout=SCAN_TIMEOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def run_surveyor(
    lab: NetLab, ports: str, rate: int | None, workdir: Path, *, service_probes: bool = True
) -> Run:
    output = workdir / "surveyor.jsonl.gz"
    output.unlink(missing_ok=True)
    args = [SURVEYOR, "scan", lab.plan.scan_range, "--ports", ports, "-o", str(output)]
    if rate is not None:
        args += ["--rate", str(rate)]
    if not service_probes:
        args += ["--probes", "none"]
    seconds = _timed(lab, args)
    found: OpenPorts = set()
    scan_seconds = 0.0
    for record in read_task_data(output):
        if record["type"] == "summary":
            scan_seconds = float(record["duration"])
        if record["type"] != "host":
            continue
        for service in record["services"]:
            if service["proto"] == "tcp" and service["state"] == "open":
                found.update((address, int(service["port"])) for address in record["addresses"])
    tool = SURVEYOR_TOOL if service_probes else PORTS_ONLY_TOOL
    return Run(tool, seconds, scan_seconds, sorted(found))


def run_nmap(lab: NetLab, ports: str, workdir: Path) -> Run:
    output = workdir / "nmap.xml"
    # the same addresses, spelled out: nmap writes ranges differently (10.77.0.11-30)
    addresses = _addresses(lab.plan.scan_range)
    args = ["nmap", *NMAP_ARGS, "-p", ports, "-oX", str(output), *addresses]
    seconds = _timed(lab, args)
    found: OpenPorts = set()
    root = ElementTree.parse(output).getroot()
    finished = root.find("runstats/finished")
    scan_seconds = float(finished.get("elapsed", "0")) if finished is not None else 0.0
    for host in root.iter("host"):
        address = host.find("address[@addrtype='ipv4']")
        for port in host.iter("port"):
            state = port.find("state")
            if address is not None and state is not None and state.get("state") == "open":
                found.add((str(address.get("addr")), int(port.get("portid", "0"))))
    return Run("nmap", seconds, scan_seconds, sorted(found))


def _truth(lab: NetLab) -> OpenPorts:
    return {
        (str(host.address), port)
        for host in lab.hosts
        for port in host.plan.open_ports
        if port in TOP100
    }


def _describe(found: OpenPorts, reference: OpenPorts) -> str:
    missed = sorted(reference - found)
    extra = sorted(found - reference)
    parts = [f"{len(found & reference)}/{len(reference)}"]
    if missed:
        parts.append("missed " + ", ".join(f"{a}:{p}" for a, p in missed))
    if extra:
        parts.append("extra " + ", ".join(f"{a}:{p}" for a, p in extra))
    return "; ".join(parts)


def report(lab: NetLab, runs: list[Run], probes: int) -> tuple[str, dict[str, object]]:
    """The table and a JSON-able summary of all runs."""
    truth = _truth(lab)
    by_tool = {tool: [run for run in runs if run.tool == tool] for tool in TOOLS}
    median = {tool: statistics.median(r.seconds for r in by_tool[tool]) for tool in by_tool}
    own = {tool: statistics.median(r.scan_seconds for r in by_tool[tool]) for tool in by_tool}
    rate = {tool: probes / seconds for tool, seconds in median.items()}
    ratio = rate[SURVEYOR_TOOL] / rate["nmap"]
    own_ratio = own["nmap"] / own[SURVEYOR_TOOL] if own[SURVEYOR_TOOL] > 0 else float("inf")
    nmap_union = set().union(*(set(run.open_ports) for run in by_tool["nmap"]))
    surveyor_runs = by_tool[SURVEYOR_TOOL] + by_tool[PORTS_ONLY_TOOL]
    covers = all(nmap_union <= set(run.open_ports) for run in surveyor_runs)
    lines = [
        f"Benchmark (b): lab {lab.plan.scan_range} ({len(_addresses(lab.plan.scan_range))} "
        f"addresses, {len(lab.hosts)} hosts, impairment: {lab.impairment}) x top100 = "
        f"{probes:,} probes; median of {len(by_tool['nmap'])} alternating runs each; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        f"{'tool':<23} {'seconds':>8} {'probes/s':>9} {'own s':>6}  {'runs (s)':<30}  "
        "open ports vs the lab",
    ]
    for tool, items in by_tool.items():
        times = " ".join(f"{run.seconds:.2f}" for run in items)
        agreement = " | ".join(_describe(set(run.open_ports), truth) for run in items)
        lines.append(
            f"{tool:<23} {median[tool]:>8.2f} {rate[tool]:>9,.0f} {own[tool]:>6.2f}  "
            f"{times:<30}  {agreement}"
        )
    mark = "met" if ratio >= RATIO_GOAL and covers else "NOT met"
    lines += [
        f"ratio surveyor/nmap probes/s: {ratio:.2f}x (goal >= {RATIO_GOAL}x); on the scans' "
        f"own durations (process start excluded): {own_ratio:.2f}x; port scan alone "
        f"(--probes none): {rate[PORTS_ONLY_TOOL] / rate['nmap']:.2f}x",
        f"surveyor finds every open port nmap finds, in every run: {'yes' if covers else 'NO'}",
        f"goal {mark}",
    ]
    summary: dict[str, object] = {
        "probes": probes,
        "median_seconds": median,
        "median_scan_seconds": own,
        "own_duration_ratio": own_ratio,
        "probes_per_second": rate,
        "ratio": ratio,
        "surveyor_covers_nmap": covers,
        "runs": [asdict(run) for run in runs],
    }
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (default 3)")
    parser.add_argument("--rate", type=int, default=None, help="surveyor --rate (probes/s)")
    parser.add_argument("--impairment", default="auto", choices=("auto", "netem", "wire"))
    parser.add_argument("--json-out", type=Path, default=None)
    options = parser.parse_args(argv)
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is not installed; `make bench` installs it (Debian package nmap)")
    ports = format_ports(TOP100)
    with (
        tempfile.TemporaryDirectory(prefix="surveyor-bench-lab-") as tmp,
        open_lab(impairment=options.impairment) as lab,
    ):
        workdir = Path(tmp)
        runs: list[Run] = []
        for _ in range(options.repeat):
            runs.append(run_surveyor(lab, ports, options.rate, workdir))
            runs.append(run_nmap(lab, ports, workdir))
            runs.append(run_surveyor(lab, ports, options.rate, workdir, service_probes=False))
        probes = len(_addresses(lab.plan.scan_range)) * len(TOP100)
        table, summary = report(lab, runs, probes)
    print(table)
    if options.json_out is not None:
        options.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
