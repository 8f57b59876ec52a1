"""`surveyor db backup` and `surveyor db restore`: a busy console is backed up while tasks
keep arriving, restored into a new data directory, and found whole there: the same tasks,
assets and task data files. A damaged, foreign or hostile file restores nothing, and a
database in use is never overwritten. (SQLite installs; PostgreSQL ones use pg_dump, which
the command says.)"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from surveyor.cli.main import app
from surveyor.store.backup import BackupError, backup_sqlite, read_manifest, restore_sqlite
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import upgrade
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.inventory_data import encode, host, process_all, records, service


def rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_files(data_dir: Path) -> dict[str, str]:
    folder = data_dir / "tasks"
    return {p.name: digest(p) for p in sorted(folder.glob("*.jsonl.gz"))}


@pytest.fixture
def busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A console on an SQLite file in its data directory, with processed imports."""
    data = tmp_path / "live"
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'surveyor.db'}")
    upgrade(engine)
    db = Database(engine)
    with running_console(db, data, monkeypatch) as console:
        site = console.admin.get("/api/v1/sites").json()[0]["name"]
        for first in (1, 20):
            content = encode(
                records([host(f"127.0.3.{n}", services=[service(22)]) for n in range(first, 30)])
            )
            answer = console.admin.post(
                "/api/v1/imports",
                params={"site": site},
                content=content,
                headers={"Content-Type": "application/gzip"},
            )
            assert answer.status_code == 201, answer.text
        # two imports, and the one Outlier calculation they queued (coalesced)
        assert process_all(db, data) == 3
        (data / "secret.key").write_text("a-key-for-the-test\n")
        yield console, data
    engine.dispose()


def create_scans(console: ConsoleUnderTest, count: int, stop: threading.Event) -> list[int]:
    made = []
    for number in range(count):
        if stop.is_set():
            break
        answer = console.admin.post(
            "/api/v1/tasks",
            json={"name": f"scan {number}", "type": "scan", "params": {"targets": "127.0.0.1"}},
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    return made


def test_a_busy_console_is_backed_up_and_restored_whole(busy: Any, tmp_path: Path) -> None:
    console, live = busy
    before = {row[0] for row in rows(live / "surveyor.db", "SELECT id FROM tasks")}
    stop = threading.Event()
    made: list[int] = []
    writer = threading.Thread(target=lambda: made.extend(create_scans(console, 200, stop)))
    writer.start()
    try:
        report = backup_sqlite(
            live / "surveyor.db", live, tmp_path / "backup.tar", key_file=live / "secret.key"
        )
    finally:
        stop.set()
        writer.join(60)
    assert made, "tasks kept arriving while the backup ran"
    assert report.data_files == 2
    assert report.missing == []
    assert report.with_key
    assert (tmp_path / "backup.tar").stat().st_mode & 0o777 == 0o600

    restored = tmp_path / "restored"
    answer = restore_sqlite(
        tmp_path / "backup.tar",
        restored / "surveyor.db",
        restored,
        key_file=restored / "secret.key",
    )
    assert answer.tasks == report.tasks
    assert answer.data_files == 2
    database = restored / "surveyor.db"
    ids = {row[0] for row in rows(database, "SELECT id FROM tasks")}
    assert before <= ids  # everything from before the backup is there
    assert ids <= before | set(made)  # and nothing that never existed
    assert len(ids) == report.tasks
    query = "SELECT id, address, hostname, os, alive FROM assets ORDER BY id"
    assert rows(database, query) == rows(live / "surveyor.db", query)
    services = "SELECT asset_id, proto, port FROM services ORDER BY asset_id, proto, port"
    assert rows(database, services) == rows(live / "surveyor.db", services)
    assert data_files(restored) == data_files(live)
    assert (restored / "secret.key").read_text() == "a-key-for-the-test\n"
    assert (restored / "secret.key").stat().st_mode & 0o777 == 0o600
    # the restored database is one the console opens and serves
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    with Database(engine).read() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM assets").scalar_one() == 29
    engine.dispose()


def test_a_damaged_backup_restores_nothing(busy: Any, tmp_path: Path) -> None:
    _console, live = busy
    backup_sqlite(live / "surveyor.db", live, tmp_path / "backup.tar", key_file=None)
    raw = bytearray((tmp_path / "backup.tar").read_bytes())
    manifest = read_manifest(tmp_path / "backup.tar")
    assert "secret.key" not in manifest["members"]
    # flip one byte inside the first task data file's content
    with tarfile.open(tmp_path / "backup.tar") as tar:
        member = next(m for m in tar if m.name.startswith("tasks/"))
        offset = member.offset_data + member.size // 2
    raw[offset] ^= 0xFF
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(raw))

    target = tmp_path / "restored"
    with pytest.raises(BackupError, match=r"is damaged .* nothing was restored"):
        restore_sqlite(damaged, target / "surveyor.db", target, key_file=None)
    assert [p.name for p in target.iterdir()] == []  # not even the staging folder


