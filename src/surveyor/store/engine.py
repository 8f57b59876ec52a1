"""Opening the database: SQLite in the data directory by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from surveyor.store import tasks as task_store
from surveyor.store.changes import (
    Registrations,
    TaskChange,
    forget_changes,
    pending_changes,
    take_changes,
)
from surveyor.store.location import data_dir_path
from surveyor.store.parallel_reads import ParallelReads

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: SQLite creates a database's `-wal` and `-shm` files with the database file's mode.
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm")


def _make_private(path: Path, mode: int) -> None:
    """Take every permission of group and others away from `path` (an existing one too)."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(mode)
    except PermissionError as exc:
        raise SystemExit(
            f"{path} must be readable only by its owner, and it cannot be made so ({exc}); "
            f"run Surveyor as its owner or `chmod {mode:o} {path}`"
        ) from None


def data_dir() -> Path:
    """`$SURVEYOR_DATA`, else ./surveyor-data; created on first use, private to its owner
    (0700), even when it was created beforehand."""
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _make_private(path, 0o700)
    return path


def private_sqlite_file(url: str) -> None:
    """Create the SQLite database file of `url` readable only by its owner (0600), or make
    an existing one so, with its `-wal` and `-shm` files."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    # Created only when missing, and never opened when it exists: closing any descriptor of
    # a file drops every POSIX lock this process holds on it, the locks of its open SQLite
    # connections included. Another process closing its last connection would then take
    # itself for the last one, and delete the -wal and -shm files under this one's feet
    # ("disk I/O error"); two writers could even write at once.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for suffix in SQLITE_FILE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            _make_private(path.with_name(path.name + suffix), 0o600)


def database_url() -> str:
    """`$SURVEYOR_DATABASE_URL`, else an SQLite file in the data directory."""
    url = os.environ.get("SURVEYOR_DATABASE_URL")
    if url:
        return normalize_url(url)
    return f"sqlite:///{data_dir() / 'surveyor.db'}"


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; NORMAL sync is durable across crashes in WAL mode.
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _begin_sqlite)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


READ_ONLY = "surveyor_read_only"


def _begin_sqlite(conn: Any) -> None:
    # Writers take the write lock when the transaction starts, so two writers queue on the busy
    # timeout instead of failing with "database is locked" when a reader upgrades to a writer.
    # Readers begin deferred and never block anyone in WAL mode.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _watch_transactions(engine: Engine) -> None:
    """What every transaction on `engine` keeps in step: the tab counters (written at
    commit, dropped on rollback) and the task change notes (dropped on rollback, and at the
    start of a transaction, in case one committed outside `Database` left some behind)."""
    event.listen(engine, "begin", forget_changes)
    event.listen(engine, "commit", task_store.write_count_deltas)
    event.listen(engine, "rollback", task_store.forget_count_deltas)
    event.listen(engine, "rollback", forget_changes)


def _replace_connections_closed_by_server(engine: Engine) -> None:
    """A PostgreSQL connection taken from `engine`'s pool is replaced (the pool tries
    another) when the server has closed it: a restart, an administrator ending it, an idle
    timeout. The server says so on the idle connection before it closes it, so looking costs
    a poll of the socket, not the round trip of a `SELECT 1` before every transaction
    (`pool_pre_ping`: 0.15 to 0.2 ms a request here). Anything else the server sends to a
    connection that waits in the pool (none of them listens for notifications) is rare and
    costs a new connection at most. A connection that dies unannounced (the network, not
    the server) is found as with the ping: by the first statement that fails on it."""
    from psycopg import pq

    open_status = pq.ConnStatus.OK

    def check(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        pgconn = dbapi_connection.pgconn
        if pgconn.status != open_status:
            raise DisconnectionError("the connection to PostgreSQL is closed")
        sent = select.poll()
        sent.register(pgconn.socket, select.POLLIN)
        if sent.poll(0):
            raise DisconnectionError("PostgreSQL spoke on an idle connection: it is closing it")

    event.listen(engine, "checkout", check)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create the engine for `url` (default: `database_url()`), tuned for its backend."""
    url = normalize_url(url) if url else database_url()
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            # A connection that is new must read and parse the whole schema before its first
            # statement; keep enough of them for the request threads, and let more open only
            # in a burst (they are closed again when they come back to a full pool).
            kwargs.setdefault("pool_size", 16)
            kwargs.setdefault("max_overflow", 24)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _replace_connections_closed_by_server(engine)
    _watch_transactions(engine)
    return engine


