"""How a scan is split between connect workers, and the records it starts and ends with."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.scan_params import ScanParams, validate_scan_params
from surveyor.scan.engine import plan_workers
from surveyor.scan.jobs import HostJob, HostScan
from surveyor.scan.records import HostAssembly, config_record, rfc3339
from surveyor.scan.settings import DISCOVERY_PORTS, ScanSettings
from surveyor.scan.workers import BLOCK, WorkerShare, share_jobs


def params(targets: str, **given: object) -> ScanParams:
    return validate_scan_params(
        {"targets": targets, **given}, default_targets="", default_excludes="", scope_cap=65536
    )


def test_small_or_slow_scans_run_on_one_thread() -> None:
    assert plan_workers(params("127.0.0.0/24"), ScanSettings(), cores=8)[1] == 1
    slow = params("127.0.0.0/16", rate=1000)
    assert plan_workers(slow, ScanSettings(), cores=8)[1] == 1


def test_big_fast_scans_use_a_process_per_core_sharing_rate_and_sockets() -> None:
    fast = params("127.0.0.0/16", tcp_ports="1-4", rate=100000, max_sockets=1000)
    plan, count = plan_workers(fast, ScanSettings(), cores=2)
    assert count == 2
    assert (plan.rate, plan.max_sockets, plan.host_rate) == (50000, 500, 100)
    assert plan_workers(fast, ScanSettings(), cores=64)[1] == 4


def test_host_discovery_comes_with_host_ping_and_not_without() -> None:
    plan, _ = plan_workers(params("127.0.0.1"), ScanSettings())
    assert (plan.discovery_ports, plan.icmp) == (DISCOVERY_PORTS, True)
    plan, _ = plan_workers(params("127.0.0.1", host_ping=False), ScanSettings())
    assert (plan.discovery_ports, plan.icmp) == ((), False)


def test_the_config_record_says_what_was_asked() -> None:
    scan = params("127.0.0.1-5", excludes="127.0.0.3", tcp_ports="22,80-82", probes=["http"])
    record = config_record(scan, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert {key: record[key] for key in ("type", "targets", "excludes", "ports", "probes")} == {
        "type": "config",
        "targets": "127.0.0.1-5",
        "excludes": "127.0.0.3",
        "ports": "22,80-82",
        "probes": ["http"],
    }
    assert record["params"]["scope_size"] == 4
    assert record["started_at"] == "2030-01-02T03:04:05Z"


def test_times_are_rfc3339_utc() -> None:
    assert rfc3339(datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=UTC)) == "2030-01-02T03:04:05.000600Z"


def test_a_host_record_lists_services_by_port_and_names_once() -> None:
    assembly = HostAssembly(["a.example"])
    # a service probe may finish before the host's port scan does
    assembly.set_service({"port": 443, "proto": "tcp", "state": "open", "service": "https"})
    assembly.add_hostnames(["b.example", "a.example"])
    assert not assembly.complete
    assembly.scan = HostScan(1, "127.0.0.9", True, (443, 22), closed_ports=3, rtt=0.0001234567)
    assert assembly.complete
    record = assembly.record()
    assert [s["port"] for s in record["services"]] == [22, 443]
    assert record["services"][0]["banner"] is None
    assert record["services"][1]["service"] == "https"
    assert record["hostnames"] == ["a.example", "b.example"]
    assert record["timing"] == {"rtt": 0.000123}
    assert (record["closed_ports"], record["filtered_ports"], record["mac"]) == (3, 0, None)


@given(
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 300)), min_size=1, max_size=6),
    st.integers(1, 4),
)
def test_the_workers_shares_cover_the_scope_exactly_once_keyed_by_position(
    spans: list[tuple[int, int]], count: int
) -> None:
    base = int(IPv4Address("127.0.0.0"))
    targets = ",".join(
        f"{IPv4Address(base + start)}-{IPv4Address(base + start + length)}"
        for start, length in spans
    )
    scope = params(targets).scope
    shares = [list(share_jobs(WorkerShare(scope, index, count))) for index in range(count)]
    jobs = sorted(job for share in shares for job in share)
    expected = [str(address) for address in scope.iter_addresses()]
    assert [job.key for job in jobs] == list(range(len(expected)))
    assert [job.address for job in jobs] == expected
    for share in shares:  # whole blocks, each in scope order
        keys = [job.key for job in share]
        assert keys == sorted(keys)
        assert all(key // BLOCK % count == share_index(shares, share) for key in keys)


def share_index(shares: list[list[HostJob]], share: list[HostJob]) -> int:
    return next(index for index, candidate in enumerate(shares) if candidate is share)


def test_resolved_hostnames_come_after_the_addresses_of_the_first_share() -> None:
    scope = params("127.0.0.1-2").scope
    extra = (HostJob(2, "127.0.0.9"),)
    assert list(share_jobs(WorkerShare(scope, 0, 2, extra))) == [
        HostJob(0, "127.0.0.1"),
        HostJob(1, "127.0.0.2"),
        HostJob(2, "127.0.0.9"),
    ]
    assert list(share_jobs(WorkerShare(scope, 1, 2))) == []


def test_shares_walk_ipv4_then_ipv6_addresses() -> None:
    scope = params("127.0.0.1-3 ::1-::3").scope
    jobs = sorted(job for index in range(2) for job in share_jobs(WorkerShare(scope, index, 2)))
    assert [job.address for job in jobs] == [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.3",
        "::1",
        "::2",
        "::3",
    ]
