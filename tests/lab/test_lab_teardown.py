"""A lab leaves nothing behind: not on success, not on errors or signals, not after a crash."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from surveyor.testing import labnetns
from surveyor.testing.labnetns import namespaces_of_lab as namespaces_of
from surveyor.testing.labplan import LabPlan
from surveyor.testing.netlab import NetLab, new_tag, open_lab

REPOSITORY = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0


def _lab_processes(lab: NetLab) -> list[int]:
    return [
        int(pid)
        for namespace in lab.namespaces
        for pid in labnetns.run(["ip", "netns", "pids", namespace]).split()
    ]


def _assert_gone(tag: str, pids: Sequence[int] = ()) -> None:
    assert namespaces_of(tag) == set()
    assert not list(labnetns.NETNS_ETC.glob(f"{tag}-*"))
    assert not (labnetns.REGISTRY / f"{tag}.json").exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"{tag}-*"))
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []


def test_closing_a_lab_leaves_no_namespace_process_or_file() -> None:
    with open_lab(LabPlan.small()) as lab:
        pids = _lab_processes(lab)
        assert namespaces_of(lab.tag) == set(lab.namespaces)
        assert (labnetns.REGISTRY / f"{lab.tag}.json").exists()
        assert len(pids) >= len(lab.hosts)
    _assert_gone(lab.tag, pids)


def _break_inside_a_lab(tags: list[str]) -> None:
    with open_lab(LabPlan.small()) as lab:
        tags.append(lab.tag)
        raise RuntimeError("the test broke")


def test_an_error_inside_the_lab_still_tears_it_down() -> None:
    tags: list[str] = []
    with pytest.raises(RuntimeError, match="the test broke"):
        _break_inside_a_lab(tags)
    _assert_gone(tags[0])


def test_a_lab_that_fails_to_build_leaves_nothing_behind() -> None:
    tag = new_tag()
    standard = LabPlan.standard()
    # the firewall rule for a port that cannot exist fails half way through the hosts
    broken = replace(standard.host("apps"), filtered_ports=(70000,))
    plan = LabPlan(hosts=(standard.host("web"), broken, standard.host("mail")))
    with pytest.raises(labnetns.LabCommandError, match="nft"), open_lab(plan, tag=tag):
        pytest.fail("a broken plan must not give a lab")
    _assert_gone(tag)


def _hold_lab_in_a_process(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lab.hold_lab", *args],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    started, _, _ = select.select([process.stdout], [], [], START_SECONDS)
    tag = process.stdout.readline().strip() if started else ""
    if not tag:
        process.kill()
        pytest.fail(f"the lab process did not start: {process.communicate(timeout=30)[1]}")
    return process, tag


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_tear_the_lab_down(signum: int) -> None:
    process, tag = _hold_lab_in_a_process()
    assert namespaces_of(tag)
    process.send_signal(signum)
    process.communicate(timeout=30)
    _assert_gone(tag)


def _open_with_tag(tag: str) -> None:
    with open_lab(LabPlan.small(), tag=tag):
        pytest.fail("a second lab with a tag in use must not be built")


def test_a_killed_run_is_cleaned_up_by_the_next_lab_and_live_labs_are_left_alone() -> None:
    with open_lab(LabPlan.small()) as live:
        with pytest.raises(ValueError, match="in use"):
            _open_with_tag(live.tag)
        assert namespaces_of(live.tag) == set(live.namespaces)
        process, tag = _hold_lab_in_a_process()
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        assert namespaces_of(tag), "a killed run cannot clean up after itself"
        removed = labnetns.remove_crashed_labs()
        assert tag in removed
        assert live.tag not in removed
        assert namespaces_of(live.tag) == set(live.namespaces)
        deadline = time.monotonic() + 10
        while namespaces_of(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        _assert_gone(tag)


def _namespace_pids(tag: str) -> list[int]:
    return [
        int(pid)
        for namespace in sorted(namespaces_of(tag))
        for pid in labnetns.run(["ip", "netns", "pids", namespace]).split()
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "killed"])
def test_the_real_servers_of_a_daemon_lab_end_with_it(signum: int) -> None:
    process, tag = _hold_lab_in_a_process("daemons")
    pids = _namespace_pids(tag)
    # the runner, Exim, Dovecot's master (and the children it starts) and sshd
    assert len(pids) >= 4, pids
    process.send_signal(signum)
    process.communicate(timeout=30)
    if signum == signal.SIGKILL:
        assert namespaces_of(tag), "a killed run cannot clean up after itself"
        assert tag in labnetns.remove_crashed_labs()
    deadline = time.monotonic() + 10
    while (namespaces_of(tag) or _running(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running(pids) == []
    _assert_gone(tag)


def _running(pids: Sequence[int]) -> list[int]:
    """The processes among `pids` that still run: not gone, and not dead awaiting their
    parent's reaping (the killed run's servers are orphans; init reaps them in its time)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive
