"""Task data kept in an S3-compatible object store (`SURVEYOR_TASK_DATA_STORE=s3`).

Each task's data is one object, `<prefix>tasks/<task id>.jsonl.gz`, uploaded from the file
on disk (in parts of `PART_BYTES` above that size, so never whole in memory) with its
SHA-256 in the object's metadata; later data of the task overwrites it. Reading streams the
object in pieces; the metadata digest is compared with the task's before anything is read,
and the caller checks the digest of the bytes themselves (`store/task_data_store.py`).

The client (boto3, the optional `surveyor[s3]` extra) is imported only when this store is
configured. Its errors become TaskDataStoreError messages that say what to fix and never
carry the secret.
"""

from __future__ import annotations

import functools
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from surveyor.store.engine import Database
from surveyor.store.task_data_base import (
    STORE_ENV,
    TaskDataStore,
    TaskDataStoreError,
    TaskDataStoreSettingError,
    TaskDataUnavailable,
)
from surveyor.store.taskdata import sha256_of

ENDPOINT_ENV = "SURVEYOR_S3_ENDPOINT"
BUCKET_ENV = "SURVEYOR_S3_BUCKET"
PREFIX_ENV = "SURVEYOR_S3_PREFIX"
REGION_ENV = "SURVEYOR_S3_REGION"
KEY_ID_ENV = "SURVEYOR_S3_ACCESS_KEY_ID"
SECRET_ENV = "SURVEYOR_S3_SECRET_ACCESS_KEY"  # noqa: S105 (the name of a variable)
SECRET_FILE_ENV = "SURVEYOR_S3_SECRET_ACCESS_KEY_FILE"  # noqa: S105 (the name of a variable)
DEFAULT_REGION = "us-east-1"
#: The metadata entry that holds the data's SHA-256 (`x-amz-meta-sha256`).
SHA256_METADATA = "sha256"
#: Files larger than this are uploaded in parts of this size (S3's smallest part is 5 MiB);
#: at most `UPLOAD_THREADS` parts are in memory at once.
PART_BYTES = 8 << 20
UPLOAD_THREADS = 2
#: Downloads are read and written in pieces of this size.
READ_BYTES = 1 << 20
#: The most keys one DeleteObjects request may name.
DELETE_BATCH = 1000

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UNREACHABLE = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ReadTimeoutError",
    "ProxyConnectionError",
    "SSLError",
)
_REFUSED_CREDENTIALS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredToken",
    "InvalidToken",
    "AccessDenied",
    "403",
)
_NO_BUCKET = ("NoSuchBucket", "404")
_NO_KEY = ("NoSuchKey", "404")


@dataclass(frozen=True)
class S3Settings:
    """Where the objects go and the credentials to use (none: boto3's own sources, such
    as AWS_ACCESS_KEY_ID or an instance role)."""

    bucket: str
    endpoint: str | None = None
    prefix: str = ""
    region: str = DEFAULT_REGION
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> S3Settings:
        """The settings from `SURVEYOR_S3_*`. Raises TaskDataStoreSettingError naming the
        variable to fix (never showing the secret)."""
        bucket = env.get(BUCKET_ENV, "").strip()
        if not bucket:
            raise TaskDataStoreSettingError(
                f"{STORE_ENV}=s3 needs {BUCKET_ENV}: the name of the bucket task data goes into"
            )
        if not _BUCKET_NAME.match(bucket) or ".." in bucket:
            raise TaskDataStoreSettingError(
                f"{BUCKET_ENV}={bucket!r} is not a bucket name (3 to 63 lower-case letters, "
                "digits, dots and hyphens)"
            )
        endpoint = env.get(ENDPOINT_ENV, "").strip().rstrip("/") or None
        if endpoint is not None:
            _check_endpoint(endpoint)
        prefix = env.get(PREFIX_ENV, "").strip().strip("/")
        key_id = env.get(KEY_ID_ENV, "").strip() or None
        secret = env.get(SECRET_ENV, "").strip() or None
        secret_file = env.get(SECRET_FILE_ENV, "").strip()
        if secret and secret_file:
            raise TaskDataStoreSettingError(f"set {SECRET_ENV} or {SECRET_FILE_ENV}, not both")
        if secret_file:
            secret = _read_secret(Path(secret_file))
        if bool(key_id) != bool(secret):
            given, missing = (
                (KEY_ID_ENV, f"{SECRET_ENV} (or {SECRET_FILE_ENV})")
                if key_id
                else ("the secret access key", KEY_ID_ENV)
            )
            raise TaskDataStoreSettingError(f"{given} is set but {missing} is not: set both")
        return cls(
            bucket=bucket,
            endpoint=endpoint,
            prefix=f"{prefix}/" if prefix else "",
            region=env.get(REGION_ENV, "").strip() or DEFAULT_REGION,
            access_key_id=key_id,
            secret_access_key=secret,
        )

    @property
    def shown(self) -> str:
        """The bucket and prefix, and the endpoint unless it is AWS's."""
        at = f" at {self.endpoint}" if self.endpoint else f" (AWS, region {self.region})"
        return f"s3://{self.bucket}/{self.prefix}{at}"

    def key(self, task_id: int) -> str:
        return f"{self.prefix}tasks/{task_id}.jsonl.gz"


