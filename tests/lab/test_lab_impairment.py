"""The impaired host is slowed by `tc netem` wherever the kernel has it, else by the userspace
wire; asking for netem on a kernel without it fails with the reason.

Which branch runs depends on the kernel; both check what the lab built, so neither is a skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from surveyor.testing import labnetns
from surveyor.testing.labbuild import netem_problem
from surveyor.testing.labplan import LabPlan
from surveyor.testing.netlab import LabUnavailable, NetLab, new_tag, open_lab


def _qdisc_kinds(namespace: str) -> set[str]:
    shown = labnetns.run(["tc", "-n", namespace, "-j", "qdisc", "show", "dev", "eth0"])
    return {qdisc["kind"] for qdisc in json.loads(shown or "[]")}


def _link_kind(namespace: str) -> str:
    links = json.loads(labnetns.ip(namespace, "-d", "-j", "link", "show", "eth0"))
    return str(links[0]["linkinfo"]["info_kind"])


def test_the_lab_uses_netem_by_default_exactly_where_the_kernel_has_it(lab: NetLab) -> None:
    impaired = next(host for host in lab.hosts if host.plan.impaired)
    normal = lab.host("web")
    kernel_has_netem = netem_problem(lab.switch_namespace) is None

    assert lab.impairment == ("netem" if kernel_has_netem else "wire")
    assert ("netem" in _qdisc_kinds(impaired.namespace)) == kernel_has_netem
    # without netem, the impaired host hangs off the wire's TAP device instead of a veth
    assert _link_kind(impaired.namespace) == ("veth" if kernel_has_netem else "tun")
    assert "netem" not in _qdisc_kinds(normal.namespace)
    assert _link_kind(normal.namespace) == "veth"
    if not kernel_has_netem:
        # the wire keeps its time on a busy machine, as netem in the kernel does
        wires = _wire_processes(lab.switch_namespace)
        assert wires, "no wire process is running"
        assert {os.sched_getscheduler(pid) for pid in wires} == {os.SCHED_FIFO}


def _wire_processes(namespace: str) -> list[int]:
    """The wire processes running in the network namespace `namespace`."""
    inside = (labnetns.NETNS_RUN / namespace).stat().st_ino
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            there = (entry / "ns" / "net").stat().st_ino
        except OSError:  # it ended meanwhile
            continue
        if b"surveyor.testing.labwire" in command and there == inside:
            pids.append(int(entry.name))
    return pids


def test_asking_for_netem_gets_it_or_the_reason_it_is_missing(lab: NetLab) -> None:
    tag = new_tag()
    if netem_problem(lab.switch_namespace) is None:
        with open_lab(LabPlan.small(), impairment="netem", tag=tag) as built:
            assert built.impairment == "netem"
            assert "netem" in _qdisc_kinds(built.host("remote").namespace)
    else:
        with (
            pytest.raises(LabUnavailable, match=r"cannot run `tc netem`.*CONFIG_NET_SCH_NETEM"),
            open_lab(LabPlan.small(), impairment="netem", tag=tag),
        ):
            pass
    assert labnetns.namespaces_of_lab(tag) == set()
