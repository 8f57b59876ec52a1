"""The first start's settings from the environment: weak secrets are refused, by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.store import accounts
from surveyor.store.bootstrap import CREDENTIALS_FILE, bootstrap_if_empty
from surveyor.store.engine import Database

STRONG_PASSWORD = "a first admin password"
STRONG_TOKEN = "0123456789abcdef0123456789abcdef"  # exactly 32 characters


@pytest.fixture
def first_start(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment that names the first admin and nothing else."""
    monkeypatch.setenv("SURVEYOR_ADMIN_EMAIL", "first@example.test")
    monkeypatch.delenv("SURVEYOR_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("SURVEYOR_BOOTSTRAP_TOKEN", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("SURVEYOR_ADMIN_PASSWORD", "x", "at least 12 characters"),
        ("SURVEYOR_ADMIN_PASSWORD", "elevenchars", "at least 12 characters"),
        ("SURVEYOR_BOOTSTRAP_TOKEN", "abc", "at least 32 characters"),
        ("SURVEYOR_BOOTSTRAP_TOKEN", STRONG_TOKEN[:-1], "at least 32 characters"),
        ("SURVEYOR_BOOTSTRAP_TOKEN", "t" * 513, "at most 512 characters"),
    ],
)
def test_a_weak_first_start_secret_is_refused_by_name_and_nothing_is_created(
    db: Database,
    tmp_path: Path,
    first_start: pytest.MonkeyPatch,
    variable: str,
    value: str,
    rule: str,
) -> None:
    first_start.setenv(variable, value)
    with pytest.raises(ValueError, match=variable) as refused:  # BootstrapSettingRefused
        bootstrap_if_empty(db, tmp_path, now=SYSTEM_CLOCK.now())
    assert variable in str(refused.value)
    assert rule in str(refused.value)
    with db.read() as conn:
        assert accounts.count_users(conn) == 0
    assert not (tmp_path / CREDENTIALS_FILE).exists()


def test_strong_first_start_secrets_make_the_first_admin_and_their_token(
    db: Database, tmp_path: Path, first_start: pytest.MonkeyPatch
) -> None:
    first_start.setenv("SURVEYOR_ADMIN_PASSWORD", STRONG_PASSWORD)
    first_start.setenv("SURVEYOR_BOOTSTRAP_TOKEN", STRONG_TOKEN)
    created = bootstrap_if_empty(db, tmp_path, now=SYSTEM_CLOCK.now())
    assert created is not None
    assert created.email == "first@example.test"
    assert created.generated_password is None
    with db.read() as conn:
        resolved = accounts.resolve_token(conn, STRONG_TOKEN)
    assert resolved is not None
    assert resolved[0].email == "first@example.test"
    assert resolved[0].is_superuser
