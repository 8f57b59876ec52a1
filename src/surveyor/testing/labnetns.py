"""Network namespaces for the lab: create, run inside, remove, and recover from crashed runs.

Every lab has a tag (`svl-<6 hex>`) that prefixes the names of all its namespaces. Before creating
anything, a lab records its tag, its owner process and its namespaces in a registry under /run.
A later lab removes the namespaces of registry entries whose owner process is gone (a run that
was killed before it could clean up) and never touches any other namespace, so labs of other
test sessions running at the same time are safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REGISTRY = Path("/run/surveyor-netlab")
#: Per-namespace files `ip netns exec` bind-mounts over /etc (hosts, resolv.conf).
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
TAG_PREFIX = "svl-"
COMMAND_SECONDS = 20.0


class LabUnavailable(RuntimeError):
    """The lab cannot be built here; raised so that tests fail loudly, never skip."""


class LabCommandError(RuntimeError):
    """A command that builds or inspects the lab failed; the message holds its output."""


def run(args: Sequence[str], *, stdin: str | None = None) -> str:
    """Run one command with an explicit argument list; return its stdout or raise with stderr."""
    try:
        done = subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabCommandError(f"{' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise LabCommandError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def in_namespace(namespace: str, args: Sequence[str]) -> list[str]:
    """The argument list that runs `args` inside `namespace`."""
    return ["ip", "netns", "exec", namespace, *args]


def ip(namespace: str, *args: str) -> str:
    """Run `ip -n NAMESPACE ARGS...`: every lab link and address change happens in a namespace."""
    return run(["ip", "-n", namespace, *args])


def existing_namespaces() -> set[str]:
    names = run(["ip", "netns", "list"]).split("\n")
    return {line.split()[0] for line in names if line.strip()}


def namespaces_of_lab(tag: str) -> set[str]:
    """The namespaces of lab `tag` that exist right now."""
    return {name for name in existing_namespaces() if name.startswith(f"{tag}-")}


def prepare_namespace(name: str, etc_files: dict[str, str] | None = None) -> None:
    """Bring up the loopback of a new namespace and write the /etc files its processes see."""
    if etc_files:
        directory = NETNS_ETC / name
        directory.mkdir(parents=True, exist_ok=True)
        for file_name, content in etc_files.items():
            (directory / file_name).write_text(content)
    ip(name, "link", "set", "lo", "up")


def remove_namespace(name: str) -> None:
    """Kill whatever still runs in `name`, delete it and its /etc files. Idempotent."""
    if (NETNS_RUN / name).exists():
        with contextlib.suppress(LabCommandError):
            for pid in run(["ip", "netns", "pids", name]).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(LabCommandError):
            run(["ip", "netns", "delete", name])
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def _process_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks, which tells a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the fields after it do not
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """Who owns the lab `tag`, which namespaces it may have created, where its files are."""

    tag: str
    owner_pid: int
    owner_start: str | None
    namespaces: tuple[str, ...]
    workdir: Path

    @property
    def path(self) -> Path:
        return REGISTRY / f"{self.tag}.json"

    def owner_alive(self) -> bool:
        return self.owner_start is not None and _process_start(self.owner_pid) == self.owner_start

    def save(self) -> None:
        REGISTRY.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {
            "tag": self.tag,
            "owner_pid": self.owner_pid,
            "owner_start": self.owner_start,
            "namespaces": list(self.namespaces),
            "workdir": str(self.workdir),
        }
        self.path.write_text(json.dumps(record))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def for_this_process(
        cls, tag: str, namespaces: tuple[str, ...], workdir: Path
    ) -> RegistryEntry:
        pid = os.getpid()
        return cls(tag, pid, _process_start(pid), namespaces, workdir)

    @classmethod
    def load(cls, path: Path) -> RegistryEntry | None:
        try:
            record = json.loads(path.read_text())
            return cls(
                tag=str(record["tag"]),
                owner_pid=int(record["owner_pid"]),
                owner_start=record["owner_start"],
                namespaces=tuple(str(name) for name in record["namespaces"]),
                workdir=Path(record["workdir"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def remove_crashed_labs() -> list[str]:
    """Remove the namespaces of labs whose owner process died; return the tags removed."""
    if not REGISTRY.is_dir():
        return []
    removed: list[str] = []
    for path in sorted(REGISTRY.glob(f"{TAG_PREFIX}*.json")):
        entry = RegistryEntry.load(path)
        if entry is None or entry.owner_alive():
            continue
        for name in entry.namespaces:
            if name.startswith(f"{entry.tag}-"):
                remove_namespace(name)
        if entry.workdir.name.startswith(f"{entry.tag}-"):
            shutil.rmtree(entry.workdir, ignore_errors=True)
        entry.remove()
        removed.append(entry.tag)
    return removed


def require_lab_support() -> None:
    """Raise `LabUnavailable` with the reason if this machine cannot build a lab."""
    if os.geteuid() != 0:
        raise LabUnavailable(
            "the network lab needs root (network namespaces); run the lab tests as root, as CI does"
        )
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            raise LabUnavailable(
                f"the network lab needs `{tool}` (Debian package {package}); "
                "`make test` installs it via scripts/install-system-deps"
            )
    try:
        run(["ip", "netns", "list"])
    except LabCommandError as exc:
        raise LabUnavailable(f"`ip netns` does not work here: {exc}") from exc


def wait_for_line(
    process: subprocess.Popen[bytes], expected: str, seconds: float, log: Path | None = None
) -> None:
    """Wait until `process` prints the line `expected` on its stdout, or raise with its log."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + seconds
    seen = b""
    while expected.encode() not in seen.splitlines():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    else:
        return
    detail = log.read_text(errors="replace") if log is not None and log.exists() else ""
    raise LabCommandError(
        f"{process.args!r} did not print {expected!r} within {seconds} s "
        f"(exit status {process.poll()}): {seen.decode(errors='replace')}{detail}"
    )
