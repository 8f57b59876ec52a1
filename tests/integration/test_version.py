"""`surveyor --version` on both backends: the package version, the revision this code
expects, and the configured database's, read without creating anything and without loading
the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from surveyor import __version__
from surveyor.cli.main import app
from surveyor.cli.version import version_text
from surveyor.store.location import database_location
from surveyor.store.migrate import current_revision
from surveyor.store.revision import expected_revision, known_revisions, read_revision
from tests.conftest import BACKENDS
from tests.support.explorer_processes import closed_loopback_port
from tests.support.installation import MakeInstallation, installations

SRC = Path(__file__).resolve().parents[2] / "src"
#: What `surveyor --version` must not load: the server, the HTTP client, the commands,
#: SQLAlchemy and Alembic.
HEAVY = ("fastapi", "uvicorn", "httpx2", "typer", "rich", "sqlalchemy", "alembic", "jinja2")


@pytest.fixture(params=BACKENDS)
def make_installation(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeInstallation]:
    yield from installations(request, tmp_path, monkeypatch)


def test_the_database_revision_is_read_as_alembic_reads_it(
    make_installation: MakeInstallation,
) -> None:
    installation = make_installation()

    found = read_revision(database_location())
    text = version_text()
    by_typer = CliRunner().invoke(app, ["--version"])

    assert found.exists
    assert found.error is None
    assert found.revision == current_revision(installation.engine) == expected_revision()
    assert text.splitlines()[:2] == [
        f"surveyor {__version__}",
        f"schema revision: {found.revision}",
    ]
    assert f"database revision: {found.revision}, up to date" in text.splitlines()[2]
    assert by_typer.exit_code == 0
    assert by_typer.output.strip() == text


def test_a_database_behind_says_how_to_upgrade(make_installation: MakeInstallation) -> None:
    older = known_revisions()[-2]
    make_installation(older)

    line = version_text().splitlines()[2]

    assert line.startswith(f"database revision: {older}, behind this code")
    assert "run `surveyor db upgrade`" in line


def test_an_unreachable_database_is_said_so_without_its_password(
    make_installation: MakeInstallation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installation = make_installation()
    if installation.backend == "sqlite":
        broken = tmp_path / "broken.db"
        broken.write_bytes(b"not an SQLite database " * 100)
        monkeypatch.setenv("SURVEYOR_DATABASE_URL", f"sqlite:///{broken}")
    else:
        url = make_url(os.environ["SURVEYOR_DATABASE_URL"])
        url = url.set(password="hidden-password", host="127.0.0.1", port=closed_loopback_port())
        monkeypatch.setenv("SURVEYOR_DATABASE_URL", url.render_as_string(hide_password=False))

    line = version_text().splitlines()[2]

    assert line.startswith("database: cannot be read")
    assert "hidden-password" not in line


def test_before_the_first_start_it_says_there_is_no_database_and_loads_nothing_heavy(
    tmp_path: Path,
) -> None:
    data = tmp_path / "not-yet"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    env |= {"SURVEYOR_DATA": str(data), "PYTHONPATH": str(SRC)}
    program = (
        "import json, sys\n"
        "sys.argv = ['surveyor', '--version']\n"
        "from surveyor.cli.entry import main\n"
        "main()\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    )

    *lines, loaded = done.stdout.splitlines()
    assert lines == [
        f"surveyor {__version__}",
        f"schema revision: {expected_revision()}",
        f"database: none yet (SQLite file {data / 'surveyor.db'}; made at the first start)",
    ]
    assert json.loads(loaded) == []
    assert not data.exists()
