"""The explorer's state directory: its identity (id and secret), and an upload it has not
finished yet, so that a restarted explorer is the same explorer and still delivers its data.

The directory is private to its owner (0700) and every file in it is 0600; files are
replaced atomically, so a crash never leaves half an identity behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IDENTITY_FILE = "identity.json"
PENDING_UPLOAD_FILE = "pending-upload.json"
SPOOL_DIR = "spool"


@dataclass(frozen=True)
class Identity:
    """Who this explorer is to its console; `secret` is its bearer credential."""

    console: str
    explorer_id: int
    organization_id: int
    name: str
    secret: str


@dataclass(frozen=True)
class PendingUpload:
    """Task data that is complete on disk but not yet accepted by the console."""

    task_id: int
    attempt_token: str
    path: str
    sha256: str
    size: int
    #: The longest wait between tries (the console's hint, so it never thinks us silent).
    retry_max: float = 30.0
    #: What a scan stopped on the console's request found before it halted.
    partial: bool = False


def prepare_state_dir(state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_dir.chmod(0o700)
    (state_dir / SPOOL_DIR).mkdir(exist_ok=True, mode=0o700)
    return state_dir


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{path} is damaged ({exc}); remove it to start afresh") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is damaged; remove it to start afresh")
    return data


def load_identity(state_dir: Path) -> Identity | None:
    data = _read(state_dir / IDENTITY_FILE)
    if data is None:
        return None
    try:
        return Identity(
            console=str(data["console"]),
            explorer_id=int(data["explorer_id"]),
            organization_id=int(data["organization_id"]),
            name=str(data["name"]),
            secret=str(data["secret"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{state_dir / IDENTITY_FILE} is damaged ({exc})") from exc


def save_identity(state_dir: Path, identity: Identity) -> None:
    prepare_state_dir(state_dir)
    _write_private(state_dir / IDENTITY_FILE, asdict(identity))


def spool_path(state_dir: Path, task_id: int, attempt: int) -> Path:
    """Where the data of one scan attempt is written before it is uploaded."""
    return state_dir / SPOOL_DIR / f"task-{task_id}-attempt-{attempt}.jsonl.gz"


def remove_abandoned_spool(state_dir: Path, pending: PendingUpload | None) -> None:
    """Remove the spool files of scans an earlier process never finished (it was killed or
    crashed): nothing will upload them. The file of the pending upload stays (matched by
    name: the state directory may be spelled differently from one start to the next)."""
    keep = Path(pending.path).name if pending is not None else None
    spool = state_dir / SPOOL_DIR
    if not spool.is_dir():
        return
    for path in spool.iterdir():
        if path.name != keep and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def load_pending_upload(state_dir: Path) -> PendingUpload | None:
    """The unfinished upload, if any (a damaged record is dropped: the console will cancel
    that task when it hears the explorer is idle)."""
    try:
        data = _read(state_dir / PENDING_UPLOAD_FILE)
        if data is None:
            return None
        return PendingUpload(
            task_id=int(data["task_id"]),
            attempt_token=str(data["attempt_token"]),
            path=str(data["path"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            retry_max=float(data.get("retry_max", 30.0)),
            partial=data.get("partial") is True,
        )
    except (KeyError, TypeError, ValueError):
        clear_pending_upload(state_dir)
        return None


def save_pending_upload(state_dir: Path, pending: PendingUpload) -> None:
    _write_private(state_dir / PENDING_UPLOAD_FILE, asdict(pending))


def clear_pending_upload(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PENDING_UPLOAD_FILE).unlink()
