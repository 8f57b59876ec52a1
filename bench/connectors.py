"""Benchmark of the LDAP connector: 100,000 computer objects fetched into task data, against
`ldapsearch` dumping the same objects in the same run.

    .venv/bin/python -m bench.connectors [--computers 100000] [--repeat 3] [--tls none]
                                         [--json-out FILE]

Loads the computers into a private slapd (`surveyor.testing.slapd`, `slapadd` before it
starts), then, alternately, N times each:
- `ldapsearch -x -LLL -E pr=1000/noprompt` asks for the attributes the connector reads and
  writes the LDIF to a file;
- a child process runs `connector.fetch_lines` (500 entries a page, `resolve` off: the
  records already encoded as task data lines) into a gzip JSONL file with the task-data
  writer the connector kind uses (`write_encoded`, gzip level 3), and reports the fetch's
  own time (from before the bind to the file closed) and its peak RSS;
- another child runs the same fetch into nothing: the connector's own share of that time.
Then, once per backend (`--backend sqlite|postgresql|both`), the whole connector task on a
real `surveyor console`: credential and task created through the API, the run timed from
`connecting` to `connected` by the task's own events, the console's peak RSS read after it;
then the task data is processed into the inventory (on SQLite by the console's in-process
worker, as deployed; on PostgreSQL by a separate `surveyor worker` process), timed by the
processing run's own timestamps, and its change summary must count every computer as new.
Prints the median times, their ratio, the CPU each used, the peak RSS of the fetching process,
the whole task's figures, and the load average. Goals: fetch and task connecting -> connected
<= 1.5x ldapsearch's wall-clock time, peak RSS of the connecting process <= 200 MB; the issue
sets no goal for processing (it asks only that it be reported).
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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RATIO_GOAL = 1.5
RSS_GOAL_MB = 200.0
PEER_PAGE = 1000
SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "bench-connectors-bootstrap-token-0123456789abcdef"
#: Generous bounds on the whole task, not timings: the run fails loudly past them.
START_SECONDS = 120.0
TASK_SECONDS = 3600.0


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
    from surveyor.connectors.ldap import CONNECTOR, LdapConnector
    from surveyor.scan.taskdata import FAST_COMPRESS_LEVEL, write_encoded

    assert isinstance(CONNECTOR, LdapConnector)  # it encodes its own records: fetch_lines

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
    objects = 0

    def lines() -> Iterator[bytes]:
        nonlocal objects
        for page, count in CONNECTOR.fetch_lines(config):
            objects += count
            yield page

    started = time.perf_counter()
    if request["output"]:
        write_encoded(lines(), request["output"], level=FAST_COMPRESS_LEVEL)
    else:
        for _ in lines():
            pass
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "objects": objects, "peak_rss_kb": peak}))


@dataclass(frozen=True)
class TaskRun:
    """One whole connector task on a real console, then its processing by a worker."""

    backend: str
    connecting_seconds: float  # the task's `connecting` event to its `connected` event
    create_to_queued_seconds: float  # the API's create answer to `processing_queued`, polled
    console_peak_rss_mb: float  # VmHWM of the console process, which ran the connector
    processing_seconds: float  # the processing run's own start and end
    worker_peak_rss_mb: float  # VmHWM of what processed: the worker, or (SQLite) the console
    assets: int  # the change summary's new assets
    records: int  # host records in the task data (the task's stats)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    """The high-water mark of a live process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM for process {pid}")


