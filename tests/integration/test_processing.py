"""Processing on a real database (SQLite and PostgreSQL): task data merged into the inventory."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.scan_params import DEFAULT_SCOPE_CAP, validate_scan_params
from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.scan.jobs import HostScan
from surveyor.scan.records import config_record, host_record, summary_record
from surveyor.scan.taskdata import encode_record
from surveyor.service import tasks as task_service
from surveyor.store import accounts, inventory
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.schema import asset_changes, assets, processing_runs
from tests.support.inventory_data import (
    FINISHED_AT,
    Place,
    comparable,
    encode,
    host,
    make_place,
    process_all,
    queue_data,
    queue_hosts,
    records,
    service,
    task,
)
from tests.support.inventory_data import inventory as site_inventory

SSH = service(22, banner="SSH-2.0-OpenSSH_9.6p1 Debian-3")
HTTP = service(80, http={"status": 200, "server": "nginx", "title": "Welcome"})
LATER = "2026-03-02T12:00:00Z"
LATEST = "2026-03-03T12:00:00Z"
#: What the console stores for a scan of the test site's /24.
SCOPE_24 = {"targets": "127.0.0.0/24", "excludes": ""}


@pytest.fixture
def place(db: Database) -> Place:
    return make_place(db)


def summary_of(db: Database, place: Place, task_id: int) -> dict[str, int]:
    found = task(db, place, task_id)
    assert found.status == TaskStatus.PROCESSED, found.error
    return dict(found.change_summary or {})


def counts(**values: int) -> dict[str, int]:
    keys = ("new", "changed", "offline", "online", "unchanged", "ignored")
    summary = {key: values.get(key, 0) for key in keys}
    summary["total"] = sum(v for k, v in summary.items() if k != "offline")
    return summary


def by_address(db: Database, place: Place) -> dict[str, dict[str, object]]:
    return {row["address"]: row for row in site_inventory(db, place)}


def events(db: Database, place: Place, task_id: int) -> list[dict[str, object]]:
    with db.read() as conn:
        found = task_store.get_task(conn, place.organization_id, task_id)
        assert found is not None
        return task_store.list_events(conn, found, limit=100)


def test_a_first_scan_creates_an_asset_per_host_and_counts_them_new(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(
        db,
        tmp_path,
        place,
        [
            host(
                "127.0.0.1",
                mac="00:11:22:33:44:55",
                hostnames=["web.example"],
                services=[SSH, HTTP],
            )
        ],
    )
    assert process_all(db, tmp_path) == 2  # the scan, and the Outlier calculation it queued
    assert summary_of(db, place, task_id) == counts(new=1)
    processed = task(db, place, task_id)
    assert processed.cs_new == 1
    assert processed.progress_process == 1.0
    assert processed.stats["processing"] == {"records_done": 1, "records_total": 1}
    assert processed.lease_owner is None
    [asset] = site_inventory(db, place)
    assert asset["addresses"] == ["127.0.0.1"]
    assert asset["mac"] == "00:11:22:33:44:55"
    assert asset["hostname"] == "web.example"
    assert asset["os"] == "Debian Linux"
    assert asset["alive"] is True
    assert asset["first_seen"].isoformat() == "2026-03-01T12:00:00+00:00"
    assert [(s["port"], s["name"], s["product"]) for s in asset["services"]] == [
        (22, "ssh", "OpenSSH 9.6p1"),
        (80, "http", "nginx"),
    ]


def test_processing_the_same_data_twice_leaves_the_inventory_as_it_was(
    db: Database, place: Place, tmp_path: Path
) -> None:
    hosts = [
        host("127.0.0.1", mac="00:11:22:33:44:55", services=[SSH]),
        host("127.0.0.2", hostnames=["db.example"], services=[SSH, HTTP]),
        host("127.0.0.3"),
    ]
    first = queue_hosts(db, tmp_path, place, hosts)
    process_all(db, tmp_path)
    before = comparable(site_inventory(db, place))
    second = queue_hosts(db, tmp_path, place, hosts)
    process_all(db, tmp_path)
    assert summary_of(db, place, first) == counts(new=3)
    assert summary_of(db, place, second) == counts(unchanged=3)
    assert comparable(site_inventory(db, place)) == before


def reprocess(db: Database, place: Place, task_id: int) -> dict[str, object]:
    """Ask for a task to be processed again, as an admin of its organization would."""
    with db.write() as conn:
        admin = accounts.find_user_by_email(conn, "ops@example.test") or accounts.create_user(
            conn, "ops@example.test", password=None, name="Ops"
        )
        accounts.set_membership(conn, place.organization_id, admin["id"], accounts.Role.ADMIN)
        _, token = accounts.create_token(
            conn, user_id=admin["id"], organization_id=place.organization_id, name="t"
        )
        resolved = accounts.resolve_token(conn, token)
        assert resolved is not None
        return task_service.reprocess_task(conn, resolved[0], task_id, now=SYSTEM_CLOCK.now())


def runs_of(db: Database, task_id: int) -> list[dict[str, object]]:
    """The task's processing runs, oldest first, with their change report rows."""
    with db.read() as conn:
        rows = conn.execute(
            select(processing_runs)
            .where(processing_runs.c.task_id == task_id)
            .order_by(processing_runs.c.id)
        ).mappings()
        runs = [dict(row) for row in rows]
        for run in runs:
            run["changes"] = [
                dict(row)
                for row in conn.execute(
                    select(asset_changes)
                    .where(asset_changes.c.run_id == run["id"])
                    .order_by(asset_changes.c.id)
                ).mappings()
            ]
    return runs


