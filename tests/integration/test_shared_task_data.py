"""Task data kept in the database reaches consoles and workers that share no data directory
(several machines on one PostgreSQL), and is checked against its SHA-256 when read."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from surveyor.store.engine import Database
from surveyor.store.schema import task_data_chunks
from surveyor.store.task_data_store import STORE_ENV, TaskDataStoreSettingError, store_choice
from surveyor.store.taskdata import task_data_path
from tests.support.console import running_console
from tests.support.inventory_data import encode, host, process_all, records

DATA = encode(records([host("127.0.0.5"), host("127.0.0.6")]))


def _import_through(db: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    data_dir.mkdir()
    with running_console(db, data_dir, monkeypatch) as console:
        site = console.admin.get("/api/v1/sites").json()[0]["id"]
        answer = console.admin.post(
            "/api/v1/imports",
            params={"site": site},
            content=DATA,
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code in (200, 201), answer.text
        return int(answer.json()["id"])


def test_where_task_data_lives_is_the_database_on_postgresql_unless_configured() -> None:
    assert store_choice("postgresql", {}) == "database"
    assert store_choice("sqlite", {}) == "files"
    assert store_choice("sqlite", {STORE_ENV: "database"}) == "database"
    assert store_choice("postgresql", {STORE_ENV: "files"}) == "files"
    assert store_choice("sqlite", {STORE_ENV: " S3 "}) == "s3"
    with pytest.raises(TaskDataStoreSettingError, match=STORE_ENV):
        store_choice("postgresql", {STORE_ENV: "nfs"})


def test_data_received_by_one_console_is_served_and_processed_by_another_machine(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, "database")
    task_id = _import_through(db, tmp_path / "console-a", monkeypatch)
    other = tmp_path / "console-b"
    other.mkdir()

    with running_console(db, other, monkeypatch) as console:
        answer = console.admin.get(f"/api/v1/tasks/{task_id}/data")
        assert answer.status_code == 200, answer.text
        assert answer.content == DATA

    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    assert process_all(db, worker_dir) >= 1
    with running_console(db, other, monkeypatch) as console:
        task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        assert task["status"] == "processed", task
        assert task["change_summary"]["new"] == 2


def test_stored_data_that_does_not_match_its_checksum_is_never_served(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, "database")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_console(db, tmp_path / "a", monkeypatch) as console:
        # Held back from processing: the corruption is found by the download.
        site = console.admin.get("/api/v1/sites").json()[0]["id"]
        answer = console.admin.post(
            "/api/v1/imports",
            params={"site": site},
            content=DATA,
            headers={"Content-Type": "application/gzip"},
        )
        task_id = int(answer.json()["id"])
    with db.write() as conn:
        conn.execute(
            update(task_data_chunks)
            .where(task_data_chunks.c.task_id == task_id)
            .values(data=DATA[:-1] + b"!")
        )

    with running_console(db, tmp_path / "b", monkeypatch) as console:
        answer = console.admin.get(f"/api/v1/tasks/{task_id}/data")
        assert answer.status_code == 500
        assert answer.json()["error"]["code"] == "data_corrupt"
        assert "SHA-256" in answer.json()["error"]["message"]
    assert not task_data_path(tmp_path / "b", task_id).exists()
    assert [path.name for path in (tmp_path / "b" / "tasks").iterdir()] == []