def _surveyor(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = "from surveyor.cli.main import main; main()"
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", command, *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=60)


def _wait_for(
    client: Any, task_id: int, statuses: set[str], process: subprocess.Popen[bytes], log: Path
) -> dict[str, Any]:
    """The task once its status is one of `statuses`. An answer other than 200 (the console
    busy while the worker writes) is noted on stderr and asked again."""
    deadline = time.monotonic() + TASK_SECONDS
    status = "unknown"
    while True:
        answer = client.get(f"/api/v1/tasks/{task_id}")
        if answer.status_code == 200:
            task: dict[str, Any] = answer.json()
            status = task["status"]
            if status in statuses:
                return task
        else:
            print(f"  (task {task_id}: {answer.status_code} {answer.text[:200]})", file=sys.stderr)
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(
                f"task {task_id} stuck at {status}:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.05 if status in ("new", "connecting") else 0.5)


def whole_task(
    server: dict[str, Any], folder: Path, tls: str, backend: str, database_url: str | None
) -> TaskRun:
    """The connector task from the API to `processed`, on a real console and worker."""
    from datetime import datetime

    import httpx2

    folder.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYOR_")} | {
        "PYTHONPATH": os.pathsep.join(filter(None, (str(SRC), os.environ.get("PYTHONPATH")))),
        "SURVEYOR_DATA": str(folder / "data"),
        "SURVEYOR_ADMIN_EMAIL": "bench@example.test",
        "SURVEYOR_ADMIN_PASSWORD": "correct horse battery staple",
        "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
        "SURVEYOR_LOG_LEVEL": "warning",
    }
    # SQLite: the console processes in-process, as it is deployed (a separate worker would
    # contend for the one writer); PostgreSQL: a separate worker, measured on its own.
    in_console = database_url is None
    env["SURVEYOR_WORKERS"] = "1" if in_console else "0"
    if database_url:
        env["SURVEYOR_DATABASE_URL"] = database_url
    log = folder / "surveyor.log"
    console = _surveyor(["console", "--host", "127.0.0.1", "--port", str(port)], env, log)
    worker: subprocess.Popen[bytes] | None = None
    try:
        with httpx2.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=600,
        ) as client:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if console.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the console did not start:\n{log.read_text()}")
                time.sleep(0.1)
            answer = client.post(
                "/api/v1/credentials",
                json={
                    "name": "bench directory",
                    "kind": "ldap",
                    "fields": {
                        "bind_dn": server["bind_dn"],
                        "password": Path(server["password_file"]).read_text(),
                    },
                },
            )
            answer.raise_for_status()
            params: dict[str, Any] = {
                "connector": "ldap",
                "credential_id": answer.json()["id"],
                "server": server["ldaps_server"] if tls == "ldaps" else server["server"],
                "base_dn": server["base_dn"],
                "tls": tls,
            }
            if tls != "none":
                params["ca_file"] = server["ca_file"]
            answer = client.post(
                "/api/v1/tasks",
                json={"name": "Directory (bench)", "type": "connector", "params": params},
            )
            answer.raise_for_status()
            created = time.perf_counter()
            task_id = answer.json()["id"]
            after_connecting = {"processing_queued", "processing", "processed", "canceled"}
            queued = _wait_for(client, task_id, after_connecting, console, log)
            create_to_queued = time.perf_counter() - created
            console_rss = _peak_rss_mb(console.pid)  # with an in-console worker: just begun
            if queued["status"] == "canceled":
                raise SystemExit(f"the connector task was canceled: {queued['error']}")
            events = client.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 100})
            at = {
                event["to_status"]: datetime.fromisoformat(event["at"])
                for event in events.json()["items"]
                if event["to_status"]
            }
            connecting = (at["connected"] - at["connecting"]).total_seconds()

            if not in_console:
                worker = _surveyor(["worker"], env, log)
            processor = console if worker is None else worker
            done = _wait_for(client, task_id, {"processed", "canceled"}, processor, log)
            worker_rss = _peak_rss_mb(processor.pid)
            if done["status"] != "processed":
                raise SystemExit(f"processing ended {done['status']}: {done['error']}")
            runs = client.get(f"/api/v1/tasks/{task_id}/processing-runs").json()["items"]
            run = runs[0]
            processing = (
                datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])
            ).total_seconds()
            return TaskRun(
                backend,
                connecting,
                create_to_queued,
                console_rss,
                processing,
                worker_rss,
                int(done["change_summary"]["new"]),
                int(done["stats"]["hosts"]),
            )
    finally:
        if worker is not None:
            _stop(worker)
        _stop(console)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def fetch_table(
    runs: list[Run], computers: int, tls: str, repeat: int
) -> tuple[float, dict[str, float]]:
    """Prints the fetches against ldapsearch; ldapsearch's median time, and the figures."""
    peers = [run for run in runs if run.tool == "ldapsearch"]
    ours = [run for run in runs if run.tool == "connector"]
    records_only = [run for run in runs if run.tool == "records"]
    for run in runs:
        if run.objects != computers:
            raise SystemExit(f"{run.tool} dumped {run.objects:,} of {computers:,} objects")
    peer_s = statistics.median(run.seconds for run in peers)
    ratio = statistics.median(run.seconds for run in ours) / peer_s
    rss = max(run.peak_rss_mb for run in ours + records_only)
    print()
    print(f"LDAP: {computers:,} computer objects, tls {tls}, {repeat} runs each")
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
        "connector: fetched into a gzip JSONL file; records: fetched and encoded into "
        f"nothing (the connector's own share: {records_ratio:.2f}x ldapsearch)"
    )
    print(
        f"ratio connector/ldapsearch {ratio:.2f}x "
        f"({'✓' if ratio <= RATIO_GOAL else '✗'} goal <= {RATIO_GOAL}x); "
        f"peak RSS of the fetching process {rss:.0f} MB "
        f"({'✓' if rss <= RSS_GOAL_MB else '✗'} goal <= {RSS_GOAL_MB:.0f} MB)",
        flush=True,
    )
    return peer_s, {"ratio": ratio, "records_ratio": records_ratio, "peak_rss_mb": rss}


