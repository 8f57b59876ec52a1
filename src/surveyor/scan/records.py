"""The records of task data (SPEC §7): config first, one per responding host, summary last.

A host record never grows past what the console accepts as one record
(`SURVEYOR_MAX_RECORD_BYTES`, 1 MiB by default), or the whole upload would be refused: it lists
the services of its lowest open ports, at most `MAX_SERVICES_PER_HOST` of them in at most
`MAX_SERVICES_BYTES` of JSON, and says how many more it left out (`services_truncated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from surveyor import __version__
from surveyor.core.jsonl_limits import MAX_RECORD_BYTES
from surveyor.core.ports import format_ports
from surveyor.core.scan_params import ScanParams
from surveyor.scan.jobs import HostScan
from surveyor.scan.taskdata import encode_record

#: Bumped when a record changes shape in a way a reader must know about.
TASK_DATA_VERSION = 1
#: Services listed in one host record, at most. A host open on thousands of ports is a
#: tarpit or a SYN proxy far more often than a host; its lowest ports are listed.
MAX_SERVICES_PER_HOST: Final = 2048
#: The JSON of a host record's services, at most: half the console's default record limit,
#: whatever the banners, titles and certificates say (2,048 bare open ports take about 220 KiB).
MAX_SERVICES_BYTES: Final = MAX_RECORD_BYTES // 2


def rfc3339(moment: datetime) -> str:
    """UTC, to the microsecond when there is one, with a `Z`."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def config_record(params: ScanParams, started_at: datetime) -> dict[str, Any]:
    """What was asked: targets, excludes, ports, probes, and the normalised params."""
    return {
        "type": "config",
        "version": TASK_DATA_VERSION,
        "scanner": f"surveyor {__version__}",
        "targets": params.targets.text,
        "excludes": params.excludes.text,
        "ports": format_ports(params.tcp_ports),
        "probes": [str(probe) for probe in params.probes],
        "params": params.to_json(),
        "started_at": rfc3339(started_at),
    }


def summary_record(
    *,
    hosts_total: int,
    hosts_up: int,
    probes_sent: int,
    open_ports: int,
    duration: float,
    stopped: bool,
    finished_at: datetime,
) -> dict[str, Any]:
    """How it went; `stopped` says the scan was halted before covering its scope."""
    return {
        "type": "summary",
        "hosts_total": hosts_total,
        "hosts_up": hosts_up,
        "probes_sent": probes_sent,
        "open_ports": open_ports,
        "duration": round(duration, 3),
        "stopped": stopped,
        "finished_at": rfc3339(finished_at),
    }


class HostAssembly:
    """A responding host's record, completed as its port scan, service probes and names come
    in (probes may start, and finish, before the port scan does)."""

    def __init__(self, hostnames: list[str]) -> None:
        self.scan: HostScan | None = None
        self.hostnames = list(dict.fromkeys(hostnames))
        #: the name the host was asked for by, if any (for SNI and Host, not reverse DNS's)
        self.target_name = self.hostnames[0] if self.hostnames else None
        self.services: dict[int, dict[str, Any]] = {}
        #: ports whose service probes have been started
        self.probed: set[int] = set()
        self.names_asked = False
        #: probes still running for this host
        self.pending = 0

    @property
    def complete(self) -> bool:
        return self.scan is not None and self.pending == 0

    def add_hostnames(self, names: list[str]) -> None:
        self.hostnames = list(dict.fromkeys([*self.hostnames, *names]))

    def set_service(self, entry: dict[str, Any]) -> None:
        self.services[int(entry["port"])] = entry

    def record(self) -> dict[str, Any]:
        """The host record: its open ports (as the port scan found them) with what the
        probes that finished learned of them."""
        assert self.scan is not None, "a host's record needs its port scan"
        return host_record(self.scan, self.hostnames, self.services)


def host_record(
    scan: HostScan, hostnames: list[str], described: Mapping[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A responding host: its open ports, each with its service entry from `described` when
    there is one (else as found, unprobed), within the bounds of a host record."""
    _key, address, _up, open_ports, closed, filtered, rtt = scan  # a tuple: unpacked fast
    services, left_out = bounded_services(sorted(open_ports), described or {})
    record: dict[str, Any] = {
        "type": "host",
        "addresses": [address],
        "mac": None,  # a TCP connect scan never sees link-layer addresses
        "hostnames": list(dict.fromkeys(hostnames)) if hostnames else [],
        "services": services,
        "closed_ports": closed,
        "filtered_ports": filtered,
        "timing": {"rtt": None if rtt is None else round(rtt, 6)},
    }
    if left_out:
        record["services_truncated"] = left_out
    return record


def bounded_services(
    ports: list[int], described: Mapping[int, dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """The service entries of the lowest `ports`, as many as a host record holds (at most
    `MAX_SERVICES_PER_HOST`, in at most `MAX_SERVICES_BYTES` of JSON), and how many ports
    are left out: every one above the last port listed."""
    services: list[dict[str, Any]] = []
    size = 2  # the list's brackets
    for port in ports[:MAX_SERVICES_PER_HOST]:
        entry = described.get(port) or open_port_entry(port)
        size += len(encode_record(entry))  # its JSON and a newline: the comma before it
        if size > MAX_SERVICES_BYTES:
            break
        services.append(entry)
    return services, len(ports) - len(services)


def open_port_entry(port: int) -> dict[str, Any]:
    """A service entry before (or without) any probe."""
    return {
        "port": port,
        "proto": "tcp",
        "state": "open",
        "service": None,
        "banner": None,
        "product": None,
        "http": None,
        "tls": None,
    }
