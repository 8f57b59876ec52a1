"""Benchmark (a): Surveyor's TCP connect scan against nmap's, on loopback.

    .venv/bin/python -m bench.scan [--targets 127.0.0.0/16] [--ports 22,80,443,8080]
                                   [--listeners 64] [--repeat 3] [--max-sockets N]
                                   [--json-out FILE]

Starts listeners on a few 127.0.x.y addresses on those ports (in a process of their own), then
scans the targets alternately with `surveyor scan --no-ping --probes none` (every address, no
service probes, no reverse DNS) and `nmap -sT -Pn -n -T4` (the same), N times each. Prints the
probes/s of both (address x port pairs over wall-clock seconds, process start included), their
ratio, the CPU time each used (which depends far less on what else the machine runs), and
whether the open-port sets are identical to each other and to the listeners.
Goal: identical open ports, at >= 1.0x nmap's probes/s. Targets must lie in 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from pathlib import Path

from defusedxml import ElementTree

from surveyor.core.ports import parse_ports
from surveyor.scan.taskdata import read_task_data

RATIO_GOAL = 1.0
NMAP_ARGS = ("-sT", "-Pn", "-n", "-T4")
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
SCAN_TIMEOUT = 900.0
LOOPBACK = IPv4Network("127.0.0.0/8")

OpenPorts = set[tuple[str, int]]


@dataclass(frozen=True)
class Run:
    """One timed scan by one tool."""

    tool: str
    seconds: float  # wall clock of the whole command, process start included
    cpu_seconds: float  # user + system time of the command and its children
    scan_seconds: float  # the scan's own duration, as the tool reports it
    probes_sent: int | None  # what the tool says it sent (surveyor only)
    open_ports: list[tuple[str, int]]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of a command (CPU: its own and its children's)."""
    cpu, started = _cpu_of_children(), time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=SCAN_TIMEOUT, check=False)
    seconds, cpu = time.perf_counter() - started, _cpu_of_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, cpu


def run_surveyor(targets: str, ports: str, max_sockets: int | None, workdir: Path) -> Run:
    output = workdir / "surveyor.jsonl.gz"
    output.unlink(missing_ok=True)
    args = [SURVEYOR, "scan", targets, "--ports", ports, "--no-ping", "--probes", "none"]
    args += ["--rate", "1000000", "-o", str(output)]
    if max_sockets is not None:
        args += ["--max-sockets", str(max_sockets)]
    seconds, cpu = _timed(args)
    found: OpenPorts = set()
    scan_seconds, probes = 0.0, None
    for record in read_task_data(output):
        if record["type"] == "summary":
            scan_seconds, probes = float(record["duration"]), int(record["probes_sent"])
        elif record["type"] == "host":
            for service in record["services"]:
                found.update((address, int(service["port"])) for address in record["addresses"])
    return Run("surveyor", seconds, cpu, scan_seconds, probes, sorted(found))


def run_nmap(targets: str, ports: str, workdir: Path) -> Run:
    output = workdir / "nmap.xml"
    seconds, cpu = _timed(["nmap", *NMAP_ARGS, "-p", ports, "-oX", str(output), targets])
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
    return Run("nmap", seconds, cpu, scan_seconds, None, sorted(found))


def choose_listeners(network: IPv4Network, ports: tuple[int, ...], count: int) -> list[str]:
    """`count` address:port pairs spread over the network (never .0, .1 or .255 of a /24, and
    never 127.0.0.1, where the machine's own services live), the same on every run."""
    chooser = random.Random(f"{network}:{ports}:{count}")
    chosen: set[str] = set()
    while len(chosen) < min(count, network.num_addresses):
        address = network[chooser.randrange(network.num_addresses)]
        if int(address) & 0xFF in (0, 1, 255):
            continue
        chosen.add(f"{address}:{chooser.choice(ports)}")
    return sorted(chosen)


def start_listeners(targets: list[str]) -> tuple[subprocess.Popen[str], OpenPorts]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._scan_listeners", *targets],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    bound = json.loads(process.stdout.readline())
    listening = {(t.rpartition(":")[0], int(t.rpartition(":")[2])) for t in bound}
    return process, listening


def _describe(found: OpenPorts, reference: OpenPorts) -> str:
    missed, extra = sorted(reference - found), sorted(found - reference)
    parts = [f"{len(found & reference)}/{len(reference)}"]
    if missed:
        parts.append(f"missed {len(missed)}: " + ", ".join(f"{a}:{p}" for a, p in missed[:5]))
    if extra:
        parts.append(f"extra {len(extra)}: " + ", ".join(f"{a}:{p}" for a, p in extra[:5]))
    return "; ".join(parts)


