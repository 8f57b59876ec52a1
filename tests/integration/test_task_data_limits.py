"""Task data over the limits (record size, nesting, expansion) on every way in: an import is
refused with a 4xx naming the limit, an explorer's upload too and its scan is canceled with
the reason, and data that reaches processing cancels its task naming the limit."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from surveyor.core.jsonl_limits import (
    DEPTH_SETTING,
    RATIO_SETTING,
    RECORD_SETTING,
    JsonlLimits,
)
from surveyor.core.scan_params import ScanParams
from surveyor.core.tasks import TaskStatus
from surveyor.scan.jobs import HostScan
from surveyor.scan.progress import ScanProgress
from surveyor.scan.records import host_record
from surveyor.scan.taskdata import encode_record
from surveyor.store.engine import Database
from tests.integration.test_explorer_agent import RunningAgent, wait_for
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import create_scan, enroll, get_task, sha256
from tests.support.inventory_data import (
    encode,
    host,
    make_place,
    process_all,
    queue_data,
    records,
    task,
)

CONFIG = b'{"type": "config", "targets": "127.0.0.1"}\n'
SUMMARY = b'{"type": "summary", "hosts": 0}\n'
SUMMARY_OF_ONE = b'{"type": "summary", "hosts": 1}\n'


def gzip_stream(*parts: bytes | tuple[bytes, int]) -> bytes:
    """gzip of the parts, a (piece, times) part repeated without building it in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = bytearray()
    for part in parts:
        piece, times = part if isinstance(part, tuple) else (part, 1)
        for _ in range(times):
            out += packer.compress(piece)
    out += packer.flush()
    return bytes(out)


def long_line(size: int) -> bytes:
    """Task data whose second line is a host record of about `size` bytes."""
    return gzip_stream(
        CONFIG, b'{"type": "host", "addresses": ["127.0.0.1"], "os": "', (b"a" * 4096, size // 4096)
    )


def deep_json(levels: int) -> bytes:
    return gzip.compress(
        CONFIG + b'{"type": "host", "x": ' + b"[" * levels + b"]" * levels + b"}\n" + SUMMARY
    )


def bomb() -> bytes:
    """Short lines (so no record is too long) decompressing far beyond the ratio."""
    return gzip_stream(CONFIG, (b"\n" * (1 << 20), 400), SUMMARY)


def site_import(console: ConsoleUnderTest, content: bytes) -> Any:
    return console.admin.post(
        "/api/v1/imports", content=content, headers={"Content-Type": "application/gzip"}
    )


def leftovers(data_dir: Path) -> list[str]:
    folder = data_dir / "tasks"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


CASES: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "a record over the limit": (lambda: long_line(3 << 20), 413, RECORD_SETTING),
    "JSON nested 100,000 levels deep": (lambda: deep_json(100_000), 400, DEPTH_SETTING),
    "a gzip bomb": (bomb, 413, RATIO_SETTING),
}


