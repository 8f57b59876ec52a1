"""What Surveyor names on real Debian servers: `surveyor scan` in the daemon lab, read back as
processing reads it, against the installed packages (`dpkg-query`).

The services and hosts Surveyor cannot name yet are listed (`UNNAMED_TODAY`,
`NO_OS_EVIDENCE_TODAY`) and checked to stay unnamed, so that a probe that learns to name one
makes this test say so, and the list shrinks; nothing else may go unnamed.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.identify import STACK_ATTRIBUTE, Identification, identify, reasons
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
#: Only the TCP/IP stack hint of a privileged scan names their family.
NO_OS_IN_ANSWERS = frozenset({"lighttpd", "postgres", "redis", "smb"})
#: What the scanning process runs under for an unprivileged scan: without CAP_NET_RAW.
WITHOUT_NET_RAW = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"]
#: Hosts whose answers carry a Debian revision (`Debian-2+deb12u10`, `-0+deb12u1`,
#: BIND's `9.18.49-1~deb12u3-Debian`), which names the Debian release.
DEBIAN_RELEASE_NAMED = frozenset({"ssh", "nginx", "mail", "mariadb", "dns"})


def scan_lab(
    daemon_lab: DaemonLab, output: Path, *, privileged: bool = True
) -> dict[str, tuple[dict[str, Any], Identification]]:
    """Host name -> its host record and what the fingerprint rules make of it (and of its
    stack hint, where the scan read one), from one `surveyor scan` of the lab."""
    args = [SURVEYOR, "scan", scan_range(), "--ports", format_ports(DAEMON_PORTS), "-o", output]
    command = [str(arg) for arg in args]
    done = daemon_lab.net.run_in_scanner(
        command if privileged else [*WITHOUT_NET_RAW, *command], timeout=300
    )
    assert done.returncode == 0, f"surveyor scan failed:\n{done.stdout}\n{done.stderr}"
    found: dict[str, tuple[dict[str, Any], Identification]] = {}
    for line, record in enumerate(read_task_data(output), start=1):
        if record["type"] != "host":
            continue
        observation = parse_host(record, line)
        host = next(h for h in daemon_lab.hosts if str(h.address) in record["addresses"])
        details = dict(observation.details.attributes) if observation.details else {}
        stack = details.get(STACK_ATTRIBUTE, "")
        found[host.name] = (record, identify(observation.services, stack=stack))
        # processing stores the same OS the rules name
        assert observation.os == found[host.name][1].os, host.name
    return found


@pytest.fixture(scope="module")
def identified(
    daemon_lab: DaemonLab, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[dict[str, Any], Identification]]:
    """What a privileged scan (root, as the tests run) makes of each host."""
    return scan_lab(daemon_lab, tmp_path_factory.mktemp("identify") / "daemons.jsonl.gz")


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


def test_the_os_family_is_linux_on_every_host(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    debian_release = Path("/etc/debian_version").read_text().split(".")[0]
    for host in daemon_lab.hosts:
        _, identification = identified[host.name]
        assert OS_FAMILY_PATTERN.search(identification.os), (host.name, identification.os)
        assert identification.device_type == "server", host.name
        if host.name in NO_OS_IN_ANSWERS:
            # the stack hint alone names the family, weakly, and says so
            assert identification.os == "Linux", host.name
            assert 0 < identification.os_confidence < 0.5, host.name
            assert not [f for f in identification.evidence[:-1] if "os" in f.says], host.name
            why = reasons(identification)
            assert re.fullmatch(
                r"Linux family \(TTL 64, window \d+\), from the TCP/IP stack", why[-1]
            ), why
        if host.name in DEBIAN_RELEASE_NAMED:
            assert identification.os == "Debian Linux", host.name
            assert identification.os_version == debian_release, host.name


def test_every_host_s_syn_ack_is_read_and_agrees_with_what_its_answers_say(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    for host in daemon_lab.hosts:
        record, identification = identified[host.name]
        hint = record["tcp_stack"]
        # the lab's hosts run this machine's kernel, one bridge away: nothing lowers the TTL
        assert hint["ttl"] == 64, host.name
        assert re.fullmatch(r"M\d+,S,T,N,W\d+", hint["options"]), hint
        stack = identification.evidence[-1]
        assert stack.kind == "tcp_stack", host.name
        assert stack.says == {"os": "Linux"}, host.name


def test_an_unprivileged_scan_names_what_it_did_before_the_stack_hints(
    daemon_lab: DaemonLab,
    identified: dict[str, tuple[dict[str, Any], Identification]],
    tmp_path: Path,
) -> None:
    blind = scan_lab(daemon_lab, tmp_path / "unprivileged.jsonl.gz", privileged=False)
    assert set(blind) == set(identified)
    for name, (record, identification) in blind.items():
        assert "tcp_stack" not in record, name
        privileged_record, hinted = identified[name]
        assert open_ports(record) == open_ports(privileged_record), name
        assert identification.services == hinted.services, name
        if name in NO_OS_IN_ANSWERS:
            assert identification.os == "", f"{name} now names {identification.os}"
        else:
            # the hint agrees with the answers' system: the same system, surer with it
            assert identification.os == hinted.os, name
            assert identification.os_confidence <= hinted.os_confidence, name


def test_tls_servers_present_their_chain_or_their_self_signed_certificate(
    daemon_lab: DaemonLab, identified: dict[str, tuple[dict[str, Any], Identification]]
) -> None:
    for name, self_signed in (("nginx", False), ("apache", True)):
        record, _ = identified[name]
        tls = next(s for s in record["services"] if s["port"] == 443)["tls"]
        issued = daemon_lab.certificates[(name, 443)]
        assert tls["sha256"] == issued.sha256, name
        assert tls["alpn"] == "http/1.1", name  # neither runs HTTP/2 in the lab
        assert tls["subject"] == issued.subject, name
        if self_signed:
            assert tls["issuer"] == tls["subject"], name
            assert tls["chain"] == [], name
            assert tls["chain_issuer"] == tls["subject"], name
        else:
            assert f"CN={LAB_CA_NAME}" in tls["issuer"], name
            # nginx sends its leaf and the lab CA: the chain is the CA, which issued itself
            [authority] = tls["chain"]
            assert authority["subject"] == authority["issuer"] == tls["issuer"], authority
            assert tls["chain_issuer"] == tls["issuer"], name


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


def sshd_defaults(folder: Path) -> dict[str, str]:
    """What Debian's sshd offers with the lab's configuration (which names no algorithm):
    `sshd -T`'s lists, from a configuration with a host key of the lab's kind."""
    key = folder / "ssh_host_ed25519_key"
    done = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    config = folder / "sshd_config"
    config.write_text(f"HostKey {key}\nUsePAM no\n")
    done = subprocess.run(
        ["/usr/sbin/sshd", "-T", "-f", str(config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_ssh_servers_offer_the_algorithms_sshd_says_and_hash_alike(
    daemon_lab: DaemonLab,
    identified: dict[str, tuple[dict[str, Any], Identification]],
    tmp_path: Path,
) -> None:
    offered = sshd_defaults(tmp_path)
    hashes = set()
    for host in daemon_lab.hosts:
        if 22 not in host.tcp_ports:
            continue
        record, _ = identified[host.name]
        lists = next(s for s in record["services"] if s["port"] == 22)["ssh"]
        # the server's own offer, less the markers it adds for extensions and strict kex
        kex = [
            name
            for name in lists["kex"].split(",")
            if not name.startswith(("ext-info-", "kex-strict-"))
        ]
        assert kex == offered["kexalgorithms"].split(","), host.name
        assert lists["ciphers"] == offered["ciphers"], host.name
        assert lists["macs"] == offered["macs"], host.name
        assert lists["host_key"] == "ssh-ed25519", host.name
        assert lists["compression"] in ("none", "none,zlib@openssh.com"), host.name
        joined = ";".join(lists[name] for name in ("kex", "ciphers", "macs", "compression"))
        assert lists["hassh"] == hashlib.md5(joined.encode()).hexdigest()  # noqa: S324
        hashes.add(lists["hassh"])
    assert len(hashes) == 1  # one package, one configuration: one hash
