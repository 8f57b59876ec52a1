"""A throwaway PostgreSQL server for tests and benchmarks.

`SURVEYOR_TEST_POSTGRES_URL` points at an existing server instead. Otherwise a new cluster is
initialised in a temporary directory with the Debian binaries and removed afterwards. As root,
the server runs as the `postgres` user, because `initdb` and `pg_ctl` refuse to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from surveyor.testing.servers import free_tcp_port

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
#: The prefix of a throwaway cluster's directory in the temporary directory.
CLUSTER_PREFIX = "surveyor-pg-"
#: A cluster directory left this long without a running server is a leftover: the process
#: that made it was killed before it could remove it.
LEFTOVER_AGE_SECONDS = 3600.0


class PostgresUnavailable(RuntimeError):
    """Raised, never skipped: a test run without PostgreSQL must fail loudly."""


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found; `make test` installs them "
        "(Debian package postgresql-15)"
    )


def _server_running(data: Path) -> bool:
    """Whether the cluster in `data` has a server process alive (its `postmaster.pid`)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and another user's
    return True


def _last_change(root: Path) -> float | None:
    """When a cluster's directory or its data directory last changed; None once it is gone."""
    try:
        times = [root.stat().st_mtime]
        with contextlib.suppress(FileNotFoundError):
            times.append((root / "data").stat().st_mtime)
    except FileNotFoundError:
        return None
    return max(times)


def remove_leftover_clusters(
    directory: Path | None = None, *, older_than: float = LEFTOVER_AGE_SECONDS
) -> list[Path]:
    """Remove the throwaway clusters that a killed test or benchmark left behind: those in
    `directory` (the temporary directory) whose server is not running and which have not
    changed for `older_than` seconds. A cluster being made, or in use, is never touched.
    Returns what was removed."""
    directory = directory or Path(tempfile.gettempdir())
    removed = []
    now = time.time()
    for root in sorted(directory.glob(f"{CLUSTER_PREFIX}*")):
        changed = _last_change(root)
        if changed is None or now - changed < older_than or _server_running(root / "data"):
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _run_as(
    user: str | None, args: list[str], **kwargs: object
) -> subprocess.CompletedProcess[str]:
    if user is not None:
        entry = pwd.getpwnam(user)

        def demote() -> None:
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

        kwargs["preexec_fn"] = demote
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@contextlib.contextmanager
def throwaway_postgres(*, fsync: bool = False) -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty PostgreSQL database; stop and remove it after."""
    existing = os.environ.get("SURVEYOR_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    pg_bin = _pg_bin()
    run_user = "postgres" if os.geteuid() == 0 else None
    remove_leftover_clusters()
    root = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
    data = root / "data"
    if run_user is not None:
        entry = pwd.getpwnam(run_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_tcp_port()
    try:
        _run_as(
            run_user,
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "surveyor",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            f"-c shared_buffers=256MB -c synchronous_commit=off"
            + ("" if fsync else " -c fsync=off -c full_page_writes=off")
        )
        _run_as(
            run_user,
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    except (subprocess.CalledProcessError, KeyError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        log = root / "log"
        if log.exists():
            detail += "\n" + log.read_text(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"could not start a throwaway PostgreSQL: {detail}") from exc
    try:
        yield f"postgresql+psycopg://surveyor@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as(
                run_user, [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
