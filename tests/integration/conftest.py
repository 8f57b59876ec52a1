"""Integration fixtures: a running console on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from surveyor.store.engine import Database

if TYPE_CHECKING:
    from tests.support.console import ConsoleUnderTest


@pytest.fixture
def console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleUnderTest]:
    from tests.support.console import running_console

    with running_console(db, tmp_path, monkeypatch) as running:
        yield running
