"""What the services of an organization's own resources (credentials, notification rules,
saved queries) answer when they refuse an action: one reason, an API error code, a message
in words, and details such as the field at fault. The API maps the reason to its status
(`console/refusals.py`); the pages show the message by the field."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar


class Reason(StrEnum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"
    #: A sealed secret does not open with this console's key.
    WRONG_KEY = "wrong_key"


_Row = TypeVar("_Row")


class Refused(Exception):
    """A refused action; `code` is the API's error code, `message` says why in words (and
    never holds a secret), `details` what a program needs (`field`: the field at fault).
    Each service refuses with its own subclass, naming its rows as `noun`."""

    noun: ClassVar[str] = "row"

    def __init__(
        self, reason: Reason, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code
        self.message = message
        self.details = dict(details or {})

    @property
    def field(self) -> str | None:
        """The field at fault, when there is one."""
        field = self.details.get("field")
        return str(field) if field else None

    @classmethod
    def not_found(cls, row_id: int) -> Self:
        return cls(Reason.NOT_FOUND, "not_found", f"{cls.noun} {row_id} does not exist")

    @classmethod
    def name_taken(cls, name: str) -> Self:
        message = f"a {cls.noun} named {name!r} exists"
        return cls(Reason.CONFLICT, "conflict", message, {"field": "name"})

    @classmethod
    def require_found(cls, row: _Row | None, row_id: int) -> _Row:
        """`row`, the organization's row `row_id` as the store read it; `not_found` when
        the store found none."""
        if row is None:
            raise cls.not_found(row_id)
        return row
