"""Benchmark of nmap XML imports, against python-libnmap on the same file.

    .venv/bin/python -m bench.imports [--hosts 65536] [--ports 8] [--repeat 3]
                                      [--memory-gb 1] [--no-pipeline] [--json-out FILE]

An nmap XML file of `--hosts` hosts with `--ports` open ports each (and one filtered port,
an OS match, uptime, distance: what `nmap -sT -sV -O -oX` writes of a LAN; see
`surveyor.testing.nmapxml`) is generated, and python-libnmap reads it to confirm it is
nmap's format. Then, each in a child process of its own (its wall time, CPU time and peak
RSS are its alone):

- ours: the file to gzip task data (detect, parse, merge per address, write), as an import
  converts it;
- ours + check: the same, then every record checked as processing reads it (all an import
  does before its task exists);
- python-libnmap: `NmapParser.parse_fromfile` on the same file.

Goal: ours at least 3 times faster than python-libnmap, at under half its peak memory.
Then the whole import to Processed: a real `surveyor console` (SQLite), the file posted to
`/api/v1/imports`, timed until the task is `processed`. With `--memory-gb N`, a file of N GB
is also imported (ours + check) and its peak RSS reported (goal: at most 200 MB).
Times depend on the load of the machine; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from surveyor.testing.nmapxml import hosts_for_size, write_scan_file

SRC = Path(__file__).resolve().parents[1] / "src"

#: The child's own peak RSS: VmHWM belongs to the program exec started, while ru_maxrss
#: keeps the peak of the process it was forked from (getrusage(2)).
PEAK = """
def peak_rss():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024
"""

OURS = (
    PEAK
    + """
import gzip, json, os, sys, time
from pathlib import Path
from surveyor.core.jsonl_limits import DEFAULT_LIMITS
from surveyor.formats.convert import file_format, peek, task_lines
from surveyor.store.taskdata import decompressed_blocks

source, out = Path(sys.argv[1]), Path(sys.argv[2])
started, cpu = time.perf_counter(), sum(os.times()[:2])
head, blocks = peek(decompressed_blocks(source, DEFAULT_LIMITS))
lines = task_lines(file_format(head, None), blocks, DEFAULT_LIMITS, out.with_suffix(".merge"))
with gzip.open(out, "wb", compresslevel=1) as written:
    count = 0
    for line in lines:
        written.write(line + b"\\n")
        count += 1
wall = time.perf_counter() - started
out.with_suffix(".merge").unlink(missing_ok=True)
print(json.dumps({"wall": wall, "cpu": sum(os.times()[:2]) - cpu, "hosts": count - 2,
                  "peak": peak_rss()}))
"""
)

CHECKED = (
    PEAK
    + """
import json, os, sys, time
from pathlib import Path
from surveyor.core.jsonl_limits import DEFAULT_LIMITS
from surveyor.service.imports import check_file

started, cpu = time.perf_counter(), sum(os.times()[:2])
checked = check_file(Path(sys.argv[1]), named_format=None, limits=DEFAULT_LIMITS)
wall = time.perf_counter() - started
checked.path.unlink()
print(json.dumps({"wall": wall, "cpu": sum(os.times()[:2]) - cpu, "hosts": checked.hosts,
                  "peak": peak_rss()}))
"""
)

LIBNMAP = (
    PEAK
    + """
import json, os, sys, time
from libnmap.parser import NmapParser

started, cpu = time.perf_counter(), sum(os.times()[:2])
report = NmapParser.parse_fromfile(sys.argv[1])
wall = time.perf_counter() - started
ports = sum(len(host.services) for host in report.hosts)
print(json.dumps({"wall": wall, "cpu": sum(os.times()[:2]) - cpu, "hosts": len(report.hosts),
                  "ports": ports,
                  "peak": peak_rss()}))
