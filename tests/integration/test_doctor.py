"""`surveyor doctor` on both backends: each check passes on a sound installation and fails
(or warns) with the fix on a broken one, and doctor itself changes nothing."""

from __future__ import annotations

import base64
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from surveyor.cli import doctor
from surveyor.cli.main import app
from surveyor.core.clock import OffsetClock
from surveyor.store import accounts
from surveyor.store import explorers as explorer_store
from surveyor.store.location import database_location
from surveyor.store.revision import expected_revision, known_revisions
from tests.conftest import BACKENDS
from tests.support.explorer_processes import closed_loopback_port
from tests.support.installation import MakeInstallation, installations


@pytest.fixture(params=BACKENDS)
def make_installation(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeInstallation]:
    yield from installations(request, tmp_path, monkeypatch)


def levels(findings: list[doctor.Finding]) -> list[str]:
    return [finding.level.value for finding in findings]


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", *args])
    return result.exit_code, result.output


def test_a_sound_installation_passes_every_check(make_installation: MakeInstallation) -> None:
    installation = make_installation()

    findings = doctor.run_checks()
    code, output = run_cli()

    assert {f.check: f.level.value for f in findings} == {
        "configuration": "ok",
        "database": "ok",
        "schema revision": "ok",
        "clock": "ok",
        "explorers": "ok",
        "data directory": "ok",
        "secret key": "ok",
        "disk": "ok",
        "task data": "ok",
    }
    assert code == 0
    assert f"schema revision  {expected_revision()}, the revision this code expects" in output
    assert "0 failed, 0 warned" in output
    assert str(installation.key) in output
    where = "the database" if installation.backend == "postgresql" else "the data directory"
    assert f"task data is kept in {where}" in output


def test_a_key_readable_by_others_fails_and_stays_as_it_was(
    make_installation: MakeInstallation,
) -> None:
    installation = make_installation()
    installation.key.chmod(0o644)

    found = installation.findings("secret key")
    code, output = run_cli("--quiet")

    assert levels(found) == ["fail"]
    assert "mode 0644" in found[0].message
    assert found[0].fix == f"chmod 600 {installation.key}"
    assert code == 1
    assert f"fix: chmod 600 {installation.key}" in output
    assert "configuration" not in output  # --quiet leaves out what is ok
    assert stat.S_IMODE(installation.key.stat().st_mode) == 0o644  # doctor only looks


