"""Task data in an S3-compatible object store (`SURVEYOR_TASK_DATA_STORE=s3`), against a real
server the tests start: uploaded in parts with its SHA-256, streamed back into another data
directory only when the digest matches, deleted by retention, reached by a console and a
worker that share no directory, and refused at start with a message that says what to fix."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import tarfile
from pathlib import Path

import pytest
from httpx2 import Response
from typer.testing import CliRunner

from surveyor.cli.doctor import Level, check_task_data_store
from surveyor.cli.logs import LogFormat, configure_logging
from surveyor.cli.main import app
from surveyor.cli.server import task_data_store_at_start
from surveyor.core.clock import FakeClock
from surveyor.scheduler.tick import Scheduler
from surveyor.store.backup import read_manifest
from surveyor.store.engine import Database, make_engine
from surveyor.store.location import database_location
from surveyor.store.migrate import upgrade
from surveyor.store.task_data_s3 import (
    BUCKET_ENV,
    ENDPOINT_ENV,
    KEY_ID_ENV,
    PART_BYTES,
    SECRET_ENV,
    SECRET_FILE_ENV,
    SHA256_METADATA,
    S3Settings,
)
from surveyor.store.task_data_store import (
    STORE_ENV,
    TaskDataStoreError,
    TaskDataStoreSettingError,
    TaskDataUnavailable,
    check_store_settings,
    keep_task_data,
    local_task_data,
    verify_task_data_store,
)
from surveyor.store.taskdata import sha256_of, task_data_path
from tests.integration.test_explorer_protocol import launched_scan
from tests.integration.test_retention import DAY, START, Clocked, ssh
from tests.support.console import Api, ConsoleUnderTest, running_console
from tests.support.explorers import get_task, task_data
from tests.support.inventory_data import Place, encode, host, process_all, records
from tests.support.object_store import ObjectStore
from tests.support.receivers import free_port

DATA = encode(records([host("127.0.0.5"), host("127.0.0.6")]))


def _configure(monkeypatch: pytest.MonkeyPatch, s3: ObjectStore, **changed: str) -> str:
    """Keep task data in a new bucket of `s3` (with these settings changed); the bucket."""
    bucket = s3.new_bucket()
    for name, value in {**s3.settings(bucket), **changed}.items():
        monkeypatch.setenv(name, value)
    return bucket


def _stored(db: Database, data_dir: Path, task_id: int, content: bytes) -> Path:
    path = task_data_path(data_dir, task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with db.write() as conn:
        keep_task_data(conn, task_id, path)
    return path


def _import(console_admin: Api, content: bytes = DATA) -> Response:
    site = console_admin.get("/api/v1/sites").json()[0]["id"]
    return console_admin.post(
        "/api/v1/imports",
        params={"site": site},
        content=content,
        headers={"Content-Type": "application/gzip"},
    )


def test_a_large_file_goes_up_in_parts_with_its_digest_and_comes_back_checked(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3, SURVEYOR_S3_PREFIX="/site-a/")
    content = os.urandom(2 * PART_BYTES + 12345)
    digest = hashlib.sha256(content).hexdigest()
    _stored(db, tmp_path / "console", 41, content)

    head = s3.client().head_object(Bucket=bucket, Key="site-a/tasks/41.jsonl.gz")
    assert head["Metadata"][SHA256_METADATA] == digest
    assert head["ContentLength"] == len(content)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: never whole in memory

    path = local_task_data(db, tmp_path / "worker", 41, digest)
    assert path == task_data_path(tmp_path / "worker", 41)
    assert sha256_of(path) == digest
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == ["41.jsonl.gz"]


def test_data_replaced_later_overwrites_the_object(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3)
    _stored(db, tmp_path / "a", 7, b"first")
    _stored(db, tmp_path / "a", 7, b"second")
    assert s3.keys(bucket) == ["tasks/7.jsonl.gz"]
    fetched = local_task_data(db, tmp_path / "b", 7, hashlib.sha256(b"second").hexdigest())
    assert fetched.read_bytes() == b"second"


def test_an_object_changed_behind_surveyors_back_is_never_put_in_place(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3)
    _stored(db, tmp_path / "a", 9, DATA)
    digest = hashlib.sha256(DATA).hexdigest()
    key = "tasks/9.jsonl.gz"
    # Same metadata, other bytes: found by the digest of what arrives.
    s3.client().put_object(
        Bucket=bucket, Key=key, Body=DATA[:-1] + b"!", Metadata={SHA256_METADATA: digest}
    )
    with pytest.raises(TaskDataUnavailable, match=f"SHA-256 [0-9a-f]{{64}}, not {digest}"):
        local_task_data(db, tmp_path / "b", 9, digest)
    assert list((tmp_path / "b" / "tasks").iterdir()) == []

    # Other metadata: refused before anything is read.
    s3.client().put_object(Bucket=bucket, Key=key, Body=DATA, Metadata={SHA256_METADATA: "0" * 64})
    with pytest.raises(TaskDataUnavailable, match=r"the object's SHA-256 is 0{64}"):
        local_task_data(db, tmp_path / "b", 9, digest)
    assert list((tmp_path / "b" / "tasks").iterdir()) == []


def test_a_missing_object_is_named_as_missing(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3)
    with pytest.raises(TaskDataUnavailable) as raised:
        local_task_data(db, tmp_path, 12, "a" * 64)
    message = str(raised.value)
    assert "its data file is missing" in message
    assert f"the object store s3://{bucket}/ at {s3.endpoint}" in message


def test_data_received_by_one_console_is_served_and_merged_by_a_worker_elsewhere(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3)
    for name in ("console-a", "console-b", "worker"):
        (tmp_path / name).mkdir()
    with running_console(db, tmp_path / "console-a", monkeypatch) as console:
        answer = _import(console.admin)
        assert answer.status_code in (200, 201), answer.text
        task_id = int(answer.json()["id"])
    assert s3.keys(bucket) == [f"tasks/{task_id}.jsonl.gz"]

    with running_console(db, tmp_path / "console-b", monkeypatch) as console:
        answer = console.admin.get(f"/api/v1/tasks/{task_id}/data")
        assert answer.status_code == 200, answer.text
        assert answer.content == DATA

    assert process_all(db, tmp_path / "worker") >= 1
    assert task_data_path(tmp_path / "worker", task_id).read_bytes() == DATA
    with running_console(db, tmp_path / "console-b", monkeypatch) as console:
        task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        assert task["status"] == "processed", task
        assert task["change_summary"]["new"] == 2


def test_a_failed_upload_refuses_the_import_and_records_nothing(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, s3, **{SECRET_ENV: "not-the-secret"})
    with running_console(db, tmp_path, monkeypatch) as console:
        answer = _import(console.admin)
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "task_data_store_unavailable"
        assert f"refused the access key {s3.access_key_id}" in error["message"]
        assert KEY_ID_ENV in error["message"]
        assert "not-the-secret" not in error["message"]
        listed = console.admin.get("/api/v1/tasks", params={"tab": "all", "search": "type:import"})
        assert listed.json()["items"] == []
    assert [p.name for p in (tmp_path / "tasks").iterdir()] == []


def test_retention_deletes_the_objects_of_expired_task_data(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3)
    clock = FakeClock(START)
    with running_console(db, tmp_path, monkeypatch, clock=clock) as console:
        site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
        scheduler = Scheduler(db, clock=clock)
        try:
            clocked = Clocked(
                console, clock, tmp_path, Place(console.organization_id, site_id), scheduler
            )
            old = int(_import(console.admin, encode(records([ssh("127.0.0.10")]))).json()["id"])
            clocked.process()
            clock.set(START + 60 * DAY)
            young = int(_import(console.admin, encode(records([ssh("127.0.0.11")]))).json()["id"])
            clocked.process()
            assert s3.keys(bucket) == sorted([f"tasks/{old}.jsonl.gz", f"tasks/{young}.jsonl.gz"])

            run = clocked.daily_run(START + 100 * DAY)
        finally:
            scheduler.close()
    assert run["status"] == "processed", run
    assert run["stats"]["data_files_deleted"] == 1
    assert s3.keys(bucket) == [f"tasks/{young}.jsonl.gz"]


def test_settings_that_cannot_work_stop_the_start_saying_what_to_fix(
    s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**env: str) -> str:
        with pytest.raises(TaskDataStoreSettingError) as raised:
            S3Settings.from_environment({BUCKET_ENV: "tasks-bucket", **env})
        return str(raised.value)

    monkeypatch.setenv(STORE_ENV, "s4")
    with pytest.raises(TaskDataStoreSettingError, match="must be one of database, files, s3"):
        check_store_settings()
    with pytest.raises(SystemExit, match="task data store: SURVEYOR_TASK_DATA_STORE must be"):
        task_data_store_at_start("postgresql")
    with pytest.raises(TaskDataStoreSettingError, match=f"needs {BUCKET_ENV}"):
        S3Settings.from_environment({})
    assert "is not a bucket name" in refused(**{BUCKET_ENV: "Tasks_Bucket"})
    assert "http(s)://HOST[:PORT]" in refused(**{ENDPOINT_ENV: "127.0.0.1:9000"})
    assert "must not hold credentials" in refused(**{ENDPOINT_ENV: "http://k:s@127.0.0.1:9"})
    assert f"{SECRET_ENV} (or {SECRET_FILE_ENV}) is not" in refused(**{KEY_ID_ENV: "id"})
    assert f"{KEY_ID_ENV} is not" in refused(**{SECRET_ENV: "very-secret"})
    missing = tmp_path / "no-such-file"
    assert f"cannot read {missing}" in refused(**{KEY_ID_ENV: "id", SECRET_FILE_ENV: str(missing)})
    secret_file = tmp_path / "s3.secret"
    secret_file.write_text(s3.secret_access_key + "\n")
    read = S3Settings.from_environment(
        {BUCKET_ENV: "tasks-bucket", KEY_ID_ENV: "id", SECRET_FILE_ENV: str(secret_file)}
    )
    assert read.secret_access_key == s3.secret_access_key
    assert s3.secret_access_key not in repr(read)

    def stopped(**changed: str) -> str:
        bucket = _configure(monkeypatch, s3, **changed)
        with pytest.raises(SystemExit) as raised:
            task_data_store_at_start("postgresql")
        said = str(raised.value)
        assert said.startswith("task data store: ")
        assert changed.get(BUCKET_ENV, bucket) in said
        for secret in (s3.secret_access_key, changed.get(SECRET_ENV, s3.secret_access_key)):
            assert secret not in said
        return said

    assert f"refused the access key {s3.access_key_id}" in stopped(
        **{SECRET_ENV: "wrong-secret-value"}
    )
    assert "refused the access key SOMEONE" in stopped(**{KEY_ID_ENV: "SOMEONE"})
    assert f"does not exist; create it, or correct {BUCKET_ENV}" in stopped(
        **{BUCKET_ENV: "no-such-bucket"}
    )
    nobody = f"http://127.0.0.1:{free_port()}"
    assert f"cannot reach {nobody}" in stopped(**{ENDPOINT_ENV: nobody})

    _configure(monkeypatch, s3)
    assert "task data is kept in the object store" in task_data_store_at_start("sqlite")


def test_without_boto3_it_says_to_install_the_extra(
    s3: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, s3)
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(TaskDataStoreSettingError, match=r"install surveyor\[s3\]"):
        check_store_settings()
    with pytest.raises(SystemExit, match=r"install surveyor\[s3\]"):
        task_data_store_at_start("postgresql")


def test_doctor_writes_reads_and_deletes_a_probe_object(
    s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEYOR_DATA", str(tmp_path))
    bucket = _configure(monkeypatch, s3, SURVEYOR_S3_PREFIX="probe")
    [finding] = check_task_data_store(database_location())
    assert finding.level is Level.OK, finding
    assert "a probe object was written, read back and deleted" in finding.message
    assert s3.keys(bucket) == []
    assert "a probe object" in verify_task_data_store("sqlite", probe=True)

    _configure(monkeypatch, s3, **{SECRET_ENV: "wrong-secret-value"})
    [finding] = check_task_data_store(database_location())
    assert finding.level is Level.FAIL
    assert "refused the access key" in finding.message
    assert "wrong-secret-value" not in finding.message

    monkeypatch.setenv(STORE_ENV, "files")
    monkeypatch.setenv("SURVEYOR_DATABASE_URL", "postgresql://surveyor@127.0.0.1/surveyor")
    [finding] = check_task_data_store(database_location())
    assert finding.level is Level.WARN
    assert "cannot reach it" in finding.message


def test_no_s3_secret_reaches_a_log_line_even_at_debug(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, level=logging.DEBUG, stream=stream)
    try:
        _configure(monkeypatch, s3)
        _stored(db, tmp_path / "a", 3, DATA)
        local_task_data(db, tmp_path / "b", 3, hashlib.sha256(DATA).hexdigest())
        _configure(monkeypatch, s3, **{SECRET_ENV: "wrong-secret-value"})
        with pytest.raises(TaskDataStoreError, match="refused the access key"):
            _stored(db, tmp_path / "c", 4, DATA)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before[0]:
            root.addHandler(handler)
        root.setLevel(before[1])
    logged = stream.getvalue()
    assert "PutObject" in logged or "put_object" in logged.lower()  # the client did log
    assert s3.secret_access_key not in logged
    assert "wrong-secret-value" not in logged


def test_a_merge_that_cannot_reach_the_store_is_retried_not_canceled_as_bad_data(
    db: Database, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, s3)
    (tmp_path / "console").mkdir()
    with running_console(db, tmp_path / "console", monkeypatch) as console:
        task_id = int(_import(console.admin).json()["id"])
    nobody = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(ENDPOINT_ENV, nobody)

    assert process_all(db, tmp_path / "worker") == 1

    with running_console(db, tmp_path / "console", monkeypatch) as console:
        task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
        events = console.admin.get(f"/api/v1/tasks/{task_id}/events").json()["items"]
    assert task["status"] == "processing_queued", task
    said = " ".join(event["message"] for event in events)
    assert f"processing failed: reading the data of task {task_id}" in said
    assert f"cannot reach {nobody}" in said
    assert "cannot be merged" not in said


def test_an_explorer_upload_the_store_refuses_changes_nothing_and_can_be_sent_again(
    console: ConsoleUnderTest, s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _configure(monkeypatch, s3, **{SECRET_ENV: "wrong-secret-value"})
    explorer, task = launched_scan(console)
    data = task_data(hosts=2)

    refused = explorer.upload(task, data)

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "task_data_store_unavailable"
    assert f"storing the data of task {task['id']}" in refused.json()["error"]["message"]
    # As after any upload that stored nothing: uploading, without data.
    after = get_task(console, task["id"])
    assert (after["status"], after["size_data"]) == ("scanned", 0)
    assert console.admin.get(f"/api/v1/tasks/{task['id']}/data").status_code == 404
    assert s3.keys(bucket) == []

    monkeypatch.setenv(SECRET_ENV, s3.secret_access_key)
    stored = explorer.upload(task, data)
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "processing_queued"
    assert s3.keys(bucket) == [f"tasks/{task['id']}.jsonl.gz"]
    assert task_data_path(tmp_path, task["id"]).read_bytes() == data


def test_a_backup_names_what_only_the_bucket_holds_and_says_to_back_it_up(
    s3: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, s3)
    live = tmp_path / "live"
    live.mkdir()
    engine = make_engine(f"sqlite:///{live / 'surveyor.db'}")
    upgrade(engine)
    try:
        with running_console(Database(engine), live, monkeypatch) as console:
            kept = int(_import(console.admin).json()["id"])
            other = encode(records([host("127.0.0.9")]))
            elsewhere = int(_import(console.admin, other).json()["id"])
        # As if another console had received it: only the bucket holds it.
        task_data_path(live, elsewhere).unlink()

        backed = CliRunner().invoke(
            app, ["db", "backup", str(tmp_path / "backup.tar")], env={"SURVEYOR_DATA": str(live)}
        )
    finally:
        engine.dispose()
    assert backed.exit_code == 0, backed.output
    said = " ".join(backed.output.split())
    assert "1 task data files" in said
    assert f"The data of 1 tasks was missing: {elsewhere}" in said
    assert "task data lives in the object store" in said
    assert "back the bucket up by its own means" in said
    manifest = read_manifest(tmp_path / "backup.tar")
    assert manifest["missing_task_data"] == [elsewhere]
    with tarfile.open(tmp_path / "backup.tar") as archive:
        held = [name for name in archive.getnames() if name.startswith("tasks/")]
    assert held == [f"tasks/{kept}.jsonl.gz"]
