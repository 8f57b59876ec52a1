"""The lint check that keeps writes to `tasks` inside the store (scripts/check_task_writes.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_task_writes", ROOT / "scripts" / "check_task_writes.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check = _load()


@pytest.mark.parametrize(
    "snippet",
    [
        "conn.execute(update(tasks).where(tasks.c.id == 1).values(name='x'))",
        "conn.execute(insert(tasks).values(name='x'))",
        "statement = sa.update(schema.tasks)",
        "statement = pg_insert(tasks).on_conflict_do_nothing()",
        "statement = sqlite_insert(tasks)",
        "statement = tasks.update().values(version=2)",
        "statement = tasks.insert()",
        "conn.execute(text('update TASKS set version = version + 1'))",
        "conn.exec_driver_sql('INSERT INTO tasks (name) VALUES (?)')",
        "conn.exec_driver_sql(f'Update \"tasks\" SET name = {name!r}')",
    ],
)
def test_a_write_to_tasks_outside_the_store_is_reported(snippet: str) -> None:
    found = check.violations(f"def write(conn, name):\n    {snippet}\n", "service/x.py")
    assert len(found) == 1
    assert found[0].line == 2
    assert str(found[0]).startswith("service/x.py:2:")


def test_reads_other_tables_and_prose_are_not_writes() -> None:
    clean = '''
"""This module never runs UPDATE tasks itself; the store does."""

def read(conn, values, tasks_seen):
    """INSERT INTO tasks happens in the store."""
    rows = conn.execute(select(tasks).where(tasks.c.id == 1)).all()
    conn.execute(update(task_events).values(kind="edited"))
    conn.execute(insert(task_tab_counts).values(count=1))
    conn.execute(text("UPDATE tasks_archive SET x = 1"))
    values.update(tasks_seen)
    values.update(tasks)
    return rows, "tasks updated"
'''
    assert check.violations(clean, "service/x.py") == []


def test_the_store_may_write_tasks_and_nothing_else_may(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "src" / "surveyor" / "store"
    service = tmp_path / "src" / "surveyor" / "service"
    store.mkdir(parents=True)
    service.mkdir(parents=True)
    (store / "tasks.py").write_text("statement = update(tasks)\n")
    assert check.main([str(tmp_path / "src")]) == 0
    (service / "tasks.py").write_text("statement = update(tasks)\n")
    assert check.main([str(tmp_path / "src")]) == 1
    assert "service/tasks.py:1:13: update(tasks) outside store/" in capsys.readouterr().out


def test_surveyors_own_sources_write_tasks_only_in_the_store() -> None:
    assert check.check([ROOT / "src"]) == []
