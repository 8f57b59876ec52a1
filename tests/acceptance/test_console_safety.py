"""Operational safety of a real console process: half-sent requests are cut off, a streamed
body over the limit is a 413, a kill -9 leaves no temporary files behind once the console is
back, the data directory is private, and a full disk is a JSON answer saying what to do."""

from __future__ import annotations

import hashlib
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.explorer_processes import ServerProcess, enrollment_token, wait_until

#: How long a test waits for the console to close a connection (its timeout is 1 s).
CLOSE_DEADLINE_SECONDS = 15.0
HOST = {"version": "1", "hostname": "safety", "os": "Linux", "addresses": []}


def _started_console(folder: Path) -> Iterator[ServerProcess]:
    data = folder / "data"
    data.mkdir()
    server = ServerProcess("console", data, env={"SURVEYOR_HEADER_TIMEOUT": "1"})
    server.log = folder / "console.log"
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One console for the tests that only open connections and send requests: each uses
    connections of its own and leaves nothing behind that another test reads."""
    yield from _started_console(tmp_path_factory.mktemp("safety"))


@pytest.fixture
def own_console(tmp_path: Path) -> Iterator[ServerProcess]:
    """A console of the test's own, for a test that kills it."""
    yield from _started_console(tmp_path)


def connect(console: ServerProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", console.port))
    connection.settimeout(CLOSE_DEADLINE_SECONDS)
    return connection


def closed_without_answer(connection: socket.socket) -> bool:
    """Whether the console closes the connection, sending nothing, before the deadline."""
    try:
        return connection.recv(4096) == b""
    except TimeoutError:
        return False


def read_response(connection: socket.socket) -> bytes:
    """One whole response with a Content-Length body."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(4096)
    return head


def test_a_connection_that_never_finishes_its_request_line_is_closed(
    console: ServerProcess,
) -> None:
    with connect(console) as connection:
        connection.sendall(b"GET /heal")
        assert closed_without_answer(connection)


def test_a_connection_that_never_finishes_its_headers_is_closed(console: ServerProcess) -> None:
    with connect(console) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert closed_without_answer(connection)


def test_a_kept_alive_connection_that_starts_a_request_and_stalls_is_closed(
    console: ServerProcess,
) -> None:
    with connect(console) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(connection).startswith(b"HTTP/1.1 200")
        connection.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert closed_without_answer(connection)


def test_headers_sent_in_pieces_in_time_are_answered(console: ServerProcess) -> None:
    with connect(console) as connection:
        for piece in (b"GET /hea", b"lthz HTTP/1.1\r\nHo", b"st: 127.0.0.1\r\n", b"\r\n"):
            connection.sendall(piece)
        assert read_response(connection).startswith(b"HTTP/1.1 200")


def test_a_chunked_body_over_1_mib_is_a_413(console: ServerProcess) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'", "params": {"targets": "127.0.0.1"}}'

    answer = console.api.post(
        "/api/v1/tasks", content=body(), headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"
    assert answer.json()["error"]["message"] == "the request body is larger than 1048576 bytes"


def launched_scan(console: ServerProcess) -> tuple[str, dict[str, Any]]:
    """An enrolled explorer's secret and the scan it was given."""
    enrolled = httpx2.post(
        f"{console.url}/api/v1/explorer/enroll",
        json={**HOST, "name": "safety"},
        headers={"Authorization": f"Bearer {enrollment_token(console)}"},
        trust_env=False,
    ).json()
    console.create_scan(
        name="safety", params={"targets": "127.0.0.1"}, explorer_id=enrolled["explorer_id"]
    )
    task = httpx2.post(
        f"{console.url}/api/v1/explorer/poll",
        json={**HOST, "wait": 5},
        headers={"Authorization": f"Bearer {enrolled['secret']}"},
        trust_env=False,
        timeout=15,
    ).json()["task"]
    return str(enrolled["secret"]), task


def temporary_files(console: ServerProcess) -> list[str]:
    tasks = console.data_dir / "tasks"
    return (
        sorted(p.name for p in tasks.iterdir() if p.name.startswith(".")) if tasks.exists() else []
    )


def test_the_partial_upload_of_a_killed_console_is_removed_when_it_starts_again(
    own_console: ServerProcess,
) -> None:
    console = own_console
    secret, task = launched_scan(console)
    head = (
        f"PUT /api/v1/explorer/task-data/{task['id']} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {secret}\r\n"
        f"X-Surveyor-Attempt-Token: {task['attempt_token']}\r\n"
        f"X-Surveyor-Content-SHA256: {hashlib.sha256(b'never sent').hexdigest()}\r\n"
        "Content-Type: application/gzip\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"\x1f\x8b" + b"\x00" * (2 << 20)
    with connect(console) as connection:
        connection.sendall(head + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        wait_until(lambda: temporary_files(console), seconds=30, what="a partial upload file")
        assert console.process is not None
        console.process.kill()
        console.process.wait()
    assert temporary_files(console) != []

    console.start()

    assert temporary_files(console) == []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(console: ServerProcess) -> list[Path]:
    return [
        console.data_dir / name for name in ("surveyor.db", "surveyor.db-wal", "surveyor.db-shm")
    ]


def test_the_data_directory_and_database_files_are_private_even_if_opened_up(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    server = ServerProcess("console", data)
    server.log = tmp_path / "console.log"
    try:
        server.start()
        assert mode(data) == 0o700
        assert [mode(path) for path in database_files(server)] == [0o600] * 3
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        data.chmod(0o755)
        for path in database_files(server):
            path.chmod(0o644)

        server.start()

        assert mode(data) == 0o700
        assert [mode(path) for path in database_files(server)] == [0o600] * 3
    finally:
        server.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB filesystem of its own (tmpfs; mounting it needs root, as the lab does)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small filesystem here: {mounted.stderr}", pytrace=False)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_answered_in_json_saying_where_to_free_space(
    small_disk: Path, tmp_path: Path
) -> None:
    data = small_disk / "data"
    data.mkdir()
    server = ServerProcess("console", data)
    server.log = tmp_path / "console.log"
    server.start()
    try:
        expected = f"the console's disk is full: free space in {data} and try again"
        # The token is then remembered for a few seconds: the import's own write is what fails.
        assert server.api.get("/api/v1/sites").status_code == 200
        filler = fill(small_disk)

        refused = server.api.post(
            "/api/v1/imports",
            content=b"\x1f\x8b" + bytes(range(256)) * 16,
            headers={"Content-Type": "application/gzip"},
        )
        assert refused.status_code == 507, refused.text
        assert refused.json()["error"] == {"code": "disk_full", "message": expected, "details": {}}

        def create() -> httpx2.Response:
            scan = {"name": "while the disk is full", "params": {"targets": "127.0.0.1"}}
            return server.api.post("/api/v1/tasks", json=scan)

        answers = [create()]
        while answers[-1].status_code == 201 and len(answers) < 2000:
            answers.append(create())
        assert answers[-1].status_code == 507, answers[-1].text
        assert answers[-1].json()["error"] == {
            "code": "disk_full",
            "message": expected,
            "details": {},
        }

        filler.unlink()
        assert create().status_code == 201
    finally:
        server.close()