def report(
    targets: str, ports: str, listening: OpenPorts, runs: list[Run], probes: int
) -> tuple[str, dict[str, object]]:
    """The table and a JSON-able summary of all runs."""
    by_tool = {tool: [run for run in runs if run.tool == tool] for tool in ("surveyor", "nmap")}
    median = {tool: statistics.median(r.seconds for r in by_tool[tool]) for tool in by_tool}
    own = {tool: statistics.median(r.scan_seconds for r in by_tool[tool]) for tool in by_tool}
    cpu = {tool: statistics.median(r.cpu_seconds for r in by_tool[tool]) for tool in by_tool}
    rate = {tool: probes / seconds for tool, seconds in median.items()}
    ratio = rate["surveyor"] / rate["nmap"]
    own_ratio = own["nmap"] / own["surveyor"] if own["surveyor"] > 0 else float("inf")
    reference = set(by_tool["nmap"][0].open_ports)
    identical = all(set(run.open_ports) == reference for run in runs)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"Benchmark (a): {targets} x {ports} = {probes:,} probes, {len(listening)} listeners; "
        f"median of {len(by_tool['nmap'])} alternating runs each; load average {load}",
        f"{'tool':<9} {'seconds':>8} {'probes/s':>9} {'own s':>6} {'cpu s':>6}  "
        f"{'runs (s)':<20}  open ports vs the listeners",
    ]
    for tool, items in by_tool.items():
        times = " ".join(f"{run.seconds:.2f}" for run in items)
        agreement = " | ".join(_describe(set(run.open_ports), listening) for run in items)
        lines.append(
            f"{tool:<9} {median[tool]:>8.2f} {rate[tool]:>9,.0f} {own[tool]:>6.2f} "
            f"{cpu[tool]:>6.2f}  {times:<20}  {agreement}"
        )
    mark = "met" if ratio >= RATIO_GOAL and identical else "NOT met"
    lines += [
        f"ratio surveyor/nmap probes/s: {ratio:.2f}x (goal >= {RATIO_GOAL}x); on the scans' "
        f"own durations (process start excluded): {own_ratio:.2f}x",
        f"open-port sets identical in every run of both tools: {'yes' if identical else 'NO'}",
        f"goal {mark}",
    ]
    summary: dict[str, object] = {
        "targets": targets,
        "ports": ports,
        "probes": probes,
        "listeners": sorted(listening),
        "median_seconds": median,
        "median_scan_seconds": own,
        "median_cpu_seconds": cpu,
        "probes_per_second": rate,
        "ratio": ratio,
        "own_duration_ratio": own_ratio,
        "identical_open_ports": identical,
        "load_average": os.getloadavg(),
        "runs": [asdict(run) for run in runs],
    }
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="127.0.0.0/16", help="a network in 127.0.0.0/8")
    parser.add_argument("--ports", default="22,80,443,8080")
    parser.add_argument("--listeners", type=int, default=64, help="open ports to plant")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (default 3)")
    parser.add_argument("--max-sockets", type=int, default=None, help="surveyor --max-sockets")
    parser.add_argument("--json-out", type=Path, default=None)
    options = parser.parse_args(argv)
    network = IPv4Network(options.targets, strict=False)
    if not network.subnet_of(LOOPBACK):
        raise SystemExit(f"{options.targets}: this benchmark scans loopback (127.0.0.0/8) only")
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is not installed; `make bench` installs it (Debian package nmap)")
    ports = parse_ports(options.ports)
    port_text = ",".join(map(str, ports))
    targets = str(network)
    listeners, listening = start_listeners(choose_listeners(network, ports, options.listeners))
    try:
        with tempfile.TemporaryDirectory(prefix="surveyor-bench-scan-") as tmp:
            workdir = Path(tmp)
            runs: list[Run] = []
            for turn in range(options.repeat):
                # alternate who goes first, so neither always meets a warmer machine
                order = ("surveyor", "nmap") if turn % 2 == 0 else ("nmap", "surveyor")
                for tool in order:
                    if tool == "surveyor":
                        runs.append(run_surveyor(targets, port_text, options.max_sockets, workdir))
                    else:
                        runs.append(run_nmap(targets, port_text, workdir))
    finally:
        assert listeners.stdin is not None
        listeners.stdin.close()
        listeners.wait(10)
    table, summary = report(targets, port_text, listening, runs, network.num_addresses * len(ports))
    print(table)
    if options.json_out is not None:
        options.json_out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
