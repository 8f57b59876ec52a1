"""A console and a worker on separate data directories, as on two machines, sharing task
data through an S3-compatible object store (a real server in its own process): what the
console receives, the worker merges; a worker whose store settings cannot work does not
start, and says what to fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

from surveyor.security.secretbox import encode_key, new_key
from surveyor.store.task_data_s3 import BUCKET_ENV, SECRET_ENV
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.databases import fresh_database
from tests.support.explorer_processes import ServerProcess
from tests.support.inventory_data import encode, host, records
from tests.support.object_store import ObjectStore

WORKER_SECONDS = 120


def worker_once(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SURVEYOR, "worker", "--once"],
        env=clean_environment() | env | {"SURVEYOR_DATA": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=WORKER_SECONDS,
    )


def test_a_worker_elsewhere_merges_what_a_console_received_through_the_object_store(
    postgres_url: str, s3: ObjectStore, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = {
        "SURVEYOR_DATABASE_URL": fresh_database(postgres_url, prefix="s3"),
        "SURVEYOR_SECRET_KEY": encode_key(new_key()),
        "SURVEYOR_WORKERS": "0",  # processing is the worker's alone
        **s3.settings(bucket, prefix="cluster"),
    }
    for name in ("console", "worker"):
        (tmp_path / name).mkdir()
    console = ServerProcess("console", tmp_path / "console", env=env)
    try:
        console.start()
        site = console.api.get("/api/v1/sites").json()[0]["id"]
        answer = console.api.post(
            "/api/v1/imports",
            params={"site": site},
            content=encode(records([host("127.0.0.7"), host("127.0.0.8")])),
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code in (200, 201), answer.text
        task_id = int(answer.json()["id"])
        assert s3.keys(bucket) == [f"cluster/tasks/{task_id}.jsonl.gz"]

        refused = worker_once(tmp_path / "worker", env | {BUCKET_ENV: "no-such-bucket"})
        assert refused.returncode != 0
        assert "task data store:" in refused.stderr
        assert "the bucket 'no-such-bucket' does not exist" in refused.stderr
        assert s3.secret_access_key not in refused.stderr + refused.stdout
        wrong = worker_once(tmp_path / "worker", env | {SECRET_ENV: "wrong-secret-value"})
        assert wrong.returncode != 0
        assert f"refused the access key {s3.access_key_id}" in wrong.stderr
        assert "wrong-secret-value" not in wrong.stderr + wrong.stdout
        assert console.task(task_id)["status"] == "processing_queued"

        done = worker_once(tmp_path / "worker", env)
        assert done.returncode == 0, done.stderr
        assert "task data is kept in the object store s3://" in done.stderr
        task = console.task(task_id)
        assert task["status"] == "processed", task
        assert task["change_summary"]["new"] == 2
        assert (tmp_path / "worker" / "tasks" / f"{task_id}.jsonl.gz").is_file()
    finally:
        console.close()
