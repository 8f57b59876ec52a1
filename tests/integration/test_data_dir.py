"""The data directory: private to its owner however it was created, and rid at start-up of
the temporary files killed processes left, never of those a live process holds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from surveyor.store.engine import Database, data_dir, make_engine
from surveyor.store.taskdata import create_temp_file, remove_abandoned_temp_files
from tests.support.console import running_console


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_data_directory_created_beforehand_is_made_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("SURVEYOR_DATA", str(folder))

    assert data_dir() == folder
    assert mode(folder) == 0o700


def test_the_sqlite_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    database = tmp_path / "surveyor.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with engine.connect() as conn:
        conn.execute(text("SELECT * FROM t")).all()
        files = [database, tmp_path / "surveyor.db-wal", tmp_path / "surveyor.db-shm"]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    engine.dispose()


def test_database_files_left_readable_by_others_are_made_private(tmp_path: Path) -> None:
    database = tmp_path / "surveyor.db"
    files = [database, tmp_path / "surveyor.db-wal", tmp_path / "surveyor.db-shm"]
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with engine.connect():
        for path in files:
            path.chmod(0o644)
        make_engine(f"sqlite:///{database}").dispose()
        assert [mode(path) for path in files] == [0o600, 0o600, 0o600]
    engine.dispose()


def abandoned(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"partial")
    return path


def test_a_starting_console_removes_temporary_files_of_killed_processes_only(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    left = [
        abandoned(tasks, ".7-upload1.part"),
        abandoned(tasks, ".import-x1.part"),
        abandoned(tasks, ".spool-x2.tmp"),
    ]
    kept = [abandoned(tasks, "7.jsonl.gz"), abandoned(tasks, "notes.tmp")]
    held, held_path = create_temp_file(tasks, prefix=".8-", suffix=".part")
    try:
        with running_console(db, tmp_path, monkeypatch):
            assert [path.exists() for path in left] == [False, False, False]
            assert [path.exists() for path in kept] == [True, True]
            assert held_path.exists()
    finally:
        os.close(held)
    assert remove_abandoned_temp_files(tmp_path) == [held_path]
