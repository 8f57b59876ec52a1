"""The scan engine against real services on loopback (127.77.0.0/16 is this module's own).

Every scan here targets 127.0.0.0/8 only (SPEC §14).
"""

from __future__ import annotations

import _socket
import itertools
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.ports import format_ports
from surveyor.core.scan_params import ScanParams, validate_scan_params
from surveyor.scan import ScanError, ScanProgress, run_scan
from surveyor.scan.connect import dial
from surveyor.scan.frames import read_frame, write_frame
from surveyor.scan.icmp import EchoPinger
from surveyor.scan.jobs import ConnectPlan
from surveyor.scan.rtt import TimeoutBounds
from surveyor.scan.settings import ScanSettings
from surveyor.scan.workers import WorkerReport, WorkerShare
from tests.support.scan_services import (
    HTTP_SERVER,
    GeneratedCertificate,
    LoopbackServices,
    loopback_services,
    make_certificate,
)

SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2"
SMTP_BANNER = "220 mail.scan-test.example ESMTP Postfix (Debian/GNU)"
WEB_TITLE = "Surveyor \u2013 test page"  # an en dash: titles are UTF-8
SECURE_TITLE = "Secure test page"
#: Short timeouts: on loopback every answer takes microseconds.
FAST = ScanSettings(
    timeouts=TimeoutBounds(initial=0.5, minimum=0.1, maximum=1.0),
    banner_timeout=0.5,
    probe_timeout=1.0,
    rdns_timeout=0.5,
)

Records = list[dict[str, Any]]


class FakeResolver:
    """Names for a few test addresses; everything else is unknown, as to a real resolver."""

    REVERSE = {"127.77.0.3": ["mail.scan-test.example.", "MAIL"]}
    FORWARD = {
        "scan-test.example": ["127.77.0.4"],
        "web.scan-test.example": ["127.77.0.3"],
        "excluded.scan-test.example": ["127.77.0.9"],
    }

    def reverse(self, address: str) -> list[str]:
        if address not in self.REVERSE:
            raise socket.herror(1, "Unknown host")
        return self.REVERSE[address]

    def forward(self, name: str) -> list[str]:
        if name not in self.FORWARD:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.FORWARD[name]


def params(targets: str, ports: list[int] | str, **given: object) -> ScanParams:
    tcp_ports = ports if isinstance(ports, str) else ",".join(map(str, ports))
    return validate_scan_params(
        {"targets": targets, "tcp_ports": tcp_ports, **given},
        default_targets="",
        default_excludes="",
        scope_cap=65536,
    )


def scan(
    scan_params: ScanParams, settings: ScanSettings = FAST, **options: Any
) -> tuple[Records, list[ScanProgress]]:
    progress: list[ScanProgress] = []
    records = list(
        run_scan(
            scan_params,
            on_progress=progress.append,
            resolver=FakeResolver(),
            settings=settings,
            **options,
        )
    )
    return records, progress


def hosts(records: Records) -> dict[str, dict[str, Any]]:
    found = [record for record in records if record["type"] == "host"]
    by_address = {record["addresses"][0]: record for record in found}
    assert len(by_address) == len(found), "one record per host"
    return by_address


def open_ports(records: Records) -> dict[str, set[int]]:
    return {
        address: {service["port"] for service in host["services"]}
        for address, host in hosts(records).items()
        if host["services"]
    }


def service(records: Records, address: str, port: int) -> dict[str, Any]:
    return next(s for s in hosts(records)[address]["services"] if s["port"] == port)


class World:
    """This module's services: which port of which host runs what."""

    def __init__(self, services: LoopbackServices, certificate: GeneratedCertificate) -> None:
        self.services = services
        self.certificate = certificate
        self.ssh = services.banner("127.77.0.2", SSH_BANNER)
        self.silent = services.silent("127.77.0.2")
        self.closed = services.closed_port("127.77.0.2")
        self.smtp = services.banner("127.77.0.3", SMTP_BANNER)
        self.web = services.http("127.77.0.3", WEB_TITLE)
        self.secure = services.https("127.77.0.4", SECURE_TITLE, certificate)
        self.listening = {
            "127.77.0.2": {self.ssh, self.silent},
            "127.77.0.3": {self.smtp, self.web},
            "127.77.0.4": {self.secure},
        }

    @property
    def ports(self) -> list[int]:
        return sorted({self.ssh, self.silent, self.closed, self.smtp, self.web, self.secure})

    def expected_open(self, addresses: list[str]) -> dict[str, set[int]]:
        """What a correct scan of `addresses` on `ports` finds open."""
        wanted = set(self.ports)
        found = {a: self.listening.get(a, set()) & wanted for a in addresses}
        return {address: ports for address, ports in found.items() if ports}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    certificate = make_certificate(
        tmp_path_factory.mktemp("certs"), "scan-test.example", "127.77.0.4"
    )
    with loopback_services() as services:
        yield World(services, certificate)