class ChangePublisher(Protocol):
    """Who hears of the task changes a `Database`'s transactions commit (the change bus)."""

    def committing(self, conn: Connection, changes: Sequence[TaskChange]) -> None:
        """Inside the transaction, just before it commits: what is done here commits with
        it or not at all (PostgreSQL delivers a NOTIFY only once its transaction commits)."""
        ...

    def committed(self, changes: Sequence[TaskChange]) -> None:
        """After the commit succeeded; never for a transaction that rolled back."""
        ...


_write_turns: dict[str, threading.RLock] = {}
_write_turns_guard = threading.Lock()


def _sqlite_write_turn(engine: Engine) -> threading.RLock | None:
    """The turn the writers of one SQLite file in this process take, shared by every engine
    on that file. SQLite lets one writer in at a time, and a writer that finds another in
    sleeps with a growing back-off (1, 2, 5 … 100 ms) before it looks again: under many
    short writes (explorer check-ins, progress reports) the unlucky ones waited hundreds of
    milliseconds while others kept slipping in. Waiting here, a writer goes in the moment
    the one before it commits; writers in other processes still meet SQLite's busy wait."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    key = os.path.realpath(database)
    with _write_turns_guard:
        return _write_turns.setdefault(key, threading.RLock())


#: The most connections one count reads on at once (`ParallelReads`).
MAX_READ_WORKERS = 4


def _read_workers(engine: Engine) -> int:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return 1  # one connection, or one shared cache: nothing to read beside it
    return max(1, min(os.cpu_count() or 1, MAX_READ_WORKERS))


class Database:
    """The one way the rest of Surveyor reaches the database: read and write transactions."""

    def __init__(self, engine: Engine, *, read_workers: int | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._publishers: Registrations[ChangePublisher] = Registrations()
        self._write_turn = _sqlite_write_turn(engine) if self.dialect == "sqlite" else None
        #: Counts cut into pieces read side by side (`ParallelReads`): as many connections
        #: as cores, up to `MAX_READ_WORKERS`; one where the database has one connection.
        self.parallel_reads = ParallelReads(
            self.read_without_snapshot,
            _read_workers(engine) if read_workers is None else read_workers,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def publish_changes_to(self, publisher: ChangePublisher) -> Callable[[], None]:
        """Hand the task changes of every transaction of this database to `publisher`, until
        the returned function is called."""
        return self._publishers.add(publisher)

    @contextmanager
    def _transaction(
        self, *, turn: threading.RLock | None = None, read_only: bool = False
    ) -> Iterator[Connection]:
        # SQLAlchemy's "commit" event runs before the database has committed; the changes
        # are published once `conn.begin()` has returned from the commit itself, and after
        # the writer's turn is handed on.
        # A writer that waited out SQLite's busy timeout for its turn goes on to SQLite's own
        # wait, which fails as it always did ("database is locked"): never a wait without end.
        waited = turn is not None and turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{READ_ONLY: True}) if read_only else conn
                publishers = self._publishers.snapshot()
                with conn.begin():
                    yield conn
                    noted = pending_changes(conn)
                    if noted:
                        for publisher in publishers:
                            publisher.committing(conn, noted)
                committed = take_changes(conn)
        finally:
            if waited and turn is not None:
                turn.release()
        if committed:
            for publisher in publishers:
                publisher.committed(committed)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: a consistent snapshot that never blocks writers."""
        with self._transaction(read_only=True) as conn:
            yield conn

    @contextmanager
    def read_without_snapshot(self) -> Iterator[Connection]:
        """A read for one statement, or for statements that need not agree with each other
        (`read()` when they must). On PostgreSQL no transaction is opened around them, which
        spares the `BEGIN` and `COMMIT` round trips (about 0.25 ms of a request): each
        statement sees the database as it is when it runs. On SQLite, where a transaction
        costs no round trip, it is `read()`."""
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception; the
        task changes it noted are then published (`publish_changes_to`)."""
        with self._transaction(turn=self._write_turn) as conn:
            yield conn

    def dispose(self) -> None:
        self.parallel_reads.close()
        self.engine.dispose()
