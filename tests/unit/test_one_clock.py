"""Surveyor reads the time from one clock (core/clock.py): a direct read of the machine's
clock elsewhere in src/ would escape the clock tests inject into the console."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "surveyor"

#: Where the machine's clock may be read directly, and why.
ALLOWED = {
    # The machine's clock itself.
    "core/clock.py",
    # Test certificates valid from the moment a test makes them.
    "testing/labcerts.py",
}
_READS = {"now", "utcnow", "today"}


def clock_reads(source: str) -> list[int]:
    """The lines of `source` that read the machine's clock through `datetime`/`date`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in _READS:
            continue
        owner = node.func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if name in {"datetime", "date"}:
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    "snippet",
    [
        "datetime.now(UTC)",
        "datetime.now()",
        "dt.datetime.now(dt.UTC)",
        "datetime.datetime.utcnow()",
        "date.today()",
        "created = {'at': datetime.now(tz=UTC)}",
    ],
)
def test_a_direct_read_of_the_machines_clock_is_found(snippet: str) -> None:
    assert clock_reads(f"x = 1\ny = {snippet}\n") == [2]


def test_the_clock_and_stored_times_are_not_reads() -> None:
    assert clock_reads("a = clock.now()\nb = state.clock.now()\nc = row['now']\n") == []
    assert clock_reads("d = datetime.fromisoformat(text)\ne = datetime.now\n") == []


def test_only_the_clock_reads_the_machines_time() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).as_posix() not in ALLOWED
        for line in clock_reads(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "read the time from a Clock (core/clock.py) instead:\n" + "\n".join(found)