def test_a_missing_or_damaged_key_file_is_named(
    make_installation: MakeInstallation, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = make_installation()
    installation.key.write_text("not a key\n")

    damaged = installation.findings("secret key")
    monkeypatch.setenv("SURVEYOR_SECRET_KEY_FILE", str(installation.data_dir / "shared.key"))
    missing = installation.findings("secret key")
    monkeypatch.setenv("SURVEYOR_SECRET_KEY", base64.b64encode(b"short").decode())
    short = installation.findings("secret key")

    assert levels(damaged) == ["fail"]
    assert "is not base64 text" in damaged[0].message
    assert levels(missing) == ["fail"]
    assert "shared.key, which does not exist" in missing[0].message
    assert levels(short) == ["fail"]
    assert "SURVEYOR_SECRET_KEY holds 5 bytes" in short[0].message


def test_a_data_directory_or_database_open_to_others_fails(
    make_installation: MakeInstallation,
) -> None:
    installation = make_installation()
    installation.data_dir.chmod(0o755)
    database = installation.data_dir / "surveyor.db"
    if installation.backend == "sqlite":
        database.chmod(0o644)

    found = installation.findings("data directory")

    messages = [finding.message for finding in found]
    assert levels(found)[0] == "fail"
    assert f"{installation.data_dir} is open to others (mode 0755)" in messages[0]
    assert found[0].fix == f"chmod 700 {installation.data_dir}"
    if installation.backend == "sqlite":
        assert levels(found) == ["fail", "fail"]
        assert found[1].fix == f"chmod 600 {database}"
        assert stat.S_IMODE(database.stat().st_mode) == 0o644
    else:
        assert levels(found) == ["fail"]
    assert stat.S_IMODE(installation.data_dir.stat().st_mode) == 0o755


def test_a_database_behind_the_code_fails_with_the_upgrade_to_run(
    make_installation: MakeInstallation,
) -> None:
    older = known_revisions()[-2]
    make_installation(older)

    found = doctor.run_checks()
    code, output = run_cli()

    revision = [f for f in found if f.check == "schema revision"]
    assert levels(revision) == ["fail"]
    assert revision[0].message == (
        f"the database is at {older}, behind this code's {expected_revision()}"
    )
    assert "run `surveyor db upgrade`" in revision[0].fix
    assert code == 1
    assert "fix: run `surveyor db upgrade`" in output


def test_a_database_a_newer_surveyor_migrated_fails(make_installation: MakeInstallation) -> None:
    installation = make_installation()
    installation.set_revision("9999")

    found = installation.findings("schema revision")

    assert levels(found) == ["fail"]
    assert "at 9999, which this code" in found[0].message
    assert "upgrade Surveyor on this machine" in found[0].fix


def test_a_database_without_its_schema_warns(make_installation: MakeInstallation) -> None:
    installation = make_installation("base")

    found = installation.findings("schema revision")

    assert levels(found) == ["warn"]
    assert "no schema yet" in found[0].message


@pytest.mark.parametrize(
    ("offset", "level"),
    [(timedelta(0), "ok"), (timedelta(seconds=10), "warn"), (timedelta(minutes=-10), "fail")],
)
def test_the_clock_is_compared_with_the_databases(
    make_installation: MakeInstallation, offset: timedelta, level: str
) -> None:
    installation = make_installation()

    found = installation.findings("clock", clock=OffsetClock(offset))

    assert levels(found) == [level]
    if offset > timedelta(0):
        assert "behind this machine's" in found[0].message
    if offset < timedelta(0):
        assert "ahead of this machine's" in found[0].message
        assert "NTP" in found[0].fix


def test_explorers_older_than_the_console_are_named(
    make_installation: MakeInstallation,
) -> None:
    installation = make_installation()
    now = datetime.now(UTC)
    with installation.engine.begin() as conn:
        org = accounts.create_organization(conn, "Acme")
        for name, version in [("old", "0.0.9"), ("same", "0.1"), ("silent", None)]:
            explorer, _ = explorer_store.create_explorer(conn, org["id"], {"name": name}, now=now)
            if version is not None:
                host = {"version": version, "hostname": name, "os": "Linux", "addresses": []}
                explorer_store.record_checkin(conn, explorer.id, now=now, host=host)

    found = installation.findings("explorers")
    newer = doctor.check_database(database_location(), console_version="0.0.1")

    assert levels(found) == ["warn"]
    assert found[0].message == (
        "1 explorer runs an older version than this console (0.1.0): old (Acme) 0.0.9"
    )
    assert "upgrade Surveyor on those explorers' machines" in found[0].fix
    ahead = [f for f in newer if f.check == "explorers"]
    assert levels(ahead) == ["warn"]
    assert "2 explorers run a newer version" in ahead[0].message


def test_an_unreachable_database_fails(
    make_installation: MakeInstallation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installation = make_installation()
    if installation.backend == "sqlite":
        broken = tmp_path / "not-a-database.db"
        broken.write_bytes(b"this is not an SQLite file" * 100)
        monkeypatch.setenv("SURVEYOR_DATABASE_URL", f"sqlite:///{broken}")
    else:
        url = make_url(os.environ["SURVEYOR_DATABASE_URL"])
        url = url.set(password="wrong-password", host="127.0.0.1", port=closed_loopback_port())
        monkeypatch.setenv("SURVEYOR_DATABASE_URL", url.render_as_string(hide_password=False))

    found = installation.findings("database")
    code, output = run_cli()

    assert levels(found) == ["fail"]
    assert found[0].message.startswith("cannot reach")
    assert "wrong-password" not in output
    assert code == 1


def test_bad_settings_fail_the_configuration_check(
    make_installation: MakeInstallation, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = make_installation()
    monkeypatch.setenv("SURVEYOR_ONLINE_WINDOW", "a minute")

    found = installation.findings("configuration")
    monkeypatch.setenv("SURVEYOR_DATABASE_URL", "mysql://db.example.test/surveyor")
    wrong_backend = installation.findings("configuration")

    assert levels(found) == ["fail"]
    assert "SURVEYOR_ONLINE_WINDOW must be a whole number" in found[0].message
    assert levels(wrong_backend) == ["fail"]
    assert "not an sqlite:/// or postgresql:// URL" in wrong_backend[0].message


def test_free_disk_below_the_thresholds_warns_then_fails(
    make_installation: MakeInstallation,
) -> None:
    installation = make_installation()
    free = shutil.disk_usage(installation.data_dir).free

    roomy = doctor.check_disk(installation.data_dir)
    tight = doctor.check_disk(installation.data_dir, fail_below=1, warn_below=free * 2)
    full = doctor.check_disk(installation.data_dir, fail_below=free * 2, warn_below=free * 4)

    assert levels(roomy) == ["ok"]
    assert levels(tight) == ["warn"]
    assert levels(full) == ["fail"]
    assert "move SURVEYOR_DATA to a larger disk" in full[0].fix


def test_nothing_is_created_before_the_first_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SURVEYOR_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "not-yet"
    monkeypatch.setenv("SURVEYOR_DATA", str(data_dir))

    found = {f.check: f for f in doctor.run_checks()}
    code, _ = run_cli()

    assert found["database"].level is doctor.Level.WARN
    assert "no database yet" in found["database"].message
    assert found["data directory"].level is doctor.Level.WARN
    assert found["secret key"].level is doctor.Level.WARN
    assert code == 0
    assert not data_dir.exists()
