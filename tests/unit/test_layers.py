"""The layers of `src/surveyor` (docs/architecture.md, "Layers"): which package may import which.

Every import counts: at the top of a module, inside a function, and under `TYPE_CHECKING`
(a type-only import still ties the lower layer to the upper one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the module imported (or the module holding the name imported)
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


@dataclass(frozen=True)
class Rule:
    """Modules under `source` must not import modules under `forbidden`, except those
    under `allowed`."""

    source: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()

    def breaks(self, edge: Import) -> bool:
        return (
            _under(edge.source, self.source)
            and any(_under(edge.target, f) for f in self.forbidden)
            and not any(_under(edge.target, a) for a in self.allowed)
        )


_UPPER = ("surveyor.console", "surveyor.cli")

RULES = (
    Rule(
        "surveyor.core",
        ("surveyor",),
        "core is the pure domain: it imports only core",
        allowed=("surveyor.core",),
    ),
    Rule(
        "surveyor.store",
        ("surveyor.service", "surveyor.scheduler", "surveyor.processing", *_UPPER),
        "the store is called by the layers above it, never the reverse",
    ),
    Rule(
        "surveyor.connectors",
        ("surveyor",),
        "a connector reads another system; it runs the same in the console and on an explorer",
        allowed=("surveyor.core", "surveyor.connectors"),
    ),
    Rule(
        "surveyor.formats",
        ("surveyor",),
        "reading other tools' files is pure: the same in the console, a worker or a test",
        allowed=("surveyor.core", "surveyor.formats"),
    ),
    Rule("surveyor.service", _UPPER, "services are shared by the API, the pages and the CLI"),
    Rule("surveyor.scheduler", _UPPER, "the console runs the scheduler; not the reverse"),
    Rule("surveyor.processing", _UPPER, "`surveyor worker` runs processing without a console"),
    Rule(
        "surveyor.console.web",
        ("surveyor.console.routes",),
        "pages call services, never API handlers",
    ),
    Rule(
        "surveyor.console.routes",
        ("surveyor.console.web",),
        "API handlers do not depend on pages",
    ),
    Rule(
        "surveyor.console.state",
        ("surveyor.console.auth",),
        "auth reads the console state; the state knows nothing of auth",
    ),
)


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_in(path: Path, root: Path) -> Iterator[Import]:
    """Every import in the module at `path` of a module under `root`, wherever it stands."""
    source = module_name(path, root)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # `from surveyor.console import web` imports the module surveyor.console.web.
                submodule = f"{base}.{alias.name}"
                yield Import(
                    source, submodule if _is_module(submodule, root) else base, node.lineno
                )


def all_imports(root: Path) -> list[Import]:
    """The imports of Surveyor's modules in the modules under `root`, each once."""
    found: dict[Import, None] = {}
    for path in sorted(root.rglob("*.py")):
        found.update((i, None) for i in imports_in(path, root) if _under(i.target, "surveyor"))
    return list(found)


def violations(root: Path) -> list[str]:
    return [
        f"{edge} ({rule.why})" for edge in all_imports(root) for rule in RULES if rule.breaks(edge)
    ]


@cache
def _surveyor_violations() -> tuple[str, ...]:
    return tuple(violations(SRC))


def test_no_module_imports_across_a_layer_boundary() -> None:
    found = _surveyor_violations()
    assert not found, "imports that break the layers:\n" + "\n".join(found)


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in all_imports(root):
        if edge.source != edge.target:
            graph.setdefault(edge.source, set()).add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_modules_import_each_other() -> None:
    """console/auth.py reads console/state.py and never the reverse; and so everywhere."""
    cycles = import_cycles(SRC)
    assert not cycles, "modules that import each other: " + "; ".join(map(" <-> ".join, cycles))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PACKAGES = {
    "surveyor/__init__.py": "",
    "surveyor/core/__init__.py": "",
    "surveyor/core/tasks.py": "",
    "surveyor/store/__init__.py": "",
    "surveyor/store/tasks.py": "",
    "surveyor/service/__init__.py": "",
    "surveyor/console/__init__.py": "",
    "surveyor/console/state.py": "",
    "surveyor/console/routes/__init__.py": "",
    "surveyor/console/routes/tasks.py": "",
    "surveyor/console/web/__init__.py": "",
}


@pytest.mark.parametrize(
    ("module", "text", "reported"),
    [
        (
            "surveyor/core/rules.py",
            "from surveyor.store import tasks\n",
            "surveyor.core.rules:1 imports surveyor.store.tasks",
        ),
        (
            "surveyor/store/x.py",
            "def f():\n    from surveyor.console.state import ConsoleState\n",
            "surveyor.store.x:2 imports surveyor.console.state",
        ),
        (
            "surveyor/service/x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    import surveyor.console.state\n",
            "surveyor.service.x:3 imports surveyor.console.state",
        ),
        (
            "surveyor/console/web/tasks.py",
            "from ..routes import tasks as task_routes\n",
            "surveyor.console.web.tasks:1 imports surveyor.console.routes.tasks",
        ),
        (
            "surveyor/console/web/tasks.py",
            "from surveyor.console.routes import tasks\n",
            "surveyor.console.web.tasks:1 imports surveyor.console.routes.tasks",
        ),
        (
            "surveyor/console/routes/events.py",
            "from surveyor.console import web\n",
            "surveyor.console.routes.events:1 imports surveyor.console.web",
        ),
    ],
)
def test_an_import_across_a_boundary_is_reported_wherever_it_stands(
    tmp_path: Path, module: str, text: str, reported: str
) -> None:
    root = _tree(tmp_path, {**PACKAGES, module: text})
    [found] = violations(root)
    assert found.startswith(reported)


def test_modules_that_import_each_other_are_reported(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            **PACKAGES,
            "surveyor/console/auth.py": "from surveyor.console.state import ConsoleState\n",
            "surveyor/console/state.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from surveyor.console import auth\n",
        },
    )
    assert import_cycles(root) == [["surveyor.console.auth", "surveyor.console.state"]]


def test_imports_down_the_layers_are_allowed(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            **PACKAGES,
            "surveyor/core/kinds.py": "from surveyor.core import tasks\nfrom . import tasks\n",
            "surveyor/store/x.py": "from surveyor.core.tasks import X\n",
            "surveyor/service/x.py": "from surveyor.store import tasks\nimport fastapi\n",
            "surveyor/console/routes/x.py": "from surveyor.service import x\n",
            "surveyor/console/web/x.py": "from surveyor.console.state import ConsoleState\n",
        },
    )
    assert violations(root) == []
    assert import_cycles(root) == []
