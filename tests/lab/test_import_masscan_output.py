"""Real masscan output, from the lab's scanner namespace, imported: each of `-oL`, `-oJ` and
`-oX` gives, host by host and port by port, what masscan found and what the lab holds.

masscan sends raw frames and needs the MAC of the next hop; the lab has no router, so each
run scans one host with that host's MAC as the "router" (`--router-mac`). For banners it
speaks TCP itself, from an address of the lab nobody else has (`--source-ip`), so that the
scanner namespace's kernel does not reset its connections.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from surveyor.testing.labnetns import in_namespace, run
from surveyor.testing.labplan import PortState
from surveyor.testing.netlab import LabHost, NetLab
from tests.lab.test_scan_lab import PORTS
from tests.support.imported import convert, hosts, ports

OUTPUTS = {"-oL": "list.txt", "-oJ": "scan.json", "-oX": "scan.xml"}
#: masscan's own address in the lab, for its banner connections.
MASSCAN_ADDRESS = "10.77.0.250"


def _mac(host: LabHost) -> str:
    links = run(in_namespace(host.namespace, ["ip", "-o", "link", "show", "eth0"]))
    return links.split("link/ether ", 1)[1].split()[0]


def _busiest(lab: NetLab) -> LabHost:
    return max(lab.hosts, key=lambda h: sum(h.port_state(p) is PortState.OPEN for p in PORTS))


def _masscan(lab: NetLab, host: LabHost, flag: str, output: Path) -> bytes:
    masscan = shutil.which("masscan")
    assert masscan is not None, "masscan is not installed (scripts/install-system-deps does)"
    args = [
        masscan, str(host.address), "-p", ",".join(map(str, PORTS)),
        "--adapter", "eth0", "--router-mac", _mac(host),
        "--banners", "--source-ip", MASSCAN_ADDRESS,
        "--rate", "2000", "--wait", "3", flag, str(output),
    ]  # fmt: skip
    done = lab.run_in_scanner(args, timeout=120)
    assert done.returncode == 0, f"masscan failed:\n{done.stderr[-2000:]}"
    return output.read_bytes()


def _listed(data: bytes) -> tuple[set[tuple[str, str, int]], dict[int, str]]:
    """masscan's own `-oL` lines, read plainly: (address, proto, port) of each open port,
    and the banner of each port that gave one (its `\\x0a` escapes undone)."""
    found = set()
    banners = {}
    for line in data.decode().splitlines():
        fields = line.split(None, 6)
        if len(fields) >= 5 and fields[0] == "open":
            found.add((fields[3], fields[1], int(fields[2])))
        elif len(fields) == 7 and fields[0] == "banner":
            banners[int(fields[2])] = fields[6].replace("\\x0a", "\n").replace("\\x0d", "").strip()
    return found, banners


@pytest.fixture(scope="module")
def listed_run(lab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """masscan's `-oL` output of the lab's busiest host: read plainly, it is what the imports
    of each format are held to (one run for the module; the lab does not change)."""
    return _masscan(lab, _busiest(lab), "-oL", tmp_path_factory.mktemp("masscan") / "truth.txt")


@pytest.mark.parametrize("flag", list(OUTPUTS))
def test_masscan_output_imports_what_masscan_found_and_the_lab_holds(
    lab: NetLab, listed_run: bytes, tmp_path: Path, flag: str
) -> None:
    host = _busiest(lab)
    truth = {("tcp", p) for p in PORTS if host.port_state(p) is PortState.OPEN}
    assert truth, "the lab's busiest host has open ports"
    listed, banners = _listed(listed_run)
    assert listed == {(str(host.address), proto, port) for proto, port in truth}

    # `-oL` is imported from the run read above; the other formats from runs of their own.
    data = listed_run if flag == "-oL" else _masscan(lab, host, flag, tmp_path / OUTPUTS[flag])
    records = convert(data, tmp_path)
    assert records[0]["source"] == "import:masscan"
    found = hosts(records)
    assert set(found) == {str(host.address)}
    record = found[str(host.address)]
    assert record["source"] == "import:masscan"
    assert set(ports(record)) == truth
    assert all(service["state"] == "open" for service in record["services"])
    assert records[-1]["hosts"] == 1
    lab_banners = {s.port: s.plan.banner for s in host.services if s.plan.banner}
    assert banners, "masscan grabbed banners"
    for port, banner in banners.items():
        imported = ports(record)[("tcp", port)]
        assert imported["banner"] == banner
        # masscan keeps the start of some banners (IMAP's first words) only.
        assert lab_banners[port].startswith(banner)
