"""`with` for an object that has a `close()`: the block uses it, and closes it at the end."""

from __future__ import annotations

from typing import Self


class Closing:
    """A base for clients used in a `with` block: `__enter__` gives the client itself, and
    `__exit__` calls its `close()` however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