TASK_HEADER = (
    f"{'backend':<11} {'connecting s':>12} {'x ldapsearch':>12} {'console MB':>10} "
    f"{'processing s':>12} {'assets/s':>9} {'processor MB':>12} {'create->queued s':>16}"
)


def task_row(task: TaskRun, peer_s: float) -> str:
    return (
        f"{task.backend:<11} {task.connecting_seconds:>12.2f} "
        f"{task.connecting_seconds / peer_s:>11.2f}x {task.console_peak_rss_mb:>10.0f} "
        f"{task.processing_seconds:>12.2f} {task.assets / task.processing_seconds:>9,.0f} "
        f"{task.worker_peak_rss_mb:>12.0f} {task.create_to_queued_seconds:>16.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--computers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tls", choices=("none", "starttls", "ldaps"), default="none")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both", "none"),
        default="both",
        help="where the whole connector task runs and is processed",
    )
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
        load_fetched = os.getloadavg()
        peer_s, figures = fetch_table(runs, args.computers, args.tls, args.repeat)
        print(f"/proc/loadavg: {loadavg()}", flush=True)
        tasks: list[TaskRun] = []
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            if backend == "none":
                continue
            print(f"\nthe whole connector task on {backend} ...", flush=True)
            folder = Path(workdir) / f"task-{backend}"
            if backend == "sqlite":
                task = whole_task(server, folder, args.tls, backend, None)
            else:
                from surveyor.testing.postgres import throwaway_postgres

                with throwaway_postgres() as url:
                    task = whole_task(server, folder, args.tls, backend, url)
            if task.assets != args.computers or task.records != args.computers:
                raise SystemExit(
                    f"the task on {task.backend} read {task.records:,} computers and made "
                    f"{task.assets:,} new assets, of {args.computers:,}"
                )
            tasks.append(task)
            print(TASK_HEADER)
            print(task_row(task, peer_s))
            print(f"/proc/loadavg: {loadavg()}", flush=True)
        load_after = os.getloadavg()

    if tasks:
        print()
        print(
            "the whole connector task (the console runs the connector; on SQLite its own "
            "worker processes, on PostgreSQL a separate worker):"
        )
        print(TASK_HEADER)
        for task in tasks:
            print(task_row(task, peer_s))
        worst = max(task.connecting_seconds for task in tasks) / peer_s
        console_rss = max(task.console_peak_rss_mb for task in tasks)
        print(
            f"task connecting -> connected / ldapsearch: up to {worst:.2f}x "
            f"({'✓' if worst <= RATIO_GOAL else '✗'} goal <= {RATIO_GOAL}x); "
            f"console peak RSS {console_rss:.0f} MB "
            f"({'✓' if console_rss <= RSS_GOAL_MB else '✗'} goal <= {RSS_GOAL_MB:.0f} MB); "
            f"processing {args.computers:,} new assets: no goal set, reported"
        )
    print(
        "load average before "
        + ", ".join(f"{value:.2f}" for value in load_before)
        + "; after the fetches "
        + ", ".join(f"{value:.2f}" for value in load_fetched)
        + "; at the end "
        + ", ".join(f"{value:.2f}" for value in load_after)
        + f" (on {os.cpu_count()} CPUs); /proc/loadavg now: {loadavg()}"
    )
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "computers": args.computers,
                    "tls": args.tls,
                    "runs": [asdict(run) for run in runs],
                    **figures,
                    "tasks": [asdict(task) for task in tasks],
                    "load_average": [load_before, load_fetched, load_after],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
