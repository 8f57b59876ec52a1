"""What Surveyor names on real Debian servers: `surveyor scan` in the daemon lab, read back as
processing reads it, against the installed packages (`dpkg-query`).

The services and hosts Surveyor cannot name yet are listed (`UNNAMED_TODAY`,
`NO_OS_EVIDENCE_TODAY`) and checked to stay unnamed, so that a probe that learns to name one
makes this test say so, and the list shrinks; nothing else may go unnamed.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.identify import Identification, identify
from surveyor.core.ports import format_ports
from surveyor.processing.records import parse_host
from surveyor.scan.taskdata import read_task_data
from surveyor.testing import labnetns
from surveyor.testing.daemonlab import DaemonLab, open_daemon_lab
from surveyor.testing.daemonplan import (
    APACHE,
    DAEMON_PORTS,
    LIGHTTPD,
    OS_FAMILY_PATTERN,
    DaemonHost,
    scan_range,
    upstream_version,
)
from surveyor.testing.labcerts import LAB_CA_NAME
from surveyor.testing.labnetns import LabCommandError
from surveyor.testing.labplan import LAB_SUBNET
from surveyor.testing.netlab import new_tag

SURVEYOR = str(Path(sys.executable).with_name("surveyor"))
#: Servers that say nothing Surveyor's probes read today: none since PostgreSQL, Redis, SMB
#: and DNS are asked in their own protocols on their ports (issue 16, point 2).
UNNAMED_TODAY: frozenset[str] = frozenset()
#: Hosts whose answers name no operating system: nothing but a bare `Server: lighttpd/…`,
#: PostgreSQL's refusal of a startup packet, Redis asking for a password (its `INFO`, which
#: names the system, needs one in the lab), or Samba (which runs on more than one system).
NO_OS_EVIDENCE_TODAY = frozenset({"lighttpd", "postgres", "redis", "smb"})
#: Hosts whose answers carry a Debian revision (`Debian-2+deb12u10`, `-0+deb12u1`,
#: BIND's `9.18.49-1~deb12u3-Debian`), which names the Debian release.
DEBIAN_RELEASE_NAMED = frozenset({"ssh", "nginx", "mail", "mariadb", "dns"})


@pytest.fixture(scope="module")
def identified(
    daemon_lab: DaemonLab, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[dict[str, Any], Identification]]:
    """Host name -> its host record and what the fingerprint rules make of it."""
    output = tmp_path_factory.mktemp("identify") / "daemons.jsonl.gz"
    args = [SURVEYOR, "scan", scan_range(), "--ports", format_ports(DAEMON_PORTS), "-o", output]
    done = daemon_lab.net.run_in_scanner([str(arg) for arg in args], timeout=300)
    assert done.returncode == 0, f"surveyor scan failed:\n{done.stdout}\n{done.stderr}"
    found: dict[str, tuple[dict[str, Any], Identification]] = {}
    for line, record in enumerate(read_task_data(output), start=1):
        if record["type"] != "host":
            continue
        observation = parse_host(record, line)
        host = next(h for h in daemon_lab.hosts if str(h.address) in record["addresses"])
        found[host.name] = (record, identify(observation.services))
        # processing stores the same OS the rules name
        assert observation.os == found[host.name][1].os, host.name
    return found


def open_ports(record: dict[str, Any]) -> list[int]:
    return sorted(s["port"] for s in record["services"] if s["state"] == "open")


def test_every_server_of_every_host_is_found_open(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    found = {name: open_ports(record) for name, (record, _) in identified.items()}
    assert found == {host.name: list(host.tcp_ports) for host in daemon_lab.hosts}


def test_products_and_versions_are_the_installed_packages(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    named = 0
    for host in daemon_lab.hosts:
        _, identification = identified[host.name]
        services = identification.services or {}
        for port in host.tcp_ports:
            daemon = host.daemon_on(port)
            truth = daemon_lab.truth_of(host, port)
            identity = services.get(("tcp", port))
            where = f"{host.name}:{port} ({daemon.package} {truth.debian_version})"
            if daemon.key in UNNAMED_TODAY:
                assert identity is None, f"{where} is now named {identity}: update UNNAMED_TODAY"
                continue
            assert identity is not None, f"{where}: no product named"
            assert identity.product == daemon.product, where
            assert truth.names_product(identity.product), where
            # a version is named exactly when the server tells it, and then it is the package's
            expected_version = truth.version if daemon.announces_version else ""
            assert identity.version == expected_version, where
            named += 1
    assert named == 18


def test_the_os_family_is_linux_wherever_the_answers_name_a_system(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    debian_release = Path("/etc/debian_version").read_text().split(".")[0]
    for host in daemon_lab.hosts:
        _, identification = identified[host.name]
        if host.name in NO_OS_EVIDENCE_TODAY:
            assert identification.os == "", f"{host.name} now names {identification.os}"
            continue
        assert OS_FAMILY_PATTERN.search(identification.os), (host.name, identification.os)
        assert identification.device_type == "server", host.name
        if host.name in DEBIAN_RELEASE_NAMED:
            assert identification.os == "Debian Linux", host.name
            assert identification.os_version == debian_release, host.name


def test_tls_servers_present_their_chain_or_their_self_signed_certificate(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    for name, self_signed in (("nginx", False), ("apache", True)):
        record, _ = identified[name]
        tls = next(s for s in record["services"] if s["port"] == 443)["tls"]
        issued = daemon_lab.certificates[(name, 443)]
        assert tls["sha256"] == issued.sha256, name
        assert tls["subject"] == issued.subject, name
        if self_signed:
            assert tls["issuer"] == tls["subject"], name
        else:
            assert f"CN={LAB_CA_NAME}" in tls["issuer"], name


def test_versions_come_from_dpkg_without_epoch_revision_or_repack() -> None:
    assert upstream_version("1:9.2p1-2+deb12u10") == "9.2p1"
    assert upstream_version("2:4.17.12+dfsg-0+deb12u4") == "4.17.12"
    assert upstream_version("1:2.3.19.1+dfsg1-2.1+deb12u7") == "2.3.19.1"
    assert upstream_version("5:7.0.15-1~deb12u10") == "7.0.15"
    assert upstream_version("3.0.3-13+b2") == "3.0.3"
    assert upstream_version("1.4.69") == "1.4.69"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found


def test_a_server_that_cannot_start_fails_the_lab_with_its_log_and_leaves_nothing() -> None:
    # Apache and lighttpd on one host both want port 80: one of them must fail to bind
    clash = DaemonHost("clash", LAB_SUBNET[11], (APACHE, LIGHTTPD))
    tag = new_tag()
    with pytest.raises(LabCommandError) as failed, open_daemon_lab((clash,), tag=tag):
        pytest.fail("the lab started two servers on one port")
    assert re.search(r"(apache2|lighttpd) .*exited", str(failed.value)), failed.value
    assert "Address already in use" in str(failed.value)
    assert not labnetns.namespaces_of_lab(tag)
    assert not list(Path(tempfile.gettempdir()).glob(f"{tag}-*"))
    assert not _processes_mentioning(tag)