@pytest.mark.parametrize("case", CASES)
def test_an_import_over_a_limit_is_refused_naming_it_and_leaves_nothing(
    case: str, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    make, status, setting = CASES[case]

    refused = site_import(console, make())

    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert setting in error["message"]
    assert error["details"]["limit"] == setting
    assert console.admin.get("/api/v1/tasks/counts").json()["counts"]["all"] == 0
    assert leftovers(tmp_path) == []


def test_an_import_within_raised_limits_is_accepted(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roomy = JsonlLimits(max_record_bytes=4 << 20)
    content = encode(records([{**host("127.0.0.1"), "os": "a" * (3 << 20)}]))
    with running_console(db, tmp_path, monkeypatch, task_data_limits=roomy) as console:
        accepted = site_import(console, content)
    assert accepted.status_code == 201, accepted.text


UPLOAD_STATUSES = {"a record over the limit": 413, "JSON nested 100,000 levels deep": 422}


@pytest.mark.parametrize("case", CASES)
def test_an_upload_over_a_limit_is_refused_and_cancels_its_scan_naming_the_limit(
    case: str, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    make, _, setting = CASES[case]
    explorer = enroll(console)
    create_scan(console, explorer_id=explorer.id)
    launched = explorer.poll()
    assert launched is not None

    refused = explorer.upload(launched, make())

    assert refused.status_code == UPLOAD_STATUSES.get(case, 413), refused.text
    assert setting in refused.json()["error"]["message"]
    shown = get_task(console, launched["id"])
    assert shown["status"] == "canceled"
    assert setting in shown["error"]
    assert leftovers(tmp_path) == []


def test_an_upload_over_the_upload_limit_is_a_413_and_cancels_its_scan(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_console(db, tmp_path, monkeypatch, max_upload_bytes=50_000) as console:
        explorer = enroll(console)
        create_scan(console, explorer_id=explorer.id)
        launched = explorer.poll()
        assert launched is not None
        data = long_line(64 << 20)
        assert len(data) > 50_000

        refused = explorer.upload(launched, data)

        assert refused.status_code == 413, refused.text
        assert refused.json()["error"]["code"] == "too_large"
        shown = get_task(console, launched["id"])
    assert shown["status"] == "canceled"
    assert "SURVEYOR_MAX_UPLOAD_BYTES" in shown["error"]
    assert leftovers(tmp_path) == []


def deep_scan(
    params: ScanParams,
    *,
    on_progress: Callable[[ScanProgress], None] | None,
    stop: threading.Event | None,
) -> Iterator[dict[str, Any]]:
    nested: Any = []
    for _ in range(200):
        nested = [nested]
    yield {"type": "config", "targets": params.targets.text}
    yield {"type": "host", "addresses": ["127.0.0.1"], "extra": nested}
    yield {"type": "summary", "hosts": 1}


def test_an_explorer_whose_upload_is_refused_gives_it_up_and_the_scan_ends_with_the_reason(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with RunningAgent(console, state, deep_scan) as run:
        scan = create_scan(console, explorer_id=run.explorer_id)
        done = wait_for(console, scan["id"], {"canceled"})
        again = create_scan(console, explorer_id=run.explorer_id)
        wait_for(console, again["id"], {"canceled"})

    assert DEPTH_SETTING in done["error"]
    assert "stopped reporting" not in done["error"]
    assert not (state / "pending-upload.json").exists()


def test_processing_cancels_data_over_a_limit_naming_it(db: Database, tmp_path: Path) -> None:
    place = make_place(db)
    too_long = queue_data(db, tmp_path, place, long_line(2 << 20))
    too_deep = queue_data(db, tmp_path, place, deep_json(100_000))

    process_all(db, tmp_path, limits=JsonlLimits(max_record_bytes=1 << 20))

    for task_id, setting, line in ((too_long, RECORD_SETTING, 2), (too_deep, DEPTH_SETTING, 2)):
        failed = task(db, place, task_id)
        assert failed.status == TaskStatus.CANCELED
        assert setting in failed.error
        assert f"line {line}" in failed.error
    assert [p.name for p in (tmp_path / "tasks").iterdir() if p.name.startswith(".")] == []


def test_an_upload_within_the_limits_is_still_stored(console: ConsoleUnderTest) -> None:
    explorer = enroll(console)
    create_scan(console, explorer_id=explorer.id)
    launched = explorer.poll()
    assert launched is not None
    data = gzip.compress(CONFIG + b'{"type": "host", "addresses": ["127.0.0.1"]}\n' + SUMMARY)

    stored = explorer.upload(launched, data)

    assert stored.status_code == 200, stored.text
    assert stored.json()["data_sha256"] == sha256(data)


def test_an_upload_of_a_host_open_on_every_port_is_stored(console: ConsoleUnderTest) -> None:
    """Issue 12.6: the scanner's record of such a host was over the record limit, and the
    whole upload was refused."""
    explorer = enroll(console)
    create_scan(
        console, explorer_id=explorer.id, params={"targets": "127.0.0.1", "tcp_ports": "all"}
    )
    launched = explorer.poll()
    assert launched is not None
    every_port = HostScan(0, "127.0.0.1", True, tuple(range(1, 65536)))
    data = gzip.compress(CONFIG + encode_record(host_record(every_port, [])) + SUMMARY_OF_ONE)

    stored = explorer.upload(launched, data)

    assert stored.status_code == 200, stored.text
    assert stored.json()["data_sha256"] == sha256(data)