def test_reprocessing_a_task_gives_an_all_unchanged_summary(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(
        db, tmp_path, place, [host("127.0.0.1", services=[SSH]), host("127.0.0.2")]
    )
    process_all(db, tmp_path)
    before = comparable(site_inventory(db, place))
    requeued = reprocess(db, place, task_id)
    assert requeued.status == TaskStatus.PROCESSING_QUEUED
    assert process_all(db, tmp_path) == 1
    assert summary_of(db, place, task_id) == counts(unchanged=2)
    assert comparable(site_inventory(db, place)) == before


def test_reprocessing_keeps_every_earlier_run_with_its_summary_and_change_report(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """Issue 10.9: reprocessing overwrote "8 new" with "8 unchanged" and emptied the report."""
    eight = [host(f"127.0.0.{n}", services=[SSH]) for n in range(1, 9)]
    task_id = queue_hosts(db, tmp_path, place, eight)
    process_all(db, tmp_path)
    assert summary_of(db, place, task_id) == counts(new=8)

    reprocess(db, place, task_id)
    process_all(db, tmp_path)

    assert summary_of(db, place, task_id) == counts(unchanged=8)
    first, second = runs_of(db, task_id)
    assert (first["number"], second["number"]) == (1, 2)
    assert (first["phase"], second["phase"]) == ("done", "done")
    assert (first["new"], first["unchanged"]) == (8, 0)
    assert (second["new"], second["unchanged"]) == (0, 8)
    assert [(c["kind"], c["address"]) for c in first["changes"]] == [
        ("new", f"127.0.0.{n}") for n in range(1, 9)
    ]
    assert all(c["asset_id"] is not None for c in first["changes"])
    assert second["changes"] == []
    with db.read() as conn:
        latest = inventory.finished_run(conn, task_id)
    assert latest is not None
    assert latest["number"] == 2


def test_a_host_that_changes_its_address_but_keeps_its_mac_stays_one_asset(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.5", mac="00:11:22:33:44:55", services=[SSH])])
    process_all(db, tmp_path)
    [before] = site_inventory(db, place)
    moved = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.77", mac="00:11:22:33:44:55", services=[SSH])],
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, moved) == counts(changed=1)
    [after] = site_inventory(db, place)
    assert after["id"] == before["id"]
    assert after["addresses"] == ["127.0.0.77"]
    assert after["first_seen"] == before["first_seen"]
    with db.read() as conn:
        [change] = inventory.list_changes(conn, inventory.finished_run(conn, moved)["id"])
    assert change["details"]["addresses"] == {"added": ["127.0.0.77"], "removed": ["127.0.0.5"]}


def test_hosts_that_swap_addresses_keep_their_assets_by_mac(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.5", mac="00:00:00:00:00:0a"), host("127.0.0.6", mac="00:00:00:00:00:0b")],
    )
    process_all(db, tmp_path)
    ids = {row["mac"]: row["id"] for row in site_inventory(db, place)}
    swapped = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.6", mac="00:00:00:00:00:0a"), host("127.0.0.5", mac="00:00:00:00:00:0b")],
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, swapped) == counts(changed=2)
    after = {row["mac"]: row for row in site_inventory(db, place)}
    assert {mac: row["id"] for mac, row in after.items()} == ids
    assert after["00:00:00:00:00:0a"]["addresses"] == ["127.0.0.6"]


def test_an_address_handed_to_another_machine_is_a_new_asset_and_the_old_one_goes_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """DHCP churn without MACs (a routed scan): the names tell the machines apart."""
    queue_hosts(db, tmp_path, place, [host("127.0.0.5", hostnames=["alice-pc.corp.example"])])
    process_all(db, tmp_path)
    churn = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.5", hostnames=["bob-mac.corp.example"])],
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, churn) == counts(new=1, offline=1)
    rows = sorted(site_inventory(db, place), key=lambda row: row["id"])
    assert [(r["hostname"], r["alive"]) for r in rows] == [
        ("alice-pc.corp.example", False),
        ("bob-mac.corp.example", True),
    ]


