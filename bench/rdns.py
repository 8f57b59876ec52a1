"""Benchmark: reverse DNS of a /20, Surveyor's resolver against nmap's, on one local server.

    .venv/bin/python -m bench.rdns [--network 127.80.0.0/20] [--repeat 3] [--json-out FILE]

Starts `surveyor.testing.ptr_server` in a process of its own on 127.0.0.153:53 (nmap's
`--dns-servers` takes no port), serving a PTR name for every address of the network, with
faults a real resolver has: every 10th address is answered only after 0.6 s, every 20th
loses its first query, and every 100th is never answered. Then, alternately and N times each:

- **surveyor**: the scan's reverse lookups (`reverse_dns.ReverseLookups` with the scan's
  default settings: 64 at once, 2 s per lookup) of every address, pointed at the server;
- **surveyor scan**: the whole command, `surveyor scan NETWORK --no-ping -p 9 --probes rdns
  --dns-servers 127.0.0.153` (a connect probe of every address on loopback, then its name);
- **nmap**: `nmap -sL -R --dns-servers 127.0.0.153 NETWORK` (a list scan: names only).

It prints the lookups per second (addresses of the network over wall-clock seconds, process
start included for the commands), the ratio to nmap's, and whether the names are the same
(address by address, against each other and against what the server gives out).
Goal: >= 1.0x nmap's lookups per second, with the same names. The network must lie in
127.0.0.0/8: only the server is asked, but a scan of it is also run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from pathlib import Path

from defusedxml import ElementTree

from surveyor.scan.probes.reverse_dns import DnsSource, ReverseLookups
from surveyor.scan.settings import ScanSettings
from surveyor.scan.taskdata import read_task_data
from surveyor.testing.ptr_server import Faults, PtrServer

RATIO_GOAL = 1.0
SERVER = ("127.0.0.153", 53)
DOMAIN = "rdns-bench.test"
FAULTS = Faults(delay_every=10, delay=0.6, drop_first_every=20, silent_every=100)
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
LOOPBACK = IPv4Network("127.0.0.0/8")

Names = dict[str, str]


@dataclass(frozen=True)
class Run:
    tool: str
    seconds: float
    named: int
    lookups_per_s: float


def start_server(network: IPv4Network) -> subprocess.Popen[str]:
    """The PTR server in its own process; it stops when its stdin closes."""
    command = [
        sys.executable,
        "-m",
        "surveyor.testing.ptr_server",
        f"--listen={SERVER[0]}:{SERVER[1]}",
        f"--network={network}",
        f"--domain={DOMAIN}",
        f"--delay-every={FAULTS.delay_every}",
        f"--delay={FAULTS.delay}",
        f"--drop-first-every={FAULTS.drop_first_every}",
        f"--silent-every={FAULTS.silent_every}",
    ]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise SystemExit(f"the PTR server did not start on {SERVER[0]}:{SERVER[1]}")
    return server


def expected_names(network: IPv4Network) -> Names:
    """What the server gives out (a server object that is never started)."""
    return PtrServer(str(network), domain=DOMAIN, faults=FAULTS).expected()


def surveyor_lookups(network: IPv4Network) -> tuple[float, Names]:
    settings = ScanSettings()
    lookups = ReverseLookups(
        DnsSource([SERVER]), timeout=settings.rdns_timeout, concurrency=settings.rdns_concurrency
    )
    began = time.monotonic()
    try:
        futures = {str(address): lookups.lookup(str(address)) for address in network}
        answers = {address: future.result() for address, future in futures.items()}
    finally:
        lookups.close()
    seconds = time.monotonic() - began
    return seconds, {address: names[0] for address, names in answers.items() if names}


def surveyor_scan(network: IPv4Network, folder: Path) -> tuple[float, Names]:
    output = folder / "rdns.jsonl.gz"
    command = [
        SURVEYOR,
        "scan",
        str(network),
        "--no-ping",
        "-p",
        "9",
        "--probes",
        "rdns",
        "--dns-servers",
        SERVER[0],
        "--json",
        "-o",
        str(output),
    ]
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)
    seconds = time.monotonic() - began
    names: Names = {}
    for record in read_task_data(output):
        if record.get("type") == "host" and record.get("hostnames"):
            names[record["addresses"][0]] = record["hostnames"][0]
    return seconds, names


def nmap_list(network: IPv4Network, folder: Path) -> tuple[float, Names]:
    output = folder / "nmap.xml"
    command = ["nmap", "-sL", "-R", "--dns-servers", SERVER[0], str(network), "-oX", str(output)]
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)
    seconds = time.monotonic() - began
    names: Names = {}
    for host in ElementTree.parse(output).getroot().iter("host"):
        address = host.find("address")
        name = host.find("hostnames/hostname[@type='PTR']")
        if address is not None and name is not None:
            names[address.get("addr", "")] = name.get("name", "").lower()
    return seconds, names


def compare(left: Names, right: Names) -> str:
    if left == right:
        return "same"
    only_left = len(left.keys() - right.keys())
    only_right = len(right.keys() - left.keys())
    differ = sum(1 for key in left.keys() & right.keys() if left[key] != right[key])
    return f"differ: {only_left} only left, {only_right} only right, {differ} different"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="127.80.0.0/20")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    network = IPv4Network(args.network)
    if not network.subnet_of(LOOPBACK):
        raise SystemExit("--network must lie in 127.0.0.0/8")
    expected = expected_names(network)
    print(
        f"reverse DNS of {network} ({network.num_addresses} addresses, {len(expected)} with "
        f"a name) from a local server with faults; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    server = start_server(network)
    runs: list[Run] = []
    named: dict[str, Names] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="surveyor-bench-rdns-") as scratch:
            folder = Path(scratch)
            tools: dict[str, Callable[[], tuple[float, Names]]] = {
                "surveyor": lambda: surveyor_lookups(network),
                "surveyor scan": lambda: surveyor_scan(network, folder),
                "nmap -sL": lambda: nmap_list(network, folder),
            }
            for _ in range(args.repeat):
                for tool, measure in tools.items():
                    seconds, names = measure()
                    named[tool] = names
                    rate = network.num_addresses / seconds
                    runs.append(Run(tool, seconds, len(names), rate))
                    print(f"  {tool:14} {seconds:7.2f} s  {len(names):5} named  {rate:8.0f}/s")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    median = {
        tool: statistics.median(run.lookups_per_s for run in runs if run.tool == tool)
        for tool in named
    }
    ratio = median["surveyor"] / median["nmap -sL"]
    same = named["surveyor"] == named["nmap -sL"]
    print()
    print(f"{'tool':14} {'lookups/s (median)':>18} {'x nmap':>7}  names")
    for tool, rate in median.items():
        print(
            f"{tool:14} {rate:18.0f} {rate / median['nmap -sL']:7.2f}  "
            f"vs nmap: {compare(named[tool], named['nmap -sL'])}; "
            f"vs server: {compare(named[tool], expected)}"
        )
    met = ratio >= RATIO_GOAL and same
    print(
        f"\ngoal: >= {RATIO_GOAL:.1f}x nmap's lookups/s with the same names: "
        f"{'met' if met else 'NOT met'} ({ratio:.2f}x, names {'same' if same else 'differ'}); "
        f"load average now {os.getloadavg()[0]:.2f}"
    )
    if args.json_out:
        args.json_out.write_text(
            json.dumps({"runs": [asdict(run) for run in runs], "ratio": ratio, "met": met})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
