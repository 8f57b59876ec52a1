"""Benchmark of the LDAP connector: 100,000 computer objects fetched into task data, against
`ldapsearch` dumping the same objects in the same run.

    .venv/bin/python -m bench.connectors [--computers 100000] [--repeat 3] [--tls none]
                                         [--json-out FILE]

Loads the computers into a private slapd (`surveyor.testing.slapd`, `slapadd` before it
starts), then, alternately, N times each:
- `ldapsearch -x -LLL -E pr=1000/noprompt` asks for the attributes the connector reads and
  writes the LDIF to a file;
- a child process runs `connector.fetch` (500 entries a page, `resolve` off) into a gzip JSONL
  file with the task-data writer the connector kind uses, and reports the fetch's own time
  (from before the bind to the file closed) and its peak RSS;
- another child runs the same fetch into nothing: the connector's own share of that time.
Prints the median times, their ratio, the CPU each used, the peak RSS of the fetching process,
and the load average. Goals: fetch <= 1.5x ldapsearch's wall-clock time, peak RSS <= 200 MB.
Processing the 100,000 assets is measured once the connector task kind runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RATIO_GOAL = 1.5
RSS_GOAL_MB = 200.0
PEER_PAGE = 1000


@dataclass(frozen=True)
class Run:
    """One timed dump by one tool."""

    tool: str
    seconds: float  # wall clock: ldapsearch's whole command, the connector's fetch
    process_seconds: float  # wall clock of the whole process, start and imports included
    cpu_seconds: float  # user + system time of the process
    objects: int
    peak_rss_mb: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ldapsearch(server: dict[str, Any], output: Path, tls: str) -> Run:
    """ldapsearch with the same TLS mode as the connector, verifying against the same CA."""
    from surveyor.connectors.ldap import ATTRIBUTES, DEFAULT_FILTER

    url = f"ldaps://{server['ldaps_server']}" if tls == "ldaps" else f"ldap://{server['server']}"
    args = ["ldapsearch", "-x", "-LLL", "-H", url, *(["-ZZ"] if tls == "starttls" else [])]
    args += ["-D", server["bind_dn"], "-y", server["password_file"], "-b", server["base_dn"]]
    args += ["-E", f"pr={PEER_PAGE}/noprompt", DEFAULT_FILTER, *ATTRIBUTES]
    cpu, started = _children_cpu(), time.perf_counter()
    with output.open("wb") as out:
        environment = {
            **os.environ,
            "LDAPTLS_CACERT": server["ca_file"],
            "LDAPTLS_REQCERT": "demand",
        }
        done = subprocess.run(
            args, stdout=out, stderr=subprocess.PIPE, env=environment, check=False
        )
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"ldapsearch failed ({done.returncode}): {done.stderr.decode()}")
    with output.open("rb") as dump:
        objects = sum(1 for line in dump if line.startswith(b"dn: "))
    return Run("ldapsearch", seconds, seconds, cpu, objects, 0.0)


def run_connector(server: dict[str, Any], output: Path | None, tls: str) -> Run:
    """A fetch in a child process, into a task data file (or, with no `output`, into
    nothing: the connector's own share)."""
    request = json.dumps({**server, "output": output and str(output), "tls": tls})
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.connectors", "--child", request],
        capture_output=True,
        text=True,
        check=False,
    )
    process_seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"the fetching process failed ({done.returncode}):\n{done.stderr}")
    report = json.loads(done.stdout)
    return Run(
        "connector" if output else "records",
        report["seconds"],
        process_seconds,
        cpu,
        report["objects"],
        report["peak_rss_kb"] / 1024,
    )


