"""`surveyor console` refuses to start on weak first-start secrets, saying which and why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import SURVEYOR, clean_environment, free_loopback_port

#: Refusing takes a moment; a console that starts instead is stopped at this deadline.
DEADLINE_SECONDS = 60


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("SURVEYOR_ADMIN_PASSWORD", "x", "at least 12 characters long"),
        ("SURVEYOR_BOOTSTRAP_TOKEN", "abc", "at least 32 characters long"),
        ("SURVEYOR_TRUSTED_PROXIES", "127.0.0.1,proxy.example", "addresses or networks"),
    ],
)
def test_the_console_refuses_to_start_naming_the_setting_and_its_rule(
    tmp_path: Path, variable: str, value: str, rule: str
) -> None:
    env = clean_environment() | {"SURVEYOR_DATA": str(tmp_path), variable: value}
    port = free_loopback_port()
    finished = subprocess.run(
        [SURVEYOR, "console", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert finished.returncode != 0
    assert variable in finished.stderr
    assert rule in finished.stderr
    assert not (tmp_path / "surveyor.db").exists()
