"""Benchmark: a fleet of explorers on one console (or two), speaking the real protocol.

    .venv/bin/python -m bench.fleet [--explorers 2000] [--processes 4] [--consoles 1]
                                    [--backend sqlite|postgresql] [--seconds 60]
                                    [--tasks 200] [--wait 25] [--json-out FILE]

Starts `surveyor console` (SQLite; or `--consoles` of them on one PostgreSQL database), then
`--processes` fleet processes that enroll `--explorers` simulated explorers between them with
one enrollment token, and run each explorer as a real one does, each on a keep-alive
connection of its own (`bench/_http1.py`: HTTP/1.1 written by hand on asyncio streams, so that
the simulators, which share the machine, spend little CPU): a long poll
(`POST /api/v1/explorer/poll`, `wait` seconds), again and again; 20 of them instead check in
every second (`wait: 0`), to measure check-ins. When a poll brings a
scan, the explorer reports progress twice and uploads a small task data file (a host on
127.0.0.1), as a finished scan does; the console then processes it. Explorers are spread
over the consoles' URLs.

Once every explorer holds its first long poll, the benchmark creates `--tasks` one-off scans
of 127.0.0.1 through the API, spread over `--seconds`, each for an explorer picked at random
among those not given one yet, and due at once. It measures:

- **check-in latency**: the round trip of those 20 explorers' `wait: 0` polls, sent
  throughout while the others hold their long polls;
- **due to received**: from just before the scan's create request to the moment its
  explorer's poll answer arrives with it (both clocks are this machine's);
- **RSS per held poll**: the console processes' resident memory with every poll held, less
  before any explorer enrolled, over the number of explorers;
- **errors**: every answer that is not a success, and every transport error;
- **CPU**: the consoles' CPU per request once every poll is held, and the fleet processes'.

Goal (one console, 2,000 explorers): check-in p99 <= 100 ms, due-to-received p99 <= 1 s,
0 errors. The load average is printed beside the figures. Only 127.0.0.1 is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._http1 import Connection, WireError
from surveyor.core.explorer_protocol import CLIENT_KEEP_ALIVE_SECONDS
from surveyor.testing.servers import free_tcp_port

SRC = Path(__file__).resolve().parent.parent / "src"
SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
TOKEN = "fleet-bench-bootstrap-token-0123456789"
START_SECONDS = 120.0
CHECK_IN_GOAL_MS = 100.0
RECEIVED_GOAL_S = 1.0
#: explorers of the fleet that check in every second (wait: 0) to measure the check-in
PROBERS = 20
#: enrollments a fleet process has in flight at once
ENROLLING_AT_ONCE = 50
HOST = {"version": "fleet", "hostname": "fleet-host", "os": "Linux", "addresses": ["127.0.0.1"]}


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def task_data() -> bytes:
    lines = [
        {"type": "config", "targets": "127.0.0.1"},
        {"type": "host", "addresses": ["127.0.0.1"], "services": []},
        {"type": "summary", "hosts_up": 1, "stopped": False},
    ]
    return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())


# The fleet process: many explorers on one asyncio loop.


@dataclass
class FleetResult:
    check_in_ms: list[float] = field(default_factory=list)
    received: dict[int, float] = field(default_factory=dict)  # task id -> wall time
    errors: list[str] = field(default_factory=list)
    polls: int = 0


async def run_fleet(spec: dict[str, Any]) -> FleetResult:
    result = FleetResult()
    consoles: list[str] = spec["consoles"]
    count: int = spec["count"]
    wait: float = spec["wait"]
    stop_at: float = spec["stop_at"]
    data = task_data()
    digest = hashlib.sha256(data).hexdigest()

    def error(text: str) -> None:
        if len(result.errors) < 1000:
            result.errors.append(text)

    def connection(index: int) -> Connection:
        # idle connections are reused as briefly as a real explorer's
        return Connection(
            consoles[index % len(consoles)], keep_alive=CLIENT_KEEP_ALIVE_SECONDS, timeout=60
        )

    async def enroll(index: int) -> tuple[Connection, str] | None:
        wire = connection(index)
        name = f"fleet-{spec['process']}-{index}"
        try:
            answer = await wire.request(
                "POST",
                "/api/v1/explorer/enroll",
                json_body={**HOST, "name": name},
                headers={"Authorization": f"Bearer {spec['enrollment_token']}"},
            )
        except WireError as exc:
            error(f"enroll: {exc}")
            return None
        if answer.status_code != 201:
            error(f"enroll: {answer.status_code} {answer.text[:200]}")
            return None
        return wire, str(answer.json()["secret"])

    async def post(
        wire: Connection, secret: str, path: str, body: Any, timeout: float | None = None
    ) -> Any:
        answer = await wire.request(
            "POST",
            f"/api/v1/explorer{path}",
            json_body=body,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=timeout,
        )
        if answer.status_code >= 400:
            error(f"{path.split('/')[1]}: {answer.status_code} {answer.text[:200]}")
            return None
        return answer.json()

    async def run_task(wire: Connection, secret: str, task: dict[str, Any]) -> None:
        token = task["attempt_token"]
        for collect in (0.5, 1.0):
            await post(
                wire,
                secret,
                f"/tasks/{task['id']}/progress",
                {"attempt_token": token, "collect": collect, "stats": {"hosts_done": 1}},
            )
        answer = await wire.request(
            "PUT",
            f"/api/v1/explorer/task-data/{task['id']}",
            content=data,
            headers={
                "Authorization": f"Bearer {secret}",
                "X-Surveyor-Attempt-Token": token,
                "X-Surveyor-Content-SHA256": digest,
                "Content-Type": "application/gzip",
            },
        )
        if answer.status_code >= 400:
            error(f"upload: {answer.status_code} {answer.text[:200]}")

    async def explorer(wire: Connection, secret: str, held: asyncio.Event, prober: bool) -> None:
        """A real explorer's loop: long polls, and a scan when one comes. A prober checks in
        (`wait: 0`) every second instead, and its round trips are the check-in latency."""
        # explorers come up at different times: their polls are spread over the wait
        await asyncio.sleep(random.uniform(0, 1.0 if prober else wait))
        while time.time() < stop_at:
            try:
                began = time.perf_counter()
                answer = await post(
                    wire, secret, "/poll", {**HOST, "wait": 0 if prober else wait}, wait + 60
                )
                if prober:
                    result.check_in_ms.append((time.perf_counter() - began) * 1000)
                result.polls += 1
                held.set()
                task = answer and answer.get("task")
                if task:
                    result.received[int(task["id"])] = time.time()
                    await run_task(wire, secret, task)
                elif prober:
                    await asyncio.sleep(1.0)
            except WireError as exc:
                error(f"poll: {exc}")
                await asyncio.sleep(1)
        held.set()
        wire.close()

    # A fleet is enrolled as it is rolled out, some at a time, not all in the same instant.
    enrolling = asyncio.Semaphore(ENROLLING_AT_ONCE)

    async def enroll_in_turn(index: int) -> tuple[Connection, str] | None:
        async with enrolling:
            return await enroll(index)

    enrolled = await asyncio.gather(*(enroll_in_turn(index) for index in range(count)))
    holding = [asyncio.Event() for _ in enrolled]
    probers: int = spec["probers"]
    runners = [
        asyncio.create_task(explorer(wire, secret, event, index < probers))
        for index, (entry, event) in enumerate(zip(enrolled, holding, strict=True))
        if entry is not None
        for wire, secret in [entry]
    ]
    await asyncio.gather(*(event.wait() for event in holding[: len(runners)]))
    print("ready", flush=True)  # every explorer holds its first long poll
    await asyncio.gather(*runners)
    return result


def fleet_child() -> None:
    spec = json.loads(sys.stdin.readline())
    result = asyncio.run(run_fleet(spec))
    print(json.dumps(asdict(result)), flush=True)


# The benchmark: consoles, fleet processes, tasks, figures.


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a running process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def start_console(
    folder: Path, port: int, database_url: str | None, index: int
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYOR_")} | {
        "PYTHONPATH": os.pathsep.join(filter(None, (str(SRC), os.environ.get("PYTHONPATH")))),
        "SURVEYOR_DATA": str(folder / f"console-{index}"),
        "SURVEYOR_ADMIN_EMAIL": "bench@example.test",
        "SURVEYOR_ADMIN_PASSWORD": "correct horse battery staple",
        "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
        "SURVEYOR_LOG_LEVEL": "warning",
        "SURVEYOR_ACCESS_LOG": "0",
        "SURVEYOR_WORKERS": "1",
    }
    if database_url:
        env["SURVEYOR_DATABASE_URL"] = database_url
    log = (folder / f"console-{index}.log").open("wb")
    return subprocess.Popen(
        [SURVEYOR, "console", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(url: str, console: subprocess.Popen[bytes], folder: Path) -> None:
    import httpx2

    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if console.poll() is not None:
            break
        try:
            if httpx2.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    logs = "\n".join(path.read_text() for path in folder.glob("console-*.log"))
    raise SystemExit(f"the console at {url} did not start:\n{logs[-4000:]}")


@dataclass
class Figures:
    backend: str
    consoles: int
    explorers: int
    check_ins: int
    check_in_p50_ms: float
    check_in_p99_ms: float
    tasks: int
    received: int
    received_p50_s: float
    received_p99_s: float
    rss_idle_mb: float
    rss_held_mb: float
    kb_per_poll: float
    errors: int
    load: float
    #: CPU the consoles spent per request (polls, progress, uploads) once the fleet held its
    #: polls, and CPU the fleet processes spent in all: less sensitive to other load.
    console_cpu_ms_per_request: float
    fleet_cpu_s: float

    @property
    def met(self) -> bool:
        return (
            self.check_in_p99_ms <= CHECK_IN_GOAL_MS
            and self.received_p99_s <= RECEIVED_GOAL_S
            and self.received == self.tasks
            and self.errors == 0
        )


def run(args: argparse.Namespace, backend: str, database_url: str | None) -> Figures:
    import httpx2

    with tempfile.TemporaryDirectory(prefix="surveyor-bench-fleet-") as scratch:
        folder = Path(scratch)
        ports = [free_tcp_port() for _ in range(args.consoles)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        consoles = [
            start_console(folder, port, database_url, index) for index, port in enumerate(ports)
        ]
        children: list[subprocess.Popen[str]] = []
        try:
            for url, console in zip(urls, consoles, strict=True):
                wait_healthy(url, console, folder)
            rss_idle = sum(rss_mb(console.pid) for console in consoles)
            admin = httpx2.Client(
                base_url=urls[0], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
            )
            answer = admin.post("/api/v1/enrollment-tokens", json={"name": "fleet"})
            answer.raise_for_status()
            enrollment_token = answer.json()["token"]
            shares = [
                args.explorers // args.processes + (1 if n < args.explorers % args.processes else 0)
                for n in range(args.processes)
            ]
            stop_at = time.time() + args.seconds + START_SECONDS
            for process, count in enumerate(shares):
                child = subprocess.Popen(
                    [sys.executable, "-m", "bench.fleet", "--child"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=os.environ
                    | {
                        "PYTHONPATH": os.pathsep.join(
                            filter(None, (str(SRC), os.environ.get("PYTHONPATH")))
                        )
                    },
                )
                spec = {
                    "process": process,
                    "count": count,
                    "consoles": urls,
                    "wait": args.wait,
                    "stop_at": stop_at,
                    "enrollment_token": enrollment_token,
                    "probers": PROBERS if process == 0 else 0,
                }
                assert child.stdin is not None
                child.stdin.write(json.dumps(spec) + "\n")
                child.stdin.flush()
                children.append(child)
            for child in children:
                assert child.stdout is not None
                if child.stdout.readline().strip() != "ready":
                    raise SystemExit("a fleet process failed before its explorers held their polls")
            print(f"  {args.explorers} explorers hold their long polls", flush=True)
            time.sleep(2)
            rss_held = sum(rss_mb(console.pid) for console in consoles)
            cpu_held = sum(cpu_seconds(console.pid) for console in consoles)
            explorer_ids = _explorer_ids(admin)
            random.shuffle(explorer_ids)
            created: dict[int, float] = {}
            gap = args.seconds / max(1, args.tasks)
            began = time.monotonic()
            for number, explorer_id in enumerate(explorer_ids[: args.tasks]):
                due = began + number * gap
                time.sleep(max(0.0, due - time.monotonic()))
                sent = time.time()
                answer = admin.post(
                    "/api/v1/tasks",
                    json={
                        "name": f"fleet scan {number}",
                        "params": {"targets": "127.0.0.1", "tcp_ports": "9"},
                        "explorer_id": explorer_id,
                    },
                )
                if answer.status_code != 201:
                    raise SystemExit(f"creating a scan failed: {answer.status_code} {answer.text}")
                created[int(answer.json()["id"])] = sent
            load = os.getloadavg()[0]
            print(f"  {len(created)} scans created; waiting for the fleet to finish", flush=True)
            results: list[dict[str, Any]] = []
            fleet_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            for child in children:
                assert child.stdout is not None
                line = child.stdout.readline()
                child.wait(timeout=args.wait + 120)
                results.append(json.loads(line) if line else {"errors": ["fleet process died"]})
            fleet_cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            console_cpu = sum(cpu_seconds(console.pid) for console in consoles) - cpu_held
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
            for console in consoles:
                console.terminate()
            for console in consoles:
                try:
                    console.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    console.kill()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in folder.glob("console-*.log"):
                    (args.logs / log.name).write_bytes(log.read_bytes())
        check_ins = [ms for result in results for ms in result.get("check_in_ms", [])]
        received = {
            int(task): at for result in results for task, at in result.get("received", {}).items()
        }
        delays = [received[task] - sent for task, sent in created.items() if task in received]
        errors = [text for result in results for text in result.get("errors", [])]
        # each scan received brings two progress reports and an upload after its poll
        requests = sum(result.get("polls", 0) for result in results) + 3 * len(received)
        for text in errors[:5]:
            print(f"  error: {text}")
        return Figures(
            backend=backend,
            consoles=args.consoles,
            explorers=args.explorers,
            check_ins=len(check_ins),
            check_in_p50_ms=statistics.median(check_ins) if check_ins else math.nan,
            check_in_p99_ms=percentile(check_ins, 0.99),
            tasks=len(created),
            received=len(delays),
            received_p50_s=statistics.median(delays) if delays else math.nan,
            received_p99_s=percentile(delays, 0.99),
            rss_idle_mb=rss_idle,
            rss_held_mb=rss_held,
            kb_per_poll=(rss_held - rss_idle) * 1024 / max(1, args.explorers),
            errors=len(errors),
            load=load,
            console_cpu_ms_per_request=console_cpu * 1000 / max(1, requests),
            fleet_cpu_s=(fleet_cpu_after.ru_utime + fleet_cpu_after.ru_stime)
            - (fleet_cpu.ru_utime + fleet_cpu.ru_stime),
        )


def _explorer_ids(admin: Any) -> list[int]:
    """The fleet's explorers, through the API, a page of 1,000 at a time."""
    ids: list[int] = []
    after = 0
    while True:
        page = admin.get("/api/v1/explorers", params={"limit": 1000, "after": after})
        page.raise_for_status()
        items = page.json()
        if not items:
            return ids
        ids += [int(item["id"]) for item in items if item["name"].startswith("fleet-")]
        after = int(items[-1]["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--explorers", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--consoles", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--wait", type=float, default=25.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--logs", type=Path, help="keep the consoles' logs in this folder")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if args.child:
        fleet_child()
        return 0
    if args.consoles > 1 and args.backend == "sqlite":
        raise SystemExit("several consoles share one PostgreSQL database: --backend postgresql")
    print(
        f"{args.explorers} explorers in {args.processes} processes on {args.consoles} "
        f"console(s), {args.backend}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if args.backend == "postgresql":
        from surveyor.testing.postgres import throwaway_postgres

        with throwaway_postgres() as url:
            figures = run(args, "postgresql", url)
    else:
        figures = run(args, "sqlite", None)
    print()
    print(
        f"{'backend':10} {'consoles':>8} {'explorers':>9} {'check-in p50/p99 ms':>20} "
        f"{'due→received p50/p99 s':>23} {'received':>9} {'KB/poll':>8} {'errors':>6} {'load':>5}"
    )
    print(
        f"{figures.backend:10} {figures.consoles:8} {figures.explorers:9} "
        f"{figures.check_in_p50_ms:9.1f}/{figures.check_in_p99_ms:<10.1f} "
        f"{figures.received_p50_s:11.3f}/{figures.received_p99_s:<11.3f} "
        f"{figures.received:4}/{figures.tasks:<4} {figures.kb_per_poll:8.1f} "
        f"{figures.errors:6} {figures.load:5.2f}"
    )
    print(
        f"\ngoal: check-in p99 <= {CHECK_IN_GOAL_MS:.0f} ms, due-to-received p99 <= "
        f"{RECEIVED_GOAL_S:.0f} s, every scan received, 0 errors: "
        f"{'met' if figures.met else 'NOT met'}; console RSS {figures.rss_idle_mb:.0f} MB idle, "
        f"{figures.rss_held_mb:.0f} MB with every poll held; load average now "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"console CPU {figures.console_cpu_ms_per_request:.2f} ms per request once the polls "
        f"were held; the fleet processes' CPU {figures.fleet_cpu_s:.1f} s"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(figures) | {"met": figures.met}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
