"""A real S3-compatible server for the tests: moto's server in its own process on a
loopback port, checking credentials (an IAM user made for the run may use S3; any other key
is refused, as a real object store refuses it)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from surveyor.store.task_data_s3 import (
    BUCKET_ENV,
    ENDPOINT_ENV,
    KEY_ID_ENV,
    PREFIX_ENV,
    REGION_ENV,
    SECRET_ENV,
)
from surveyor.store.task_data_store import STORE_ENV
from tests.support.receivers import free_port

HOST = "127.0.0.1"
REGION = "us-east-1"
#: Generous: the server is waited on, never timed.
START_SECONDS = 60.0
#: The requests the server takes without credentials: those that make the IAM user, its
#: key and its policy. Every later request must be signed by a key the server knows.
_SETUP_REQUESTS = 3


class ObjectStoreUnavailable(RuntimeError):
    """The S3-compatible server could not be started."""


@dataclass(frozen=True)
class ObjectStore:
    """A running server and the credentials of the one user it knows."""

    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def client(self) -> Any:
        """A client of our own, to look at and tamper with what Surveyor stored."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"surveyor-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The environment of a console or worker keeping task data in `bucket`."""
        return {
            STORE_ENV: "s3",
            ENDPOINT_ENV: self.endpoint,
            BUCKET_ENV: bucket,
            PREFIX_ENV: prefix,
            REGION_ENV: REGION,
            KEY_ID_ENV: self.access_key_id,
            SECRET_ENV: self.secret_access_key,
        }

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(errors="replace").strip()[-2000:]
            raise ObjectStoreUnavailable(
                f"moto_server exited with status {process.returncode}: {said}"
            )
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise ObjectStoreUnavailable(f"moto_server did not listen on {HOST}:{port}")


def _make_user(endpoint: str) -> tuple[str, str]:
    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="surveyor")
    key = iam.create_access_key(UserName="surveyor")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="surveyor", PolicyName="s3", PolicyDocument=json.dumps(policy))
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextlib.contextmanager
def s3_server() -> Iterator[ObjectStore]:
    """Start moto's S3-compatible server on a free loopback port; stop it afterwards.
    Raises ObjectStoreUnavailable (the tests fail, never skip) when it cannot start."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="surveyor-s3-") as folder:
        log = Path(folder) / "moto.log"
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS),
            "AWS_DEFAULT_REGION": REGION,
        }
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            _wait_listening(process, port, log)
            endpoint = f"http://{HOST}:{port}"
            key_id, secret = _make_user(endpoint)
            yield ObjectStore(endpoint, key_id, secret)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