def test_the_same_address_in_two_sites_is_two_assets(
    db: Database, place: Place, tmp_path: Path
) -> None:
    branch = make_place(db, site="Branch")
    one = queue_hosts(db, tmp_path, place, [host("127.0.0.5", mac="00:11:22:33:44:55")])
    two = queue_hosts(db, tmp_path, branch, [host("127.0.0.5", mac="00:11:22:33:44:55")])
    assert process_all(db, tmp_path) == 4  # two scans, and an Outlier calculation per site
    assert summary_of(db, place, one) == counts(new=1)
    assert summary_of(db, branch, two) == counts(new=1)
    [here] = site_inventory(db, place)
    [there] = site_inventory(db, branch)
    assert here["id"] != there["id"]


def test_only_assets_inside_the_scanned_scope_are_marked_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    everyone = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.200", "127.0.1.5", "127.168.1.1"]
    queue_hosts(
        db, tmp_path, place, [host(a) for a in everyone], targets="127.0.0.0/16,127.168.1.1"
    )
    process_all(db, tmp_path)
    narrow = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.1")],
        targets="127.0.0.0/24",
        excludes="127.0.0.128/25",
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, narrow) == counts(unchanged=1, offline=2)
    alive = {address: row["alive"] for address, row in by_address(db, place).items()}
    assert alive == {
        "127.0.0.1": True,
        "127.0.0.2": False,
        "127.0.0.3": False,
        "127.0.0.200": True,  # excluded from the scan
        "127.0.1.5": True,  # outside its targets
        "127.168.1.1": True,
    }


