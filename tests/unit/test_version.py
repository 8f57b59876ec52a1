"""What `surveyor --version` and `surveyor doctor` read without a database: the revision
this code expects (read from the migration files, as Alembic reads it), where the database
is, and the order of versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from surveyor.cli.doctor import version_key
from surveyor.store.location import database_location, sqlite_path_of
from surveyor.store.migrate import alembic_config, head_revision
from surveyor.store.revision import Standing, expected_revision, known_revisions, standing


def test_the_expected_revision_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())

    assert expected_revision() == head_revision()
    assert set(known_revisions()) == {revision.revision for revision in script.walk_revisions()}


def test_the_head_is_the_revision_nobody_revises(tmp_path: Path) -> None:
    for name, revision, down in [
        ("b", "0002", '"0001"'),
        ("a", "0001", "None"),
        ("c", "0003", '"0002"'),
    ]:
        (tmp_path / f"{name}.py").write_text(
            f'"""Revision ID: {revision}"""\n\nrevision: str = "{revision}"\n'
            f"down_revision: str | None = {down}\n"
        )
    (tmp_path / "__init__.py").write_text("")

    assert expected_revision(tmp_path) == "0003"
    assert standing("0003", tmp_path) is Standing.CURRENT
    assert standing("0001", tmp_path) is Standing.BEHIND
    assert standing("0004", tmp_path) is Standing.AHEAD
    assert standing(None, tmp_path) is Standing.EMPTY


def test_the_database_location_is_read_without_creating_anything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    default = database_location({"SURVEYOR_DATA": str(data)})
    postgres = database_location(
        {"SURVEYOR_DATABASE_URL": "postgresql+psycopg://surveyor:s3cret@db.example.test:5433/sv"}
    )

    assert default.sqlite_path == data / "surveyor.db"
    assert not data.exists()
    assert postgres.sqlite_path is None
    assert postgres.shown == "postgresql+psycopg://surveyor@db.example.test:5433/sv"
    assert postgres.libpq_url == "postgresql://surveyor:s3cret@db.example.test:5433/sv"
    assert sqlite_path_of("sqlite:////srv/surveyor/surveyor.db") == Path(
        "/srv/surveyor/surveyor.db"
    )
    assert sqlite_path_of("sqlite:///:memory:") is None


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.1.0", "0.2.0"),
        ("0.9", "0.10"),
        ("1.0.0rc1", "1.0.0"),
        ("1.0.dev3", "1.0"),
        ("1.2", "1.2.1"),
    ],
)
def test_versions_are_compared_in_release_order(older: str, newer: str) -> None:
    assert version_key(older) is not None
    assert version_key(older) < version_key(newer)  # type: ignore[operator]


def test_equal_and_unreadable_versions() -> None:
    assert version_key("0.1") == version_key("0.1.0") == version_key("v0.1.0+local.7")
    assert version_key("unknown") is None
