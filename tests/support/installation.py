"""An installation for the tests of `surveyor doctor` and `surveyor --version`: a data
directory with its key, and a database of its own at a chosen revision, on each backend, set
in the environment as an operator would set it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from surveyor.cli import doctor
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.security.secretbox import new_key, write_key_file
from surveyor.store.engine import make_engine
from surveyor.store.migrate import upgrade


@dataclass
class Installation:
    """A data directory with a key and a migrated database, set in the environment."""

    backend: str
    data_dir: Path
    engine: Engine

    @property
    def key(self) -> Path:
        return self.data_dir / "secret.key"

    def findings(self, check: str, clock: Clock = SYSTEM_CLOCK) -> list[doctor.Finding]:
        every = doctor.run_checks(clock=clock)
        return [finding for finding in every if finding.check == check]

    def set_revision(self, revision: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


MakeInstallation = Callable[..., Installation]


def installations(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeInstallation]:
    """Builds an installation whose database is at `revision` (a database of its own);
    wrap it in a fixture with `params=BACKENDS`."""
    for name in list(os.environ):
        if name.startswith("SURVEYOR_"):
            monkeypatch.delenv(name)
    made: list[Callable[[], None]] = []

    def build(revision: str = "head") -> Installation:
        data_dir = tmp_path / "data"
        data_dir.mkdir(mode=0o700)
        monkeypatch.setenv("SURVEYOR_DATA", str(data_dir))
        write_key_file(data_dir / "secret.key", new_key())
        if request.param == "sqlite":
            engine = make_engine(f"sqlite:///{data_dir / 'surveyor.db'}")
            made.append(engine.dispose)
        else:
            url = request.getfixturevalue("postgres_url")
            name = f"doctor_{uuid.uuid4().hex[:12]}"
            server = create_engine(url, isolation_level="AUTOCOMMIT")
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            own = make_url(url).set(database=name).render_as_string(hide_password=False)
            monkeypatch.setenv("SURVEYOR_DATABASE_URL", own)
            engine = make_engine(own)

            def drop() -> None:
                engine.dispose()
                with server.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}"'))
                server.dispose()

            made.append(drop)
        upgrade(engine, revision)
        return Installation(request.param, data_dir, engine)

    yield build
    for undo in made:
        undo()