def test_a_database_in_use_or_already_there_is_not_overwritten(busy: Any, tmp_path: Path) -> None:
    console, live = busy
    backup_sqlite(live / "surveyor.db", live, tmp_path / "backup.tar", key_file=None)
    tasks_before = rows(live / "surveyor.db", "SELECT COUNT(*) FROM tasks")
    holder = sqlite3.connect(live / "surveyor.db")
    holder.execute("BEGIN IMMEDIATE")  # a console in the middle of a write
    try:
        with pytest.raises(BackupError, match="is in use: stop the console"):
            restore_sqlite(
                tmp_path / "backup.tar", live / "surveyor.db", live, key_file=None, replace=True
            )
    finally:
        holder.rollback()
        holder.close()
    console.db.engine.dispose()
    with pytest.raises(BackupError, match="already holds a database"):
        restore_sqlite(tmp_path / "backup.tar", live / "surveyor.db", live, key_file=None)
    assert rows(live / "surveyor.db", "SELECT COUNT(*) FROM tasks") == tasks_before


def hostile_backup(path: Path, name: str) -> None:
    content = b"owned"
    manifest = {
        "format": "surveyor-backup/1",
        "members": {
            "surveyor.db": {"sha256": hashlib.sha256(content).hexdigest(), "size": 5},
            name: {"sha256": hashlib.sha256(content).hexdigest(), "size": 5},
        },
    }
    with tarfile.open(path, "w") as tar:
        for member, data in ((name, content), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name", ["../escaped.txt", "tasks/../../escaped.txt", "/tmp/abs.txt"])
def test_a_hostile_member_name_is_refused(tmp_path: Path, name: str) -> None:
    hostile_backup(tmp_path / "evil.tar", name)
    target = tmp_path / "data"
    with pytest.raises(BackupError, match=r"which its manifest does not list"):
        restore_sqlite(tmp_path / "evil.tar", target / "surveyor.db", target, key_file=None)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (target / "surveyor.db").exists()


def test_a_file_that_is_no_backup_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / "notes.tar").write_bytes(b"just some notes")
    with pytest.raises(BackupError, match="is not a Surveyor backup"):
        read_manifest(tmp_path / "notes.tar")
    with pytest.raises(BackupError, match="there is no file"):
        read_manifest(tmp_path / "absent.tar")


def test_the_commands_back_up_and_restore_with_progress_and_clear_errors(
    busy: Any, tmp_path: Path
) -> None:
    _console, live = busy
    runner = CliRunner()
    backed = runner.invoke(
        app, ["db", "backup", str(tmp_path / "cli.tar")], env={"SURVEYOR_DATA": str(live)}
    )
    assert backed.exit_code == 0, backed.output
    assert "2 task data files" in backed.output
    assert "to " + str(tmp_path / "cli.tar") in backed.output.replace("\n", "")

    target = tmp_path / "cli-restored"
    restored = runner.invoke(
        app, ["db", "restore", str(tmp_path / "cli.tar")], env={"SURVEYOR_DATA": str(target)}
    )
    assert restored.exit_code == 0, restored.output
    assert data_files(target) == data_files(live)

    again = runner.invoke(
        app, ["db", "restore", str(tmp_path / "cli.tar")], env={"SURVEYOR_DATA": str(target)}
    )
    assert again.exit_code == 1
    assert "already holds a database" in again.output

    postgres = runner.invoke(
        app,
        ["db", "backup", str(tmp_path / "pg.tar")],
        env={"SURVEYOR_DATA": str(live), "SURVEYOR_DATABASE_URL": "postgresql://u@127.0.0.1/db"},
    )
    assert postgres.exit_code != 0
    assert "pg_dump" in postgres.output
    assert not (tmp_path / "pg.tar").exists()
