"""Hostile task data against a real console process: an explorer upload and an operator
import whose single line decompresses to hundreds of megabytes, a gzip bomb, and JSON nested
100,000 levels deep. Each is refused with a 4xx naming the limit it broke (an upload also
cancels its scan with that reason), and the console's peak memory stays under 300 MB, also
while it checks a valid import of 600,000 hosts whose MACs each answer twice."""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.acceptance.conftest import BOOTSTRAP_TOKEN
from tests.support.explorer_processes import ServerProcess, enrollment_token

PEAK_MEMORY_LIMIT = 300 << 20
CONFIG = b'{"type": "config", "targets": "127.0.0.1"}\n'
SUMMARY = b'{"type": "summary", "hosts": 0}\n'
MB = 1 << 20


def gzip_of(*parts: bytes | tuple[bytes, int]) -> bytes:
    """gzip of the parts; a (piece, times) part is repeated without being built in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = bytearray()
    for part in parts:
        piece, times = part if isinstance(part, tuple) else (part, 1)
        for _ in range(times):
            out += packer.compress(piece)
    out += packer.flush()
    return bytes(out)


@functools.cache
def one_long_line(megabytes: int) -> bytes:
    """Task data whose second line never ends: `megabytes` of one host record, in about
    a thousandth of that once compressed."""
    data = gzip_of(CONFIG, b'{"type": "host", "os": "', (b"a" * MB, megabytes))
    assert len(data) < megabytes * MB // 1000
    return data


@functools.cache
def gzip_bomb() -> bytes:
    """A gigabyte of empty lines between a config and a summary: no line is long."""
    return gzip_of(CONFIG, (b"\n" * MB, 1024), SUMMARY)


@functools.cache
def many_macs(hosts: int) -> bytes:
    """Valid task data: `hosts` host records, each MAC on two of them."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = bytearray(packer.compress(b'{"type": "config", "targets": "10.0.0.0/8"}\n'))
    for n in range(hosts):
        mac = (n // 2).to_bytes(6, "big").hex(":")
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        record = f'{{"type": "host", "addresses": ["{address}"], "mac": "{mac}"}}\n'
        out += packer.compress(record.encode())
    out += packer.compress(f'{{"type": "summary", "hosts": {hosts}}}\n'.encode())
    return bytes(out + packer.flush())


@functools.cache
def deep_json() -> bytes:
    levels = 100_000
    return gzip_of(CONFIG, b'{"type": "host", "x": ' + b"[" * levels + b"]" * levels + b"}\n")


def peak_memory(console: ServerProcess) -> int:
    """The console process's peak resident memory (VmHWM) in bytes."""
    assert console.process is not None
    for line in Path(f"/proc/{console.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("the console process has no VmHWM")


def assert_unharmed(console: ServerProcess, case: str) -> None:
    """Peak memory under the limit, no temporary file left, and the console answering."""
    peak = peak_memory(console)
    print(f"console peak memory after {case}: {peak / MB:.0f} MB")
    assert peak < PEAK_MEMORY_LIMIT
    tasks = console.data_dir / "tasks"
    assert ([p.name for p in tasks.glob(".*")] if tasks.exists() else []) == []
    assert console.api.get("/healthz").status_code == 200


def chunked(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


class Explorer:
    """An explorer speaking the protocol by hand."""

    def __init__(self, console: ServerProcess) -> None:
        self.console = console
        self.http = httpx2.Client(base_url=console.url, timeout=120, trust_env=False)
        host = {"version": "1", "hostname": "hostile", "os": "Linux", "addresses": []}
        enrolled = self.http.post(
            "/api/v1/explorer/enroll",
            json={**host, "name": "hostile"},
            headers={"Authorization": f"Bearer {enrollment_token(console)}"},
        )
        assert enrolled.status_code == 201, enrolled.text
        self.id = enrolled.json()["explorer_id"]
        self.http.headers["Authorization"] = f"Bearer {enrolled.json()['secret']}"
        self.host = host

    def launched_scan(self) -> dict[str, Any]:
        self.console.create_scan(
            name="hostile", params={"targets": "127.0.0.1"}, explorer_id=self.id
        )
        answer = self.http.post("/api/v1/explorer/poll", json={**self.host, "wait": 5})
        assert answer.status_code == 200, answer.text
        task: dict[str, Any] = answer.json()["task"]
        assert task is not None
        return task

    def upload(self, task: dict[str, Any], data: bytes) -> httpx2.Response:
        return self.http.put(
            f"/api/v1/explorer/task-data/{task['id']}",
            content=chunked(data),
            headers={
                "Content-Type": "application/gzip",
                "X-Surveyor-Attempt-Token": task["attempt_token"],
                "X-Surveyor-Content-SHA256": hashlib.sha256(data).hexdigest(),
            },
        )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Without processing workers, what is measured is what the requests cost.
    server = ServerProcess(
        "console", tmp_path_factory.mktemp("hostile"), env={"SURVEYOR_WORKERS": "0"}
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def explorer(console: ServerProcess) -> Iterator[Explorer]:
    found = Explorer(console)
    yield found
    found.http.close()


UPLOADS = {
    "a 764 KB upload whose one line is 750 MiB": (
        lambda: one_long_line(750),
        413,
        "SURVEYOR_MAX_RECORD_BYTES",
    ),
    "a gzip bomb upload": (gzip_bomb, 413, "SURVEYOR_MAX_GZIP_RATIO"),
    "an upload nested 100,000 deep": (deep_json, 422, "SURVEYOR_MAX_JSON_DEPTH"),
}


@pytest.mark.parametrize("case", UPLOADS)
def test_a_hostile_upload_is_refused_and_its_scan_canceled_naming_the_limit(
    case: str, console: ServerProcess, explorer: Explorer
) -> None:
    make, status, setting = UPLOADS[case]
    data = make()
    task = explorer.launched_scan()

    answer = explorer.upload(task, data)

    assert answer.status_code == status, answer.text
    assert setting in answer.json()["error"]["message"]
    shown = console.task(task["id"])
    assert shown["status"] == "canceled"
    assert setting in shown["error"]
    assert_unharmed(console, case)


IMPORTS = {
    "a 1.5 MB import whose one line is 1.4 GiB": (
        lambda: one_long_line(1470),
        413,
        "SURVEYOR_MAX_RECORD_BYTES",
    ),
    "a gzip bomb import": (gzip_bomb, 413, "SURVEYOR_MAX_GZIP_RATIO"),
    "an import nested 100,000 deep": (deep_json, 400, "SURVEYOR_MAX_JSON_DEPTH"),
}


@pytest.mark.parametrize("case", IMPORTS)
def test_a_hostile_import_is_refused_naming_the_limit(case: str, console: ServerProcess) -> None:
    make, status, setting = IMPORTS[case]
    data = make()

    answer = httpx2.post(
        f"{console.url}/api/v1/imports",
        content=chunked(data),
        headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}", "Content-Type": "application/gzip"},
        timeout=120,
        trust_env=False,
    )

    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert setting in error["message"]
    assert error["details"]["limit"] == setting
    assert_unharmed(console, case)


def test_checking_an_import_of_many_hosts_with_macs_keeps_memory_flat(
    console: ServerProcess,
) -> None:
    data = many_macs(600_000)

    answer = httpx2.post(
        f"{console.url}/api/v1/imports",
        content=chunked(data),
        headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}", "Content-Type": "application/gzip"},
        timeout=300,
        trust_env=False,
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["stats"] == {"hosts": 600_000}
    peak = peak_memory(console)
    print(
        f"console peak memory after a {len(data) >> 20} MiB import of 600,000 hosts: "
        f"{peak / MB:.0f} MB"
    )
    assert peak < PEAK_MEMORY_LIMIT
    stored = console.data_dir / "tasks"
    assert [p.name for p in stored.iterdir()] == [f"{answer.json()['id']}.jsonl.gz"]
