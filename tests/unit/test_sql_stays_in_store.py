"""SQL lives in `store/` only: no module outside it imports the tables, builds a statement or
runs one on a connection. Services, routes and pages call the store's named functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "surveyor"
STORE = PACKAGE / "store"

#: What builds or runs SQL; outside the store a module may still name `Connection` (to pass
#: it on), `Engine`, `ColumnElement` (a compiled search) and the exceptions.
STATEMENT_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "literal",
        "literal_column",
        "bindparam",
        "func",
        "and_",
        "or_",
        "not_",
        "case",
        "exists",
        "tuple_",
        "union",
        "Table",
        "table",
        "column",
    }
)
#: SQLAlchemy packages whose every name builds statements or speaks a dialect.
STATEMENT_PACKAGES = ("sqlalchemy.sql", "sqlalchemy.dialects", "sqlalchemy.orm")


def _outside_store() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if STORE not in path.parents)


def problems(source: str) -> list[str]:
    """What in this module's source reaches past the store into SQL, one line each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                is_sqlalchemy = alias.name.split(".")[0] == "sqlalchemy"
                if is_sqlalchemy and not alias.name.startswith("sqlalchemy.exc"):
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "surveyor.store.schema":
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = {alias.name for alias in node.names}
            module = node.module
            if module == "surveyor.store.schema" or (
                module == "surveyor.store" and "schema" in names
            ):
                found.append(f"line {node.lineno}: imports the tables (surveyor.store.schema)")
            elif module.startswith(STATEMENT_PACKAGES):
                found.append(f"line {node.lineno}: from {module} import ...")
            elif module == "sqlalchemy" and names & STATEMENT_BUILDERS:
                builders = ", ".join(sorted(names & STATEMENT_BUILDERS))
                found.append(f"line {node.lineno}: from sqlalchemy import {builders}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            runs_sql = node.func.attr == "exec_driver_sql" or (
                node.func.attr == "execute"
                and (
                    (isinstance(receiver, ast.Name) and receiver.id == "conn")
                    or (isinstance(receiver, ast.Attribute) and receiver.attr == "conn")
                )
            )
            if runs_sql:
                found.append(f"line {node.lineno}: runs a statement on a connection")
    return found


def test_no_module_outside_the_store_imports_tables_or_builds_sql() -> None:
    found = {
        str(path.relative_to(PACKAGE)): problems(path.read_text(encoding="utf-8"))
        for path in _outside_store()
    }
    assert {path: lines for path, lines in found.items() if lines} == {}


@pytest.mark.parametrize(
    "snippet",
    [
        "from surveyor.store.schema import sites",
        "from surveyor.store import schema",
        "import surveyor.store.schema",
        "from sqlalchemy import Connection, select",
        "from sqlalchemy import func",
        "from sqlalchemy import text as sql_text",
        "from sqlalchemy.sql import expression",
        "from sqlalchemy.dialects.postgresql import insert",
        "import sqlalchemy as sa",
        "conn.execute(statement)",
        "self.conn.execute(statement)",
        "conn.exec_driver_sql('SELECT 1')",
    ],
)
def test_the_check_notices_sql_outside_the_store(snippet: str) -> None:
    assert problems(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "from sqlalchemy import Connection",
        "from sqlalchemy import ColumnElement, Connection, Engine",
        "from sqlalchemy.exc import DBAPIError",
        "from surveyor.store import records",
        "from surveyor.store.records import get_site",
        "scratch.execute('SELECT mac FROM uses')",
    ],
)
def test_the_check_lets_a_module_pass_a_connection_to_the_store(snippet: str) -> None:
    assert problems(snippet) == []