def test_offline_marking_follows_ipv6_ranges_and_named_targets(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(
        db,
        tmp_path,
        place,
        [
            host("127.0.0.1"),
            host("fe80::5"),
            host("fe80::1:5"),
            host("127.0.0.9", hostnames=["printer.example"]),
        ],
        targets="127.0.0.0/24,fe80::/64",
    )
    process_all(db, tmp_path)
    narrow = queue_hosts(
        db,
        tmp_path,
        place,
        [host("fe80::6")],
        targets="fe80::/112,printer.example",
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, narrow) == counts(new=1, offline=2)
    alive = {address: row["alive"] for address, row in by_address(db, place).items()}
    assert alive == {
        "127.0.0.1": True,  # no IPv4 target this time
        "127.0.0.9": False,  # named by the scan's targets
        "fe80::5": False,
        "fe80::6": True,
        "fe80::1:5": True,  # outside fe80::/112
    }


def test_a_host_that_answers_again_is_counted_online(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2", services=[SSH])])
    process_all(db, tmp_path)
    queue_hosts(db, tmp_path, place, [host("127.0.0.1")], finished_at=LATER)
    process_all(db, tmp_path)
    back = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.1"), host("127.0.0.2", services=[SSH])],
        finished_at=LATEST,
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, back) == counts(unchanged=1, online=1)
    assert by_address(db, place)["127.0.0.2"]["alive"] is True


def test_data_without_targets_marks_nothing_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    partial = queue_hosts(db, tmp_path, place, [host("127.0.0.1")], targets=None, finished_at=LATER)
    process_all(db, tmp_path)
    assert summary_of(db, place, partial) == counts(unchanged=1)


def test_a_service_that_stops_answering_is_gone_while_unprobed_ports_stay(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.1", services=[SSH, HTTP, service(3306)])],
        ports="1-65535",
    )
    process_all(db, tmp_path)
    stopped = queue_hosts(
        db, tmp_path, place, [host("127.0.0.1", services=[SSH])], ports="22,80", finished_at=LATER
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, stopped) == counts(changed=1)
    [asset] = site_inventory(db, place)
    assert [s["port"] for s in asset["services"]] == [22, 3306]
    assert asset["service_count"] == 2


def test_an_older_scan_never_overrides_what_a_newer_one_saw(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1", services=[HTTP])], finished_at=LATER)
    process_all(db, tmp_path)
    old = queue_hosts(
        db, tmp_path, place, [host("127.0.0.1", services=[SSH])], finished_at=FINISHED_AT
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, old) == counts(unchanged=1)
    [asset] = site_inventory(db, place)
    assert [s["port"] for s in asset["services"]] == [80]
    assert asset["first_seen"].isoformat() == "2026-03-01T12:00:00+00:00"
    assert asset["last_seen"].isoformat() == "2026-03-02T12:00:00+00:00"


def test_a_device_answering_for_a_whole_range_is_ignored(
    db: Database, place: Place, tmp_path: Path
) -> None:
    proxy = [host(f"127.0.0.{n}", mac="00:de:ad:be:ef:00", services=[HTTP]) for n in range(1, 41)]
    tarpit = host("127.0.0.99", services=[service(port) for port in range(1, 100)])
    task_id = queue_hosts(db, tmp_path, place, [*proxy, tarpit, host("127.0.0.50")], ports="1-100")
    process_all(db, tmp_path)
    assert summary_of(db, place, task_id) == counts(new=1, ignored=41)
    assert list(by_address(db, place)) == ["127.0.0.50"]
    with db.read() as conn:
        reasons = conn.execute(
            select(asset_changes.c.details).where(asset_changes.c.kind == "ignored")
        ).scalars()
        assert {r["reason"] for r in reasons} == {
            "one device answering for many addresses",
            "answers on every port",
        }


def scanner_data(hosts: list[HostScan], tcp_ports: str) -> tuple[bytes, dict[str, object]]:
    """Task data as the scanner writes it for these hosts of 127.0.0.0/24 (gzip JSONL), and
    the params the console stored for its scan."""
    params = validate_scan_params(
        {**SCOPE_24, "tcp_ports": tcp_ports},
        default_targets="",
        default_excludes="",
        scope_cap=DEFAULT_SCOPE_CAP,
    )
    started = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    lines = [
        config_record(params, started),
        *(host_record(scan, []) for scan in hosts),
        summary_record(
            hosts_total=256,
            hosts_up=len(hosts),
            probes_sent=256 * 65535,
            open_ports=sum(len(scan.open_ports) for scan in hosts),
            duration=60.0,
            stopped=False,
            finished_at=started + timedelta(minutes=1),
        ),
    ]
    return b"".join(map(encode_record, lines)), params.to_params()


def test_a_scanners_record_of_a_host_open_on_thousands_of_ports_is_merged_within_bounds(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """Issue 12.6: a host answering on every port made a record over the record limit, and
    the whole task data was refused."""
    queue_hosts(
        db, tmp_path, place, [host("127.0.0.2", services=[service(40000)])], ports="1-65535"
    )
    process_all(db, tmp_path)
    every_port = HostScan(1, "127.0.0.1", True, tuple(range(1, 65536)))
    thousands = HostScan(2, "127.0.0.2", True, tuple(range(1, 3001)))
    content, params = scanner_data([every_port, thousands], "1-65535")
    task_id = queue_data(
        db, tmp_path, place, gzip.compress(content), task_type=TaskType.SCAN, params=params
    )
    process_all(db, tmp_path)

    assert summary_of(db, place, task_id) == counts(changed=1, ignored=1)
    [asset] = site_inventory(db, place)
    assert asset["address"] == "127.0.0.2"
    # The ports the record left out (above 2048) are not known; nor are they gone.
    assert [s["port"] for s in asset["services"]] == [*range(1, 2049), 40000]
    with db.read() as conn:
        run = inventory.finished_run(conn, task_id)
        assert run is not None
        [ignored] = inventory.list_changes(conn, run["id"], kinds=["ignored"])
    assert (ignored["address"], ignored["details"]) == (
        "127.0.0.1",
        {"reason": "answers on every port"},
    )


def test_records_of_one_host_on_several_addresses_make_one_asset(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(
        db,
        tmp_path,
        place,
        [
            host("127.0.0.1", mac="00:11:22:33:44:55", services=[SSH]),
            host("127.0.0.9"),
            host("127.0.0.2", mac="00:11:22:33:44:55", services=[HTTP]),
        ],
    )
    process_all(db, tmp_path, batch_size=1)
    assert summary_of(db, place, task_id) == counts(new=2)
    multi = by_address(db, place)["127.0.0.1"]
    assert multi["addresses"] == ["127.0.0.1", "127.0.0.2"]
    assert [s["port"] for s in multi["services"]] == [22, 80]


def test_merging_in_small_batches_gives_the_same_inventory_as_in_one(
    db: Database, place: Place, tmp_path: Path
) -> None:
    other = make_place(db, site="Copy")
    hosts = [host(f"127.0.0.{n}", services=[SSH] if n % 2 else [HTTP]) for n in range(1, 30)]
    queue_hosts(db, tmp_path, place, hosts)
    process_all(db, tmp_path, batch_size=1000)
    queue_hosts(db, tmp_path, other, hosts)
    process_all(db, tmp_path, batch_size=4)
    assert comparable(site_inventory(db, place)) == comparable(site_inventory(db, other))


def test_the_change_report_lists_what_changed_and_what_went_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    task_id = queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.1", services=[SSH]), host("127.0.0.3", hostnames=["new.example"])],
        finished_at=LATER,
    )
    process_all(db, tmp_path)
    with db.read() as conn:
        run = inventory.finished_run(conn, task_id)
        assert run is not None
        report = inventory.list_changes(conn, run["id"])
    assert sorted((r["kind"], r["address"]) for r in report) == [
        ("changed", "127.0.0.1"),
        ("new", "127.0.0.3"),
        ("offline", "127.0.0.2"),
    ]
    new = next(r for r in report if r["kind"] == "new")
    assert new["hostname"] == "new.example"
    assert new["asset_id"] is not None


def test_scans_and_imports_go_through_the_same_pipeline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    content = encode(records([host("127.0.0.1")]))
    scan = queue_data(db, tmp_path, place, content, task_type=TaskType.SCAN)
    process_all(db, tmp_path)
    assert summary_of(db, place, scan) == counts(new=1)


def test_invalid_task_data_cancels_the_task_naming_the_line(
    db: Database, place: Place, tmp_path: Path
) -> None:
    lines = records([host("127.0.0.1"), host("127.0.0.300")])
    task_id = queue_data(db, tmp_path, place, encode(lines))
    process_all(db, tmp_path)
    failed = task(db, place, task_id)
    assert failed.status == TaskStatus.CANCELED
    assert "line 3" in failed.error
    assert "127.0.0.300" in failed.error
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 0


def test_a_task_whose_data_file_is_missing_is_canceled_saying_where_it_looked(
    db: Database, place: Place, tmp_path: Path
) -> None:
    task_id = queue_hosts(db, tmp_path, place, [host("127.0.0.1")])
    (tmp_path / "tasks" / f"{task_id}.jsonl.gz").unlink()
    process_all(db, tmp_path)
    failed = task(db, place, task_id)
    assert failed.status == TaskStatus.CANCELED
    assert f"{task_id}.jsonl.gz" in failed.error


def test_a_data_file_that_is_not_the_tasks_own_is_not_merged(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """A worker pointed at another data directory finds a file under the same task id."""
    task_id = queue_hosts(db, tmp_path, place, [host("127.0.0.1")])
    (tmp_path / "tasks" / f"{task_id}.jsonl.gz").write_bytes(
        encode(records([host("127.0.0.2"), host("127.0.0.3")]))
    )
    process_all(db, tmp_path)
    failed = task(db, place, task_id)
    assert failed.status == TaskStatus.CANCELED
    assert "SHA-256" in failed.error
    assert site_inventory(db, place) == []


def test_a_scan_that_was_stopped_marks_nothing_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1")], finished_at=LATER)
    lines[-1]["stopped"] = True
    stopped = queue_data(
        db, tmp_path, place, encode(lines), task_type=TaskType.SCAN, params=SCOPE_24
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, stopped) == counts(unchanged=1)
    assert by_address(db, place)["127.0.0.2"]["alive"] is True


def test_data_the_console_received_as_partial_marks_nothing_offline_whatever_it_says(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """A stopped scan's upload is partial because the console says so, not because the data
    does: its summary may claim a finished scan."""
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    content = encode(records([host("127.0.0.1"), host("127.0.0.3")], finished_at=LATER))
    partial = queue_data(
        db, tmp_path, place, content, task_type=TaskType.SCAN, params=SCOPE_24, partial=True
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, partial) == counts(unchanged=1, new=1)
    assert {a: row["alive"] for a, row in by_address(db, place).items()} == {
        "127.0.0.1": True,
        "127.0.0.2": True,
        "127.0.0.3": True,
    }
    assert "nothing was marked offline" in events(db, place, partial)[-1]["message"]


def test_data_whose_summary_says_partial_marks_nothing_offline(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1")], finished_at=LATER)
    lines[-1]["partial"] = True
    partial = queue_data(
        db, tmp_path, place, encode(lines), task_type=TaskType.SCAN, params=SCOPE_24
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, partial) == counts(unchanged=1)
    assert by_address(db, place)["127.0.0.2"]["alive"] is True


def test_a_scope_claimed_by_the_data_never_widens_the_tasks_own(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """Issue 10.3: a config record with `targets: 0.0.0.0/0` for a task targeting 127.77.0.2
    marked the site's other assets offline and merged hosts outside the task's scope."""
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    injected = records(
        [host("127.77.0.2", services=[SSH]), host("127.0.0.9"), host("10.20.30.40")],
        targets="0.0.0.0/0",
        finished_at=LATER,
    )
    task_id = queue_data(
        db,
        tmp_path,
        place,
        encode(injected),
        task_type=TaskType.SCAN,
        params={"targets": "127.77.0.2", "excludes": ""},
    )
    process_all(db, tmp_path)

    assert summary_of(db, place, task_id) == counts(new=1, ignored=2)
    assert {a: row["alive"] for a, row in by_address(db, place).items()} == {
        "127.0.0.1": True,
        "127.0.0.2": True,
        "127.77.0.2": True,
    }
    with db.read() as conn:
        run = inventory.finished_run(conn, task_id)
        assert run is not None
        ignored = inventory.list_changes(conn, run["id"], kinds=["ignored"])
    assert [(row["address"], row["details"]) for row in ignored] == [
        ("127.0.0.9", {"reason": "outside the task's scope"}),
        ("10.20.30.40", {"reason": "outside the task's scope"}),
    ]


HTTPS = service(443, tls={"subject": "CN=web.example", "sha256": "ab" * 32})


def ports_after(
    db: Database, place: Place, tmp_path: Path, known: list[int], rescan: dict[str, object]
) -> tuple[dict[str, int], list[int]]:
    """127.0.0.1 known with services on `known` ports, then a scan stored with `rescan`'s
    `params` whose data (config `ports`) finds only SSH: its summary, and the ports left."""
    queue_hosts(
        db,
        tmp_path,
        place,
        [host("127.0.0.1", services=[SSH if port == 22 else service(port) for port in known])],
        ports="1-65535",
    )
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1", services=[SSH])], ports=rescan["ports"], finished_at=LATER)
    params = rescan["params"]
    assert isinstance(params, dict)
    task_id = queue_data(db, tmp_path, place, encode(lines), task_type=TaskType.SCAN, params=params)
    process_all(db, tmp_path)
    [asset] = site_inventory(db, place)
    return summary_of(db, place, task_id), [s["port"] for s in asset["services"]]


def test_ports_claimed_by_the_data_never_widen_the_ports_the_task_probed(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """Issue 12.2: a config record claiming `ports: 1-65535` for a task that probed port 22
    marked the host's known service on 443 gone."""
    summary, ports = ports_after(
        db,
        tmp_path=tmp_path,
        place=place,
        known=[22, 443],
        rescan={"params": {**SCOPE_24, "tcp_ports": "22"}, "ports": "1-65535"},
    )
    assert summary == counts(unchanged=1)
    assert ports == [22, 443]


def test_a_scan_whose_data_probed_fewer_ports_than_asked_marks_only_those_gone(
    db: Database, place: Place, tmp_path: Path
) -> None:
    summary, ports = ports_after(
        db,
        tmp_path=tmp_path,
        place=place,
        known=[22, 80, 443],
        rescan={"params": {**SCOPE_24, "tcp_ports": "22,80,443"}, "ports": "22,80"},
    )
    assert summary == counts(changed=1)
    assert ports == [22, 443]


def test_a_scan_whose_params_leave_out_the_ports_probed_the_default_list(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """3306 is in the default list, 12345 is not."""
    summary, ports = ports_after(
        db,
        tmp_path=tmp_path,
        place=place,
        known=[22, 3306, 12345],
        rescan={"params": SCOPE_24, "ports": "1-65535"},
    )
    assert summary == counts(changed=1)
    assert ports == [22, 12345]


def test_a_scan_whose_data_does_not_say_its_ports_probed_what_the_task_asked(
    db: Database, place: Place, tmp_path: Path
) -> None:
    summary, ports = ports_after(
        db,
        tmp_path=tmp_path,
        place=place,
        known=[22, 443, 8443],
        rescan={"params": {**SCOPE_24, "tcp_ports": "22,443"}, "ports": None},
    )
    assert summary == counts(changed=1)
    assert ports == [22, 8443]


def test_an_import_probed_the_ports_its_data_says(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1", services=[SSH, HTTP, HTTPS])])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1", services=[SSH])], ports="22,80", finished_at=LATER)
    imported = queue_data(db, tmp_path, place, encode(lines))
    process_all(db, tmp_path)
    assert summary_of(db, place, imported) == counts(changed=1)
    [asset] = site_inventory(db, place)
    assert [s["port"] for s in asset["services"]] == [22, 443]


def test_the_tasks_stored_excludes_hold_against_data_that_leaves_them_out(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2"), host("127.0.0.5")])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1"), host("127.0.0.5", services=[SSH])], finished_at=LATER)
    task_id = queue_data(
        db,
        tmp_path,
        place,
        encode(lines),
        task_type=TaskType.SCAN,
        params={"targets": "127.0.0.0/24", "excludes": "127.0.0.5"},
    )
    process_all(db, tmp_path)

    assert summary_of(db, place, task_id) == counts(unchanged=1, ignored=1, offline=1)
    five = by_address(db, place)["127.0.0.5"]
    assert five["alive"] is True
    assert five["services"] == []


def test_a_host_named_by_a_hostname_target_is_in_scope_at_any_address(
    db: Database, place: Place, tmp_path: Path
) -> None:
    lines = records([host("127.0.9.9", hostnames=["printer.example"])], targets="0.0.0.0/0")
    task_id = queue_data(
        db,
        tmp_path,
        place,
        encode(lines),
        task_type=TaskType.SCAN,
        params={"targets": "printer.example", "excludes": ""},
    )
    process_all(db, tmp_path)
    assert summary_of(db, place, task_id) == counts(new=1)


def test_an_import_marks_nothing_offline_whatever_scope_its_data_claims(
    db: Database, place: Place, tmp_path: Path
) -> None:
    """An import has no scan scope: its records are all merged, and nothing goes offline."""
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1"), host("10.1.2.3")], targets="0.0.0.0/0", finished_at=LATER)
    imported = queue_data(db, tmp_path, place, encode(lines))
    process_all(db, tmp_path)
    assert summary_of(db, place, imported) == counts(unchanged=1, new=1)
    assert {a: row["alive"] for a, row in by_address(db, place).items()} == {
        "10.1.2.3": True,
        "127.0.0.1": True,
        "127.0.0.2": True,
    }


def test_an_import_whose_stored_params_give_a_scope_is_held_to_it(
    db: Database, place: Place, tmp_path: Path
) -> None:
    queue_hosts(db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(db, tmp_path)
    lines = records([host("127.0.0.1"), host("10.1.2.3")], targets=None, finished_at=LATER)
    imported = queue_data(db, tmp_path, place, encode(lines), params=SCOPE_24)
    process_all(db, tmp_path)
    assert summary_of(db, place, imported) == counts(unchanged=1, ignored=1, offline=1)


def test_records_shaped_like_the_scan_engines_are_merged(
    db: Database, place: Place, tmp_path: Path
) -> None:
    config = {
        "type": "config",
        "version": 1,
        "scanner": "surveyor 0.1.0",
        "targets": "127.0.0.0/30",
        "excludes": "",
        "ports": "22,443",
        "probes": ["banner", "http", "tls", "rdns"],
        "params": {"targets": "127.0.0.0/30", "tcp_ports": "22,443"},
        "started_at": "2026-03-01T11:59:00.123456Z",
    }
    answer = {
        "type": "host",
        "addresses": ["127.0.0.1"],
        "mac": None,
        "hostnames": ["gw.example."],
        "services": [
            {
                "port": 443,
                "proto": "tcp",
                "state": "open",
                "service": "https",
                "banner": None,
                "product": None,
                "http": {"status": 302, "server": None, "title": None},
                "tls": {
                    "subject": "CN=gw.example",
                    "issuer": "CN=gw.example",
                    "sans": ["gw.example"],
                    "not_before": "2026-01-01T00:00:00Z",
                    "not_after": "2027-01-01T00:00:00Z",
                    "sha256": "0f" * 32,
                },
            }
        ],
        "closed_ports": [22],
        "filtered_ports": [],
        "timing": {"rtt": 0.000412},
    }
    summary = {
        "type": "summary",
        "hosts_total": 4,
        "hosts_up": 1,
        "probes_sent": 8,
        "open_ports": 1,
        "duration": 1.5,
        "stopped": False,
        "finished_at": "2026-03-01T12:00:00Z",
    }
    task_id = queue_data(db, tmp_path, place, encode([config, answer, summary]))
    process_all(db, tmp_path)
    assert summary_of(db, place, task_id) == counts(new=1)
    [asset] = site_inventory(db, place)
    assert asset["hostnames"] == ["gw.example"]
    assert asset["last_seen"].isoformat() == "2026-03-01T12:00:00+00:00"
    [https] = asset["services"]
    assert (https["name"], https["http_status"], https["tls_sans"]) == ("https", 302, "gw.example")