def child(request_text: str) -> None:
    """The fetching process: one fetch into a task data file, then its figures as JSON."""
    import threading

    from surveyor.connectors.base import ConnectorConfig
    from surveyor.connectors.ldap import CONNECTOR
    from surveyor.scan.taskdata import write_task_data

    request = json.loads(request_text)
    options: dict[str, Any] = {"base_dn": request["base_dn"], "tls": request["tls"]}
    if request["tls"] != "none":
        options["ca_file"] = request["ca_file"]
    config = ConnectorConfig(
        server=request["ldaps_server"] if request["tls"] == "ldaps" else request["server"],
        options=options,
        credential={
            "bind_dn": request["bind_dn"],
            "password": Path(request["password_file"]).read_text(),
        },
        timeout=60.0,
        stopped=threading.Event(),
    )
    started = time.perf_counter()
    if request["output"]:
        objects = write_task_data(CONNECTOR.fetch(config), request["output"])
    else:
        objects = sum(1 for _ in CONNECTOR.fetch(config))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "objects": objects, "peak_rss_kb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--computers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tls", choices=("none", "starttls", "ldaps"), default="none")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from surveyor.testing.slapd import generate_computers, private_slapd

    print(f"loading {args.computers:,} computer objects into a private slapd ...", flush=True)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="surveyor-bench-ldap-") as workdir,
        private_slapd(generate_computers(args.computers)) as slapd,
    ):
        print(f"loaded and started in {time.perf_counter() - started:.1f} s", flush=True)
        password_file = Path(workdir) / "password"
        password_file.write_text(slapd.password)
        password_file.chmod(0o600)
        server = {
            "server": slapd.server,
            "ldaps_server": slapd.ldaps_server,
            "bind_dn": slapd.bind_dn,
            "base_dn": slapd.base_dn,
            "password_file": str(password_file),
            "ca_file": str(slapd.ca_file),
        }
        load_before = os.getloadavg()
        runs: list[Run] = []
        for _ in range(args.repeat):
            runs.append(run_ldapsearch(server, Path(workdir) / "ldapsearch.ldif", args.tls))
            runs.append(run_connector(server, Path(workdir) / "ldap.jsonl.gz", args.tls))
            runs.append(run_connector(server, None, args.tls))
        load_after = os.getloadavg()

    peers = [run for run in runs if run.tool == "ldapsearch"]
    ours = [run for run in runs if run.tool == "connector"]
    records_only = [run for run in runs if run.tool == "records"]
    for run in runs:
        if run.objects != args.computers:
            raise SystemExit(f"{run.tool} dumped {run.objects:,} of {args.computers:,} objects")
    peer_s = statistics.median(run.seconds for run in peers)
    ours_s = statistics.median(run.seconds for run in ours)
    ratio = ours_s / peer_s
    rss = max(run.peak_rss_mb for run in ours + records_only)
    print()
    print(f"LDAP: {args.computers:,} computer objects, tls {args.tls}, {args.repeat} runs each")
    print(f"{'tool':<12} {'median s':>9} {'runs (s)':<28} {'CPU s':>6} {'process s':>9}")
    groups = (("ldapsearch", peers), ("connector", ours), ("records", records_only))
    for name, group in groups:
        times = ", ".join(f"{run.seconds:.2f}" for run in group)
        cpu = statistics.median(run.cpu_seconds for run in group)
        process = statistics.median(run.process_seconds for run in group)
        median = statistics.median(run.seconds for run in group)
        print(f"{name:<12} {median:>9.2f} {times:<28} {cpu:>6.2f} {process:>9.2f}")
    records_ratio = statistics.median(run.seconds for run in records_only) / peer_s
    print(
        "connector: fetched into a gzip JSONL file; records: fetched into nothing "
        f"(the connector's own share: {records_ratio:.2f}x ldapsearch)"
    )
    print(
        f"ratio connector/ldapsearch {ratio:.2f}x "
        f"({'✓' if ratio <= RATIO_GOAL else '✗'} goal <= {RATIO_GOAL}x); "
        f"peak RSS of the fetching process {rss:.0f} MB "
        f"({'✓' if rss <= RSS_GOAL_MB else '✗'} goal <= {RSS_GOAL_MB:.0f} MB)"
    )
    print(
        "load average before "
        + ", ".join(f"{value:.2f}" for value in load_before)
        + "; after "
        + ", ".join(f"{value:.2f}" for value in load_after)
        + f" (on {os.cpu_count()} CPUs)"
    )
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "computers": args.computers,
                    "tls": args.tls,
                    "runs": [asdict(run) for run in runs],
                    "ratio": ratio,
                    "records_ratio": records_ratio,
                    "peak_rss_mb": rss,
                    "load_average": [load_before, load_after],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
