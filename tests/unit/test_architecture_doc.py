"""docs/architecture.md names every module of the package, and only modules that exist.

The "Module index" section lists each module by its path under `src/surveyor/` in backticks.
A module added without a line there, or a line left behind by a module that moved, fails
here, naming it, so the index stays a true map of the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "surveyor"
DOC = ROOT / "docs" / "architecture.md"
SECTION = "## Module index"
_PATH = re.compile(r"`([\w/]+\.py)`")


def _has_code(path: Path) -> bool:
    """Whether a module holds more than a docstring (an empty `__init__.py` is just a folder)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body
    )


def modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/migrations/versions/"):
            continue  # one revision per file, described by docs on migrations as a folder
        if path.name == "__init__.py" and not _has_code(path):
            continue
        found.add(relative)
    return found


def indexed() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/architecture.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return {path for path in _PATH.findall(section) if not path.startswith("tests/")}


def test_every_module_is_in_the_index() -> None:
    missing = sorted(modules() - indexed())
    assert not missing, f"modules missing from the module index of docs/architecture.md: {missing}"


def test_the_index_names_only_modules_that_exist() -> None:
    stale = sorted(indexed() - modules())
    assert not stale, f"the module index of docs/architecture.md names gone modules: {stale}"


def test_the_package_is_found() -> None:
    # Guards the two tests above against passing on an empty tree (a moved package).
    assert {"core/tasks.py", "store/tasks.py", "console/app.py"} <= modules()
