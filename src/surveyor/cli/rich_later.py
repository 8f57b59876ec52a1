"""Typer's help and error formatter without the parts of Rich that it does not use here.

`typer.rich_utils` formats every `--help` and usage error. At import it takes `Markdown` (for
`rich_markup_mode="markdown"`, which Surveyor does not use) and `Traceback` (for pretty
exceptions, which Surveyor turns off), and with them markdown-it, Pygments and Rich's pretty
printer: about a third of what `surveyor --help` spent starting.

`install()` (called by `cli/main.py`) has `typer.rich_utils`, whenever it is first imported,
take two stand-ins instead. A stand-in is a class that becomes the real one when used: calling
it, or reading an attribute such as `Traceback.from_exception`, imports the real module and
answers with the real class, so whatever Typer does with them works as before, only later. The
stand-ins are in `sys.modules` only while `typer.rich_utils` is imported; any other
`import rich.markdown` gets the real module. When those modules are already imported, Typer's
formatter gets the real ones.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from typing import Any

#: Typer's help and error formatter.
FORMATTER = "typer.rich_utils"

#: The modules `typer.rich_utils` takes a class from that it needs only on paths Surveyor does
#: not take, with that class.
LATER = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


class _Later(type):
    """The type of a stand-in: every use goes to the real class, imported then."""

    _module: str

    def real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls.real(), name)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.real())


def stand_in(module: str, name: str) -> type:
    """A class named `name` that is `module.name` when used."""
    return _Later(name, (), {"_module": module})


@contextlib.contextmanager
def _standing_in() -> Iterator[None]:
    """`LATER`'s modules as stand-ins in `sys.modules`, unless one is imported already."""
    if any(module in sys.modules for module in LATER):
        yield
        return
    placed: dict[str, types.ModuleType] = {}
    for module, name in LATER.items():
        placeholder = types.ModuleType(module, f"Stands in for {module} (cli/rich_later.py).")
        setattr(placeholder, name, stand_in(module, name))
        placed[module] = placeholder
    sys.modules.update(placed)
    try:
        yield
    finally:
        for module, placeholder in placed.items():
            if sys.modules.get(module) is placeholder:
                del sys.modules[module]


class _Loader(importlib.abc.Loader):
    """Typer's own loader of `typer.rich_utils`, run with the stand-ins in place."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _standing_in():
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `typer.rich_utils` the usual way, the first time it is imported, and has it
    loaded by `_Loader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != FORMATTER:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Have `typer.rich_utils`, when something first imports it, leave `LATER` unimported.
    Nothing is imported now; the second call does nothing."""
    if FORMATTER in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
