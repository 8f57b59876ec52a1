"""What a search key is: its kind, and an opaque source the store knows how to read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

SourceT = TypeVar("SourceT")


class FieldKind(StrEnum):
    """How a key's values are written in a query and compared."""

    TEXT = "text"
    NUMBER = "number"
    TIME = "time"
    BOOL = "bool"


@dataclass(frozen=True)
class SearchField(Generic[SourceT]):
    """One search key. `source` is for the store (a column, a join); the core never reads it."""

    kind: FieldKind
    source: SourceT


@dataclass(frozen=True)
class Catalogue(Generic[SourceT]):
    """The keys one kind of record can be searched by, and the text keys a bare value searches.

    Reference records (see `evaluate`) are mappings with exactly these keys.
    """

    fields: Mapping[str, SearchField[SourceT]]
    bare_keys: tuple[str, ...] = field(default=("name", "description"))

    def __post_init__(self) -> None:
        for key in self.fields:
            if key != key.lower():
                raise ValueError(f"search key {key!r} must be lower-case")
        for key in self.bare_keys:
            if key not in self.fields or self.fields[key].kind is not FieldKind.TEXT:
                raise ValueError(f"bare-value key {key!r} must be a text key of the catalogue")

    @property
    def valid_keys(self) -> list[str]:
        """The key names, sorted, as shown to a user who mistyped one."""
        return sorted(self.fields)