@pytest.fixture(scope="module")
def full_scan(world: World) -> tuple[Records, list[ScanProgress]]:
    """One scan of 127.77.0.1-6 with every probe, shared by the tests that read it."""
    return scan(params("127.77.0.1-6", world.ports))


ADDRESSES = [f"127.77.0.{n}" for n in range(1, 7)]


def test_the_scan_finds_exactly_the_open_ports_of_each_host(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    assert open_ports(records) == world.expected_open(ADDRESSES)


def test_every_address_that_refuses_connections_is_up_with_its_closed_ports_counted(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    found = hosts(records)
    assert set(found) == set(ADDRESSES)
    for address in ADDRESSES:
        listening = len(world.expected_open([address]).get(address, set()))
        assert found[address]["closed_ports"] == len(world.ports) - listening, address
        assert found[address]["filtered_ports"] == 0
        assert found[address]["mac"] is None
        assert found[address]["timing"]["rtt"] >= 0


def test_server_first_banners_are_read_and_their_products_named(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    ssh = service(records, "127.77.0.2", world.ssh)
    assert (ssh["banner"], ssh["service"], ssh["product"]) == (SSH_BANNER, "ssh", "OpenSSH_9.2p1")
    # it says nothing after its identification string: no algorithm lists, the banner stays
    assert "ssh" not in ssh
    smtp = service(records, "127.77.0.3", world.smtp)
    assert (smtp["banner"], smtp["service"], smtp["product"]) == (SMTP_BANNER, "smtp", "Postfix")


def test_web_servers_report_status_server_header_and_title(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    web = service(records, "127.77.0.3", world.web)
    assert web["http"] == {"status": 200, "server": HTTP_SERVER, "title": WEB_TITLE}
    assert (web["service"], web["tls"], web["banner"]) == ("http", None, None)


def test_tls_services_report_their_certificate_and_what_is_served_inside(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    secure = service(records, "127.77.0.4", world.secure)
    certificate = world.certificate
    tls = secure["tls"]
    assert {key: tls[key] for key in ("subject", "issuer", "sans", "not_before", "not_after")} == {
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "sans": certificate.sans,
        "not_before": certificate.not_before,
        "not_after": certificate.not_after,
    }
    assert tls["sha256"] == certificate.sha256
    assert tls["version"].startswith("TLS")
    # a server sending only its own certificate: no chain, its own issuer vouches for it
    assert (tls["chain"], tls["chain_issuer"]) == ([], certificate.issuer)
    assert tls["alpn"] is None  # the server offers no protocol by ALPN
    assert secure["http"] == {"status": 200, "server": HTTP_SERVER, "title": SECURE_TITLE}
    assert secure["service"] == "https"


def test_alpn_says_whether_a_server_speaks_http2_and_http_1_1_is_still_asked(
    tmp_path: Path,
) -> None:
    address = "127.77.7.1"
    certificate = make_certificate(tmp_path, "h2.scan-test.example", address)
    with loopback_services() as services:
        h2 = services.https(address, "Two", certificate, alpn=["h2", "http/1.1"])
        http1 = services.https(address, "One", certificate, alpn=["http/1.1"])
        records, _ = scan(params(address, [h2, http1]))
    chose_h2, chose_http1 = service(records, address, h2), service(records, address, http1)
    assert (chose_h2["tls"]["alpn"], chose_http1["tls"]["alpn"]) == ("h2", "http/1.1")
    # HTTP/2 chosen: the HTTP/1.1 request went on a session of its own, and was answered
    assert chose_h2["http"] == {"status": 200, "server": HTTP_SERVER, "title": "Two"}
    assert chose_http1["http"] == {"status": 200, "server": HTTP_SERVER, "title": "One"}
    assert chose_h2["service"] == chose_http1["service"] == "https"
    assert chose_h2["tls"]["sha256"] == certificate.sha256


def test_a_service_that_says_nothing_is_open_without_a_banner(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    silent = service(records, "127.77.0.2", world.silent)
    assert silent == {
        "port": world.silent,
        "proto": "tcp",
        "state": "open",
        "service": None,
        "banner": None,
        "product": None,
        "http": None,
        "tls": None,
    }


def test_reverse_dns_names_are_reported_cleaned_and_unknown_addresses_have_none(
    full_scan: tuple[Records, list[ScanProgress]],
) -> None:
    records, _ = full_scan
    found = hosts(records)
    assert found["127.77.0.3"]["hostnames"] == ["mail.scan-test.example", "mail"]
    assert all(found[a]["hostnames"] == [] for a in ADDRESSES if a != "127.77.0.3")


def test_the_task_data_is_a_config_then_hosts_then_a_summary(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, _ = full_scan
    config, summary = records[0], records[-1]
    assert [r["type"] for r in records[1:-1]] == ["host"] * len(ADDRESSES)
    assert config["type"] == "config"
    assert config["targets"] == "127.77.0.1-6"
    assert config["excludes"] == ""
    assert config["probes"] == ["banner", "http", "tls", "rdns"]
    assert config["ports"] == format_ports(world.ports)
    assert config["params"]["scope_size"] == len(ADDRESSES)
    assert config["started_at"].endswith("Z")
    assert summary["type"] == "summary"
    assert {key: summary[key] for key in ("hosts_total", "hosts_up", "open_ports", "stopped")} == {
        "hosts_total": len(ADDRESSES),
        "hosts_up": len(ADDRESSES),
        "open_ports": 5,
        "stopped": False,
    }
    assert summary["probes_sent"] >= len(ADDRESSES) * len(world.ports)


def test_progress_rises_to_exactly_one(full_scan: tuple[Records, list[ScanProgress]]) -> None:
    _, progress = full_scan
    fractions = [p.progress for p in progress]
    assert fractions == sorted(fractions)
    assert progress[-1].progress == 1.0
    assert progress[-1].hosts_done == progress[-1].hosts_total == len(ADDRESSES)
    assert progress[-1].open_ports == 5


def test_excluded_addresses_are_never_touched_and_progress_still_reaches_one() -> None:
    with loopback_services() as services:
        guarded = services.http("127.77.1.5", "do not touch")
        visible = services.http("127.77.1.6", "fine")
        records, progress = scan(
            params(
                "127.77.1.0/28",
                [guarded, visible],
                excludes="127.77.1.5 127.77.1.8-9",
                probes=[],
            )
        )
        assert services.accepted.get(("127.77.1.5", guarded), 0) == 0
    found = hosts(records)
    assert not {"127.77.1.5", "127.77.1.8", "127.77.1.9"} & set(found)
    assert len(found) == 13
    assert open_ports(records).get("127.77.1.6") == {visible}
    assert progress[-1].hosts_total == 13
    assert progress[-1].progress == 1.0


def test_hostname_targets_are_resolved_merged_with_addresses_and_excludes_apply(
    world: World,
) -> None:
    targets = (
        "127.77.0.4 scan-test.example web.scan-test.example "
        "excluded.scan-test.example nowhere.scan-test.example"
    )
    records, progress = scan(
        params(targets, [world.secure, world.web], excludes="127.77.0.9", probes="http,tls,rdns")
    )
    found = hosts(records)
    assert set(found) == {"127.77.0.4", "127.77.0.3"}
    assert found["127.77.0.4"]["hostnames"] == ["scan-test.example"]
    assert found["127.77.0.3"]["hostnames"] == [
        "web.scan-test.example",
        "mail.scan-test.example",
        "mail",
    ]
    assert service(records, "127.77.0.3", world.web)["http"]["title"] == WEB_TITLE
    assert progress[-1].hosts_total == 5
    assert progress[-1].progress == 1.0


@pytest.mark.parametrize("workers", [1, 2], ids=["one thread", "two processes"])
def test_setting_stop_halts_the_scan_within_two_seconds_with_a_stopped_summary(
    workers: int,
) -> None:
    stop = threading.Event()
    stopped_at: list[float] = []

    def on_progress(progress: ScanProgress) -> None:
        if progress.hosts_done >= 5 and not stop.is_set():
            stopped_at.append(time.monotonic())
            stop.set()

    # 65,536 hosts at 200 probes/s would take minutes
    big = params("127.81.0.0/16", [1], rate=200, probes=[], host_ping=False)
    settings = replace(FAST, workers=workers)
    records = list(run_scan(big, on_progress=on_progress, stop=stop, settings=settings))
    finished = time.monotonic()
    summary = records[-1]
    assert stopped_at, "the scan made progress"
    assert finished - stopped_at[0] < 2.0
    assert summary["type"] == "summary"
    assert summary["stopped"] is True
    assert 5 <= summary["hosts_up"] < summary["hosts_total"] == 65536


def test_a_stop_during_service_probes_keeps_the_open_ports_found() -> None:
    # Probes that would wait an hour on the silent port: only the stop can end the scan.
    slow = ScanSettings(banner_timeout=3600.0, probe_timeout=3600.0)
    stop = threading.Event()

    def on_progress(progress: ScanProgress) -> None:
        if progress.open_ports:
            stop.set()

    with loopback_services() as services:
        port = services.silent("127.77.2.1")
        found: list[list[dict[str, Any]]] = []
        scanning = threading.Thread(
            target=lambda: found.append(
                list(
                    run_scan(
                        params("127.77.2.1", [port], probes=["banner"]),
                        on_progress=on_progress,
                        stop=stop,
                        settings=slow,
                    )
                )
            ),
            daemon=True,
        )
        scanning.start()
        scanning.join(60)
    assert found, "the stop did not end the service probes"
    [records] = found
    assert stop.is_set()
    assert open_ports(records) == {"127.77.2.1": {port}}
    assert records[-1]["stopped"] is True


def test_the_global_rate_limit_holds_over_every_window() -> None:
    rate = 400
    stamps: list[tuple[float, int]] = []
    scope = params("127.79.0.0/24", "41001-41004", rate=rate, probes=[], host_ping=False)
    started = time.monotonic()
    records = list(
        run_scan(
            scope,
            on_progress=lambda p: stamps.append((time.monotonic(), p.probes_sent)),
            settings=FAST,
        )
    )
    elapsed = time.monotonic() - started
    sent = records[-1]["probes_sent"]
    assert sent >= 1024
    # generous bounds: the bucket allows a burst of 2% of a second, the clock is a busy machine's
    assert elapsed >= 0.8 * sent / rate
    # counts arrive a little after the probes; windows of a second make that delay small
    for (t0, n0), (t1, n1) in itertools.combinations(stamps, 2):
        if t1 - t0 >= 1.0:
            assert (n1 - n0) / (t1 - t0) <= 1.5 * rate


def test_the_per_host_rate_limit_spreads_one_hosts_probes_out() -> None:
    started = time.monotonic()
    records = list(
        run_scan(
            params("127.79.1.1", "42001-42150", max_host_rate=100, rate=100000, probes=[]),
            settings=FAST,
        )
    )
    elapsed = time.monotonic() - started
    # 150 ports, plus discovery probes, at 100/s after a burst of 10
    assert elapsed >= 1.0
    assert hosts(records)["127.79.1.1"]["closed_ports"] == 150


def test_sockets_in_flight_never_exceed_max_sockets() -> None:
    with loopback_services() as services:
        hole = services.black_hole("127.77.3.1")
        opened: list[_socket.socket] = []
        peak = 0

        def into_the_hole(family: int, sockaddr: tuple[str, int], attempt: int) -> Any:
            nonlocal peak
            opened[:] = [sock for sock in opened if sock.fileno() != -1]
            sock, error = dial(family, ("127.77.3.1", hole), attempt)
            opened.append(sock)
            peak = max(peak, len(opened))
            return sock, error

        quick = ScanSettings(timeouts=TimeoutBounds(0.2, 0.1, 0.2), retries=0, workers=1)
        records, _ = scan(
            params("127.77.4.0/26", [80], max_sockets=8, probes=[], host_ping=False),
            settings=quick,
            dialer=into_the_hole,
        )
    assert peak == 8
    assert hosts(records) == {}
    assert records[-1]["hosts_total"] == 64


def test_a_lossy_path_gives_the_same_findings_after_retries(world: World) -> None:
    """The first attempts of every probe are lost, and most attempts to the SSH port: the
    retries (more of them once a host is seen losing probes) still find everything."""
    hole = world.services.black_hole("127.77.3.2")

    def lossy(family: int, sockaddr: tuple[str, int], attempt: int) -> Any:
        lost = 4 if sockaddr[1] == world.ssh else 1
        if attempt < lost:
            return dial(family, ("127.77.3.2", hole), attempt)
        return dial(family, sockaddr, attempt)

    settings = ScanSettings(
        timeouts=TimeoutBounds(initial=0.1, minimum=0.05, maximum=0.2),
        banner_timeout=0.5,
        probe_timeout=1.0,
    )
    records, _ = scan(params("127.77.0.1-6", world.ports), settings, dialer=lossy)
    assert open_ports(records) == world.expected_open(ADDRESSES)
    ssh = service(records, "127.77.0.2", world.ssh)
    assert ssh["banner"] == SSH_BANNER
    assert all(host["filtered_ports"] == 0 for host in hosts(records).values())


def test_ports_that_never_answer_are_filtered_not_open() -> None:
    with loopback_services() as services:
        hole = services.black_hole("127.77.3.3")
        web = services.http("127.77.3.3", "reachable")
        quick = ScanSettings(timeouts=TimeoutBounds(0.2, 0.05, 0.2), retries=1)
        records, _ = scan(params("127.77.3.3", [hole, web], probes=[]), quick)
    host = hosts(records)["127.77.3.3"]
    assert [s["port"] for s in host["services"]] == [web]
    assert (host["closed_ports"], host["filtered_ports"]) == (0, 1)


def test_worker_processes_find_the_same_as_one_thread(
    world: World, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    records, progress = scan(params("127.77.0.1-6", world.ports), replace(FAST, workers=2))
    assert open_ports(records) == open_ports(full_scan[0])
    assert service(records, "127.77.0.2", world.ssh)["banner"] == SSH_BANNER
    assert progress[-1].progress == 1.0


def test_a_failing_worker_ends_the_scan_with_its_error() -> None:
    def broken(family: int, sockaddr: tuple[str, int], attempt: int) -> Any:
        raise RuntimeError("the network card caught fire")

    with pytest.raises(ScanError, match="caught fire"):
        scan(params("127.77.5.1", [80], probes=[]), dialer=broken)


def test_icmp_echo_discovers_hosts_when_the_process_may_send_it() -> None:
    pinger = EchoPinger.open(os.getpid())
    if pinger is None:
        assert os.geteuid() != 0, "root may always open a raw socket"
        return
    try:
        assert pinger.send("127.77.6.1")
        answered: list[str] = []
        deadline = time.monotonic() + 2.0
        while "127.77.6.1" not in answered and time.monotonic() < deadline:
            select.select([pinger], [], [], 0.2)
            answered += pinger.answered()
        assert "127.77.6.1" in answered
    finally:
        pinger.close()


def test_the_records_written_as_task_data_read_back_the_same(
    tmp_path: Path, full_scan: tuple[Records, list[ScanProgress]]
) -> None:
    from surveyor.scan import read_task_data, write_task_data

    path = tmp_path / "scan.jsonl.gz"
    assert write_task_data(full_scan[0], path) == len(full_scan[0])
    assert list(read_task_data(path)) == full_scan[0]


def test_a_worker_process_whose_engine_is_gone_stops_by_itself() -> None:
    slow = ConnectPlan(ports=(1,), rate=200.0)
    share = WorkerShare(params("127.82.0.0/16", [1]).scope)
    worker = subprocess.Popen(
        [sys.executable, "-m", "surveyor.scan.worker_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert worker.stdin is not None
        assert worker.stdout is not None
        write_frame(worker.stdin, (slow, share))
        worker.stdin.close()
        first = read_frame(worker.stdout)
        assert isinstance(first, WorkerReport)
        assert not first.done
        worker.stdout.close()  # as if the engine's process had died
        # 65,536 hosts at 200 probes/s would keep it busy for five minutes
        assert worker.wait(timeout=10) == 0
    finally:
        worker.kill()
