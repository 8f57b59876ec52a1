"""Run the real servers of one daemon lab host, inside that host's network namespace.

`python -m surveyor.testing.daemonrun PLAN.json` runs the plan's preparation commands (keys,
databases), starts each server in the foreground in a process group of its own, waits until
every port of the plan accepts (TCP) or is bound (UDP), prints `ready`, and serves until its
standard input closes (the lab closes it, or the lab's process died) or it is terminated. Then
it stops every server: SIGTERM to its group, SIGKILL to what is left. The lab deletes the
namespace afterwards, which ends anything a server left running.

A server that exits before its ports are up, or a preparation that fails, makes the runner
print the command, its status and its log, and exit 1: the lab fails with that message.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

PREPARE_SECONDS = 120.0
START_SECONDS = 60.0
STOP_SECONDS = 1.5
POLL_SECONDS = 0.05
#: after every port is up, how long every server must stay up: one that lost a race for a
#: port (two servers wanting one) fails a moment after the winner listens
SETTLE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Command:
    """A command of the plan: its arguments, the user it runs as (None: root), its log."""

    name: str
    args: tuple[str, ...]
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "args": list(self.args), "user": self.user, "env": self.env}

    @classmethod
    def load(cls, record: dict[str, Any]) -> Command:
        return cls(
            name=str(record["name"]),
            args=tuple(str(arg) for arg in record["args"]),
            user=record.get("user"),
            env={str(k): str(v) for k, v in (record.get("env") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class HostRun:
    """What one host runs: preparations, servers, and the ports that say they are up."""

    address: str
    logs: str
    prepare: tuple[Command, ...]
    servers: tuple[Command, ...]
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...] = ()

    def write(self, path: Path) -> None:
        record = {
            "address": self.address,
            "logs": self.logs,
            "prepare": [command.record() for command in self.prepare],
            "servers": [command.record() for command in self.servers],
            "tcp_ports": list(self.tcp_ports),
            "udp_ports": list(self.udp_ports),
        }
        path.write_text(json.dumps(record))

    @classmethod
    def read(cls, path: Path) -> HostRun:
        record = json.loads(path.read_text())
        return cls(
            address=record["address"],
            logs=record["logs"],
            prepare=tuple(Command.load(item) for item in record["prepare"]),
            servers=tuple(Command.load(item) for item in record["servers"]),
            tcp_ports=tuple(record["tcp_ports"]),
            udp_ports=tuple(record.get("udp_ports") or ()),
        )


class RunFailed(RuntimeError):
    """A preparation or a server failed; the message holds its log."""


def _as_user(user: str | None) -> Callable[[], None] | None:
    if user is None:
        return None
    entry = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.initgroups(user, entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote


def _environment(command: Command) -> dict[str, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **command.env}
    if command.user is not None:
        env["HOME"] = pwd.getpwnam(command.user).pw_dir
    return env


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _child(command: Command, log_file: IO[bytes]) -> dict[str, Any]:
    """How every prepare step and server runs: no input, output to its log, as its user."""
    return {
        "stdin": subprocess.DEVNULL,
        "stdout": log_file,
        "stderr": subprocess.STDOUT,
        "preexec_fn": _as_user(command.user),
        "env": _environment(command),
    }


def prepare(run: HostRun) -> None:
    for command in run.prepare:
        log = Path(run.logs) / f"{command.name}.log"
        with log.open("ab") as log_file:
            try:
                done = subprocess.run(
                    command.args,
                    **_child(command, log_file),
                    timeout=PREPARE_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RunFailed(f"{command.name}: {exc}\n{_log_text(log)}") from exc
        if done.returncode != 0:
            raise RunFailed(
                f"{command.name} ({' '.join(command.args)}) exited {done.returncode}:\n"
                f"{_log_text(log)}"
            )


def start(run: HostRun) -> list[tuple[Command, subprocess.Popen[bytes]]]:
    started = []
    for command in run.servers:
        log = Path(run.logs) / f"{command.name}.log"
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                command.args, **_child(command, log_file), start_new_session=True
            )
        started.append((command, process))
    return started


def _tcp_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
        return True
    return False


def _udp_bound(address: str, port: int) -> bool:
    """Whether a server holds the UDP port: binding it ourselves fails when one does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def wait_up(run: HostRun, started: list[tuple[Command, subprocess.Popen[bytes]]]) -> None:
    waiting = {("tcp", port) for port in run.tcp_ports} | {("udp", port) for port in run.udp_ports}
    deadline = time.monotonic() + START_SECONDS
    settled: float | None = None
    while waiting or settled is None or time.monotonic() < settled:
        if not waiting and settled is None:
            settled = time.monotonic() + SETTLE_SECONDS
        for command, process in started:
            if process.poll() is not None:
                log = Path(run.logs) / f"{command.name}.log"
                raise RunFailed(
                    f"{command.name} ({' '.join(command.args)}) exited {process.returncode} "
                    f"before {sorted(waiting)} were up:\n{_log_text(log)}"
                )
        for proto, port in sorted(waiting):
            check = _tcp_open if proto == "tcp" else _udp_bound
            if check(run.address, port):
                waiting.discard((proto, port))
        if waiting and time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {command.name}\n{_log_text(Path(run.logs) / f'{command.name}.log')}"
                for command, _ in started
            )
            raise RunFailed(f"{sorted(waiting)} not up within {START_SECONDS} s\n{logs}")
        time.sleep(POLL_SECONDS)


def stop(started: list[tuple[Command, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM every server's group, then SIGKILL whatever is left after a short wait."""
    for _, process in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for _, process in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for _, process in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    run = HostRun.read(Path(sys.argv[1]))
    signal.signal(signal.SIGTERM, _exit_on_term)
    started: list[tuple[Command, subprocess.Popen[bytes]]] = []
    try:
        prepare(run)
        started = start(run)
        wait_up(run, started)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while sys.stdin.buffer.read(4096):
            pass
    except RunFailed as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    finally:
        stop(started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