"""
)


@dataclass(frozen=True)
class Run:
    name: str
    wall: float
    cpu: float
    peak_mb: float
    hosts: int


def _child(name: str, code: str, *args: str) -> Run:
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    found = json.loads(done.stdout)
    return Run(name, found["wall"], found["cpu"], found["peak"] / (1 << 20), found["hosts"])


def _best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.cpu)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whole_import(path: Path, folder: Path) -> float:
    """Seconds from the upload's start to the import task being `processed`, on a real
    console (SQLite) with its in-process worker."""
    token = "bench-imports-bootstrap-token-0123456789abcdef"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYOR_")} | {
        "PYTHONPATH": str(SRC),
        "SURVEYOR_DATA": str(folder / "console"),
        "SURVEYOR_ADMIN_EMAIL": "bench@example.test",
        "SURVEYOR_ADMIN_PASSWORD": "correct horse battery staple",
        "SURVEYOR_BOOTSTRAP_TOKEN": token,
        "SURVEYOR_LOG_LEVEL": "warning",
    }
    command = "from surveyor.cli.main import main; main()"
    url = f"http://127.0.0.1:{port}"
    log = (folder / "console.log").open("wb")
    console = subprocess.Popen(
        [sys.executable, "-c", command, "console", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx2.Client(base_url=url, timeout=600) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            with path.open("rb") as body:
                answer = client.post(
                    "/api/v1/imports", content=body, headers=headers, params={"name": "bench"}
                )
            answer.raise_for_status()
            task_id = answer.json()["id"]
            while True:
                task = client.get(f"/api/v1/tasks/{task_id}", headers=headers).json()
                if task["status"] in ("processed", "canceled"):
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            if task["status"] != "processed":
                raise SystemExit(f"the import ended {task['status']}: {task.get('error')}")
            return elapsed
    finally:
        console.terminate()
        console.wait(timeout=30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=65536)
    parser.add_argument("--ports", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-gb", type=float, default=0)
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--json-out", type=Path)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-imports-") as temp:
        folder = Path(temp)
        path = folder / "scan.xml"
        size = write_scan_file(path, options.hosts, options.ports)
        print(f"nmap XML: {options.hosts} hosts x {options.ports} open ports, {size / 1e6:.0f} MB")

        peer = [_child("python-libnmap", LIBNMAP, str(path)) for _ in range(options.repeat)]
        if peer[0].hosts != options.hosts:
            raise SystemExit(f"python-libnmap read {peer[0].hosts} hosts, not {options.hosts}")
        ours = [
            _child("ours: to task data", OURS, str(path), str(folder / "out.jsonl.gz"))
            for _ in range(options.repeat)
        ]
        checked = [_child("ours: + checked", CHECKED, str(path)) for _ in range(options.repeat)]
        for runs in (ours, checked):
            if runs[0].hosts != options.hosts:
                raise SystemExit(f"{runs[0].name} made {runs[0].hosts} hosts")

        best_peer, best_ours, best_checked = _best(peer), _best(ours), _best(checked)
        load = os.getloadavg()
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'':24} {'wall s':>8} {'CPU s':>8} {'peak MB':>9} {'CPU vs libnmap':>15}")
        for run in (best_peer, best_ours, best_checked):
            ratio = best_peer.cpu / run.cpu if run.cpu else 0
            print(f"{run.name:24} {run.wall:8.2f} {run.cpu:8.2f} {run.peak_mb:9.0f} {ratio:14.1f}x")
        speed = best_peer.cpu / best_ours.cpu
        memory = best_ours.peak_mb / best_peer.peak_mb
        met = speed >= 3 and memory < 0.5
        print(
            f"goal: >= 3x faster at < 1/2 the memory: {speed:.1f}x, "
            f"{memory:.1%} of the memory -> {'met' if met else 'NOT met'}"
        )
        results: dict[str, Any] = {
            "hosts": options.hosts,
            "ports": options.ports,
            "bytes": size,
            "load": load,
            "runs": [asdict(run) for run in (*peer, *ours, *checked)],
            "speed": speed,
            "memory": memory,
            "met": met,
        }
        if not options.no_pipeline:
            seconds = whole_import(path, folder)
            print(f"whole import to Processed (console, SQLite): {seconds:.1f} s")
            results["pipeline_seconds"] = seconds
        if options.memory_gb:
            big = folder / "big.xml"
            big_size = write_scan_file(big, hosts_for_size(int(options.memory_gb * 1e9)))
            run = _child("ours: 1 GB + checked", CHECKED, str(big))
            print(
                f"{big_size / 1e9:.2f} GB nmap XML ({run.hosts} hosts) to checked task data: "
                f"{run.wall:.1f} s, peak RSS {run.peak_mb:.0f} MB (goal <= 200 MB: "
                f"{'met' if run.peak_mb <= 200 else 'NOT met'})"
            )
            results["big"] = {"bytes": big_size, **asdict(run)}
        if options.json_out:
            options.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
