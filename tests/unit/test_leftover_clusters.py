"""Throwaway PostgreSQL clusters that a killed run left in the temporary directory are removed
when the next one starts; a cluster being made or in use never is."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from surveyor.testing.postgres import CLUSTER_PREFIX, remove_leftover_clusters

HOURS_AGO = 2 * 3600


def cluster(directory: Path, name: str, *, pid: int | None, age: float) -> Path:
    root = directory / f"{CLUSTER_PREFIX}{name}"
    data = root / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    if pid is not None:
        (data / "postmaster.pid").write_text(f"{pid}\n{data}\n")
    moment = time.time() - age
    for path in (data / "PG_VERSION", data, root):
        os.utime(path, (moment, moment))
    return root


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_only_old_clusters_without_a_server_are_removed(tmp_path: Path) -> None:
    killed = cluster(tmp_path, "killed", pid=dead_pid(), age=HOURS_AGO)
    never_started = cluster(tmp_path, "never-started", pid=None, age=HOURS_AGO)
    being_made = cluster(tmp_path, "being-made", pid=None, age=5)
    in_use = cluster(tmp_path, "in-use", pid=os.getpid(), age=HOURS_AGO)
    other = tmp_path / "someone-else"
    other.mkdir()
    os.utime(other, (time.time() - HOURS_AGO,) * 2)

    removed = remove_leftover_clusters(tmp_path)

    assert sorted(removed) == sorted([killed, never_started])
    assert not killed.exists()
    assert not never_started.exists()
    assert being_made.exists()
    assert in_use.exists()
    assert other.exists()


def test_a_garbled_pid_file_counts_as_no_server(tmp_path: Path) -> None:
    root = cluster(tmp_path, "garbled", pid=None, age=HOURS_AGO)
    (root / "data" / "postmaster.pid").write_text("not a pid\n")
    os.utime(root / "data", (time.time() - HOURS_AGO,) * 2)
    assert remove_leftover_clusters(tmp_path) == [root]
    assert not root.exists()


def test_nothing_to_remove_is_a_quiet_no_op(tmp_path: Path) -> None:
    assert remove_leftover_clusters(tmp_path) == []
