"""What every place task data is kept shares: the store's interface (`TaskDataStore`), the
data directory as the only place (`DataDirectoryOnly`), the setting that chooses one, and the
errors a store raises. The stores themselves are `store/task_data_chunks.py` (the database)
and `store/task_data_s3.py` (an object store); `store/task_data_store.py` chooses among them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Connection

from surveyor.store.engine import Database

#: `database`, `files` or `s3`; unset: the database on PostgreSQL, files on SQLite.
STORE_ENV = "SURVEYOR_TASK_DATA_STORE"
STORE_CHOICES = ("database", "files", "s3")


class TaskDataUnavailable(Exception):
    """The stored data cannot be had: missing, or its digest is not the task's."""


class TaskDataStoreError(Exception):
    """The store could not be used just now (unreachable, refused credentials, a failed
    upload); the message says what to fix. Nothing was recorded; trying again may work."""


class TaskDataStoreSettingError(ValueError):
    """A task data store setting that cannot be used; the message names it."""


class TaskDataStore(ABC):
    """One place task data is kept besides the data directory of the process that got it."""

    #: Whether processes with another data directory reach the data (False: only the
    #: data directory that received it holds it).
    shared: ClassVar[bool] = True

    @property
    @abstractmethod
    def where(self) -> str:
        """The store as messages name it: "the database", "the object store s3://..."."""

    @abstractmethod
    def keep(self, conn: Connection, task_id: int, path: Path) -> None:
        """Store the file `path` as task `task_id`'s data, replacing any earlier data; called
        in the transaction (`conn`) that records its digest, before that commits."""

    @abstractmethod
    def read(self, db: Database, task_id: int, sha256: str | None) -> Iterator[bytes]:
        """The stored data of the task, streamed in pieces (never the whole file at once);
        nothing when it holds none. Raises TaskDataUnavailable when the store can tell the
        data is not the one with digest `sha256` before it sends any."""

    def discard(self, task_ids: Iterable[int]) -> None:  # noqa: B027 (most stores keep nothing apart)
        """Delete the stored data of these tasks that lives outside the database (retention,
        before it records that the tasks hold no data); what is gone already is no error."""

    def verify(self, *, probe: bool = False) -> str:
        """Check that the store can be used (start, `surveyor doctor`; `probe`: also write,
        read back and delete a small object); what was found. Raises TaskDataStoreError."""
        return f"task data is kept in {self.where}"


class DataDirectoryOnly(TaskDataStore):
    """The data directory that received the data is its only place (one machine)."""

    shared = False

    @property
    def where(self) -> str:
        return "the data directory"

    def keep(self, conn: Connection, task_id: int, path: Path) -> None:
        return None

    def read(self, db: Database, task_id: int, sha256: str | None) -> Iterator[bytes]:
        return iter(())
