#!/usr/bin/env python3
"""Refuse writes to the `tasks` table outside the store (run by `make lint`).

Only `src/surveyor/store/` may insert or update task rows: its write path keeps the version,
the tab and its counts, the events and the change notes in step (docs/architecture.md). This
check reads the Python sources it is given and reports, as `path:line:col: message`:

- SQLAlchemy statements on `tasks`: `update(tasks)`, `insert(tasks)` (and the dialects'
  `insert`), `sa.update(tasks)`, `tasks.update()`, `tasks.insert()`;
- SQL text, in any case: `UPDATE tasks`, `INSERT INTO tasks` (docstrings are prose, not SQL).

    scripts/check_task_writes.py [PATH ...]      (default: src)

It exits 1 when it finds any.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

TABLE = "tasks"
#: Where task writes belong.
ALLOWED = Path("src/surveyor/store")
#: Callables that start an INSERT or UPDATE of the table given as their first argument.
_STATEMENTS = frozenset({"update", "insert", "pg_insert", "sqlite_insert"})
#: Modules those callables are reached through (`sa.update(tasks)`, `postgresql.insert(...)`).
_STATEMENT_MODULES = frozenset({"sa", "sqlalchemy", "postgresql", "sqlite", "dialects"})
_SQL_TEXT = re.compile(
    rf"""\b(?:update|insert\s+into)\s+(?:\w+\.)?["`]?{TABLE}["`]?(?![\w])""", re.IGNORECASE
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column + 1}: {self.message}"


def _is_tasks(node: ast.expr) -> bool:
    """`tasks` or `<module>.tasks`."""
    return (isinstance(node, ast.Name) and node.id == TABLE) or (
        isinstance(node, ast.Attribute) and node.attr == TABLE
    )


def _statement_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name) and func.id in _STATEMENTS:
        return func.id
    if (
        isinstance(func, ast.Attribute)
        and func.attr in _STATEMENTS
        and isinstance(func.value, ast.Name | ast.Attribute)
        and (func.value.id if isinstance(func.value, ast.Name) else func.value.attr)
        in _STATEMENT_MODULES
    ):
        return func.attr
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that are docstrings."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def violations(source: str, path: str = "<source>") -> list[Violation]:
    """Every write to `tasks` in one module's source."""
    tree = ast.parse(source, filename=path)
    prose = _docstrings(tree)
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _statement_name(node.func)
            if name is not None and node.args and _is_tasks(node.args[0]):
                found.append(
                    Violation(path, node.lineno, node.col_offset, f"{name}({TABLE}) outside store/")
                )
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("update", "insert")
                and _is_tasks(node.func.value)
            ):
                found.append(
                    Violation(
                        path,
                        node.lineno,
                        node.col_offset,
                        f"{TABLE}.{node.func.attr}() outside store/",
                    )
                )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        ):
            match = _SQL_TEXT.search(node.value)
            if match is not None:
                found.append(
                    Violation(
                        path,
                        node.lineno,
                        node.col_offset,
                        f"SQL {match.group(0)!r} outside store/",
                    )
                )
    return sorted(found, key=lambda v: (v.line, v.column))


def _sources(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.suffix == ".py":
            yield path


def _allowed(path: Path) -> bool:
    parts = path.resolve().parts
    allowed = ALLOWED.parts
    return any(parts[index : index + len(allowed)] == allowed for index in range(len(parts)))


def check(paths: Iterable[Path]) -> list[Violation]:
    """Every write to `tasks` in the Python files under `paths`, outside the store."""
    found: list[Violation] = []
    for source in _sources(paths):
        if not _allowed(source):
            found.extend(violations(source.read_text(encoding="utf-8"), str(source)))
    return found


def main(argv: list[str]) -> int:
    found = check([Path(arg) for arg in argv] or [Path("src")])
    for violation in found:
        print(violation)
    if found:
        print(
            f"{len(found)} write(s) to `{TABLE}` outside src/surveyor/store/: "
            "call the store's write path instead",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
