"""How long the `surveyor` command takes to start, as whole processes.

`surveyor --help` and `surveyor task list --json` (against a console this benchmark starts on
127.0.0.1, with SQLite in a temporary folder) are each run as a fresh process, in rounds that
also run `python -c pass`, the peer: the same interpreter with nothing to import. Each figure is
the median wall time of its runs (process start to exit); the median CPU time each used is
printed beside it, as a busy machine stretches wall times far more than CPU times.

Every process runs as an installed command does: with its modules' compiled bytecode at hand.
The bytecode goes to a temporary folder (PYTHONPYCACHEPREFIX), written by one untimed run of
each command before any round, whatever PYTHONDONTWRITEBYTECODE says in the caller's
environment; otherwise the figures would be mostly Python compiling the sources.

Goal (issue 15): each command's median <= 0.15 s and <= 10x bare Python's.

    .venv/bin/python -m bench.cli_start              # 20 rounds
    .venv/bin/python -m bench.cli_start --rounds 50
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "svt_bench_cli_start_0123456789abcdef"
GOAL_SECONDS = 0.15
GOAL_RATIO = 10.0
START_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _surveyor() -> list[str]:
    """The installed `surveyor` script beside this interpreter (the way a user starts it), or
    the same entry point through `-c` where there is none."""
    script = shutil.which("surveyor", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from surveyor.cli.entry import main; main()"]


def _wait_until_up(url: str, console: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    with httpx2.Client(timeout=5, trust_env=False) as client:
        while True:
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if console.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the console did not start:\n{log.read_text()}")
            time.sleep(0.1)


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting `argv` to its exit, and the CPU seconds it used; it must
    succeed."""
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited with {done.returncode}:\n{done.stderr.decode()}")
    return seconds, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed runs of each command")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed rounds first (after the bytecode is made)"
    )
    args = parser.parse_args()

    unwanted = ("SURVEYOR_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    base = {k: v for k, v in os.environ.items() if not k.startswith(unwanted)}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, (str(SRC), os.environ.get("PYTHONPATH"))))
    with tempfile.TemporaryDirectory(prefix="surveyor-cli-start-") as folder:
        base["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "bytecode")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(folder) / "console.log"
        console_env = base | {
            "SURVEYOR_DATA": str(Path(folder) / "data"),
            "SURVEYOR_ADMIN_EMAIL": "bench@example.test",
            "SURVEYOR_ADMIN_PASSWORD": "correct horse battery staple",
            "SURVEYOR_BOOTSTRAP_TOKEN": TOKEN,
            "SURVEYOR_LOG_LEVEL": "warning",
        }
        # The CLI reads no config file of the user's: its home is the temporary folder.
        cli_env = base | {
            "HOME": folder,
            "XDG_CONFIG_HOME": str(Path(folder) / "config"),
            "SURVEYOR_URL": url,
            "SURVEYOR_TOKEN": TOKEN,
        }
        surveyor = _surveyor()
        with log.open("ab") as output:
            console = subprocess.Popen(
                [*surveyor, "console", "--host", "127.0.0.1", "--port", str(port)],
                env=console_env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(url, console, log)
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "surveyor --help": [*surveyor, "--help"],
                "surveyor task list --json": [*surveyor, "task", "list", "--json"],
            }
            for argv in cases.values():
                _run(argv, cli_env)  # writes the bytecode every later run reads
            samples: dict[str, list[float]] = {name: [] for name in cases}
            cpu: dict[str, list[float]] = {name: [] for name in cases}
            for round in range(args.warmup + args.rounds):
                for name, argv in cases.items():
                    seconds, used = _run(argv, cli_env)
                    if round >= args.warmup:
                        samples[name].append(seconds)
                        cpu[name].append(used)
        finally:
            console.terminate()
            console.wait(timeout=60)

    load = os.getloadavg()
    print(
        f"surveyor start, {args.rounds} rounds of whole processes ({surveyor[0]}); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    bare = statistics.median(samples["python -c pass"])
    bare_cpu = statistics.median(cpu["python -c pass"])
    heads = ("median", "p90", "min", "x bare", "CPU", "x bare")
    print(f"{'command':<28}" + "".join(f"{head:>9}" for head in heads) + "  goal")
    held = True
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else median
        ratio = median / bare
        if name == "python -c pass":
            mark = "(peer)"
        else:
            ok = median <= GOAL_SECONDS and ratio <= GOAL_RATIO
            held &= ok
            goal = f"<= {GOAL_SECONDS:.2f} s and <= {GOAL_RATIO:.0f}x"
            mark = f"{'holds' if ok else 'MISSED'}: {goal}"
        used = statistics.median(cpu[name])
        print(
            f"{name:<28}{median:>8.3f}s{p90:>8.3f}s{min(values):>8.3f}s{ratio:>8.1f}x"
            f"{used:>8.3f}s{used / bare_cpu:>8.1f}x  {mark}"
        )
    print(
        f"\ngoal: median <= {GOAL_SECONDS:.2f} s and <= {GOAL_RATIO:.0f}x `python -c pass`: "
        f"{'holds' if held else 'does not hold'} "
        f"(load average now {os.getloadavg()[0]:.2f}; the machine is shared, figures are noisy)"
    )
    print(
        "median, p90, min: wall time of the whole process; CPU: its median user+system time, "
        "which a busy machine disturbs less"
    )


if __name__ == "__main__":
    main()
