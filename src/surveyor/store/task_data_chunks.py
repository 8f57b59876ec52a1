"""Task data kept in the database (`SURVEYOR_TASK_DATA_STORE=database`, the PostgreSQL
default): the file in `task_data_chunks`, in pieces of `CHUNK_BYTES`, written in the
transaction that records its SHA-256 on the task and read back one piece at a time.
`store/task_data_store.py` is the seam its callers use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select

from surveyor.store.engine import Database
from surveyor.store.schema import task_data_chunks
from surveyor.store.task_data_base import TaskDataStore

#: The size of one stored piece (a bytea / BLOB row each).
CHUNK_BYTES = 1 << 20


class DatabaseChunks(TaskDataStore):
    """Task data in the database every console and worker already shares."""

    @property
    def where(self) -> str:
        return "the database"

    def keep(self, conn: Connection, task_id: int, path: Path) -> None:
        conn.execute(delete(task_data_chunks).where(task_data_chunks.c.task_id == task_id))
        seq = 0
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                conn.execute(insert(task_data_chunks).values(task_id=task_id, seq=seq, data=chunk))
                seq += 1

    def read(self, db: Database, task_id: int, sha256: str | None) -> Iterator[bytes]:
        seq = 0
        while True:
            with db.read() as conn:
                chunk = conn.execute(
                    select(task_data_chunks.c.data).where(
                        task_data_chunks.c.task_id == task_id, task_data_chunks.c.seq == seq
                    )
                ).scalar_one_or_none()
            if chunk is None:
                return
            yield bytes(chunk)
            seq += 1


def drop_stored_task_data(conn: Connection, task_ids: Iterable[int]) -> None:
    """Delete the chunks of these tasks (retention). Run whatever the store is now, so the
    chunks written before a switch to another store go too."""
    ids = list(task_ids)
    if ids:
        conn.execute(delete(task_data_chunks).where(task_data_chunks.c.task_id.in_(ids)))