def _check_endpoint(endpoint: str) -> None:
    try:
        parts = urlsplit(endpoint)
        _ = parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise TaskDataStoreSettingError(
            f"{ENDPOINT_ENV} must be the object store's URL, http(s)://HOST[:PORT], "
            f"not {endpoint!r}"
        )
    if parts.username or parts.password:
        raise TaskDataStoreSettingError(
            f"{ENDPOINT_ENV} must not hold credentials: give them in {KEY_ID_ENV} and "
            f"{SECRET_ENV} (or {SECRET_FILE_ENV})"
        )


def _read_secret(path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not text"
        raise TaskDataStoreSettingError(f"{SECRET_FILE_ENV}: cannot read {path}: {reason}") from exc
    if not secret:
        raise TaskDataStoreSettingError(f"{SECRET_FILE_ENV}: {path} is empty")
    return secret


def require_client() -> None:
    """Raise TaskDataStoreSettingError when boto3 is not installed."""
    try:
        import boto3  # noqa: F401
    except ImportError as exc:
        raise TaskDataStoreSettingError(
            f"{STORE_ENV}=s3 needs the S3 client library: install surveyor[s3] "
            "(pip install 'surveyor[s3]')"
        ) from exc


class S3Store(TaskDataStore):
    """Task data as objects in one bucket, under one prefix."""

    def __init__(self, settings: S3Settings) -> None:
        require_client()
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the object store {self.settings.shown}"

    def client(self) -> Any:
        """The boto3 client, made once (clients are thread-safe; sessions are not)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                s = self.settings
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=s.endpoint,
                    region_name=s.region,
                    aws_access_key_id=s.access_key_id,
                    aws_secret_access_key=s.secret_access_key,
                    config=Config(
                        connect_timeout=5,
                        read_timeout=60,
                        retries={"max_attempts": 3, "mode": "standard"},
                        # S3-compatible servers mostly want bucket/key paths, not
                        # bucket.host names; checksums only where S3 requires them (some
                        # servers know no others). The SHA-256 is checked by Surveyor.
                        s3={"addressing_style": "path" if s.endpoint else "auto"},
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
            return self._client

    def keep(self, conn: Connection, task_id: int, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        digest = sha256_of(path)
        key = self.settings.key(task_id)
        try:
            self.client().upload_file(
                str(path),
                self.settings.bucket,
                key,
                ExtraArgs={
                    "Metadata": {SHA256_METADATA: digest},
                    "ContentType": "application/octet-stream",
                },
                Config=TransferConfig(
                    multipart_threshold=PART_BYTES,
                    multipart_chunksize=PART_BYTES,
                    max_concurrency=UPLOAD_THREADS,
                ),
            )
        except Exception as exc:
            raise self._explained(exc, f"storing the data of task {task_id}") from exc

    def read(self, db: Database, task_id: int, sha256: str | None) -> Iterator[bytes]:
        key = self.settings.key(task_id)
        try:
            answer = self.client().get_object(Bucket=self.settings.bucket, Key=key)
        except Exception as exc:
            if _error_code(exc) in _NO_KEY:
                return
            raise self._explained(exc, f"reading the data of task {task_id}") from exc
        body = answer["Body"]
        try:
            stored = (answer.get("Metadata") or {}).get(SHA256_METADATA)
            if sha256 and stored != sha256:
                raise TaskDataUnavailable(
                    f"the data of task {task_id} in {self.where} is not the one the task "
                    f"stored (the object's SHA-256 is {stored or 'not recorded'}, not {sha256})"
                )
            try:
                yield from body.iter_chunks(READ_BYTES)
            except Exception as exc:
                raise self._explained(exc, f"reading the data of task {task_id}") from exc
        finally:
            body.close()

    def discard(self, task_ids: Iterable[int]) -> None:
        keys = [{"Key": self.settings.key(task_id)} for task_id in task_ids]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = self.client().delete_objects(
                    Bucket=self.settings.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except Exception as exc:
                raise self._explained(exc, "deleting expired task data") from exc
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise TaskDataStoreError(
                    f"{self.where} did not delete {len(failed)} object(s), such as "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                    + "; give the access key permission to delete objects (s3:DeleteObject)"
                )

    def verify(self, *, probe: bool = False) -> str:
        bucket = self.settings.bucket
        try:
            self.client().head_bucket(Bucket=bucket)
        except Exception as exc:
            raise self._explained(exc, "looking for the bucket") from exc
        if not probe:
            return f"task data is kept in {self.where}"
        key = f"{self.settings.prefix}surveyor-doctor-{uuid.uuid4().hex}"
        payload = b"surveyor doctor probe " + key.encode()
        try:
            self.client().put_object(Bucket=bucket, Key=key, Body=payload)
            try:
                got = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            finally:
                self.client().delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise self._explained(exc, "writing, reading and deleting a probe object") from exc
        if got != payload:
            raise TaskDataStoreError(
                f"{self.where} gave back other bytes than were written to {key}; check the "
                "object store"
            )
        return (
            f"task data is kept in {self.where}; a probe object was written, read back and deleted"
        )

    def _explained(self, exc: BaseException, doing: str) -> TaskDataStoreError:
        """What went wrong while `doing`, and what to fix."""
        s = self.settings
        code = _error_code(exc)
        failed = f"{doing} in {self.where} failed"
        if code in _UNREACHABLE:
            where = s.endpoint or f"AWS S3 in region {s.region}"
            return TaskDataStoreError(
                f"{failed}: cannot reach {where} ({_first_line(exc)}); check {ENDPOINT_ENV} "
                "and that the object store runs and this machine may connect to it"
            )
        if code == "NoCredentialsError":
            return TaskDataStoreError(
                f"{failed}: no credentials; set {KEY_ID_ENV} and {SECRET_ENV} "
                f"(or {SECRET_FILE_ENV})"
            )
        if code == "NoSuchBucket" or (code in _NO_BUCKET and doing == "looking for the bucket"):
            return TaskDataStoreError(
                f"{failed}: the bucket {s.bucket!r} does not exist; create it, or correct "
                f"{BUCKET_ENV}"
            )
        if code in _REFUSED_CREDENTIALS:
            who = f"the access key {s.access_key_id}" if s.access_key_id else "the credentials"
            return TaskDataStoreError(
                f"{failed}: the object store refused {who} ({code}); check {KEY_ID_ENV} and "
                f"{SECRET_ENV} (or {SECRET_FILE_ENV}), and that the key may read, write and "
                f"delete objects in {s.bucket!r}"
            )
        return TaskDataStoreError(f"{failed}: {_first_line(exc)}")


def _error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError, or the class name of a botocore error, found on
    `exc` or what it came from (boto3's upload errors wrap the client's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return str(response["Error"].get("Code", ""))
        name = type(current).__name__
        if name in _UNREACHABLE or name == "NoCredentialsError":
            return name
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@functools.lru_cache(maxsize=4)
def s3_store(settings: S3Settings) -> S3Store:
    """One store (and client) per settings, shared by the process."""
    return S3Store(settings)
