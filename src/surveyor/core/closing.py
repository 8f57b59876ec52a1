"""`with` for an object that has a `close()`: the block uses it, and closes it at the end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Closing(ABC):
    """A base for clients used in a `with` block: `__enter__` gives the client itself, and
    `__exit__` calls its `close()` however the block ends."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
