"""Consoles started together on one empty database: each waits for the others' start, so the
schema is made once, the first organization and admin once, its Retention task once, and every
console starts (on PostgreSQL, two at once used to fail: both created the version table)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from surveyor.console.app import prepare_database
from surveyor.store.bootstrap import Bootstrap
from surveyor.store.engine import Database, make_engine
from surveyor.store.migrate import current_revision, head_revision
from surveyor.store.schema import organizations, tasks, users

CONSOLES = 4
#: Generous: starts are waited on, never timed.
WAIT_SECONDS = 120.0
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_consoles_started_together_on_an_empty_database_all_start_and_make_it_once(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    url = fresh_engine.url.render_as_string(hide_password=False)
    together = threading.Barrier(CONSOLES)
    created: list[Bootstrap | None] = []
    failures: list[BaseException] = []

    def start(number: int) -> None:
        # A console of its own: its own engine and connections, as another process has.
        db = Database(make_engine(url))
        data_dir = tmp_path / f"console-{number}"
        data_dir.mkdir()
        try:
            together.wait()
            created.append(prepare_database(db, data_dir, now=NOW))
        except BaseException as exc:  # told below, with the console it stopped
            failures.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start, args=(n,), daemon=True) for n in range(CONSOLES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a start never finished"
    assert failures == []
    assert len(created) == CONSOLES
    assert sum(bootstrap is not None for bootstrap in created) == 1
    assert current_revision(fresh_engine) == head_revision()
    with fresh_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(organizations)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1
        retention = select(func.count()).where(tasks.c.type == "retention")
        assert conn.execute(retention.select_from(tasks)).scalar_one() == 1
