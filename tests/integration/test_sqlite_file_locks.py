"""A second engine on a database file this process already has connections to leaves their
locks alone (SQLite only: POSIX locks on its file).

The console opens more engines on its own database while it runs (the embedded explorer's
enrollment does). Opening and closing the file to set its mode dropped every lock of the
process on it; a writer in another process, closing its last connection, then took itself for
the last one and deleted the -wal and -shm files, and the console failed with "disk I/O
error" from then on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from surveyor.store.engine import make_engine

WRITE_ELSEWHERE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("INSERT INTO t VALUES (2)")
connection.commit()
connection.close()
"""


def test_a_second_engine_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    path = tmp_path / "surveyor.db"
    first = make_engine(f"sqlite:///{path}")
    try:
        with first.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        held = first.connect()  # an open connection, as a running console holds them
        assert held.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        held.rollback()
        shared_memory = path.with_name("surveyor.db-shm")
        assert shared_memory.exists()

        make_engine(f"sqlite:///{path}").dispose()  # another engine in the same process
        subprocess.run([sys.executable, "-c", WRITE_ELSEWHERE, str(path)], check=True)

        assert shared_memory.exists(), "another process deleted the -shm of open connections"
        assert held.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
        held.close()
    finally:
        first.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
