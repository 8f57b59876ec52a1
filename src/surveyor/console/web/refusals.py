"""A service's `Refused` (`service/refusals.py`) on the pages of an organization's own
resources (credentials, notification rules): what is not found is the 404 page. A page's
read of one row of the caller's organization (`owned_row`, `found`) likewise makes a missing
row the 404 page. An action the rules refuse for another reason is `ActionRefused`, which
its confirmation page shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection

from surveyor.console.state import ConsoleState
from surveyor.console.web.session import PageError
from surveyor.service.refusals import Reason, Refused
from surveyor.store.accounts import Principal

_Row = TypeVar("_Row")
#: A store's read of one row of an organization: (connection, organization id, row id).
GetRow = Callable[[Connection, int, int], _Row | None]


def found(row: _Row | None, what: str) -> _Row:
    """`row`; None is the 404 page, saying that `what` ("credential 7") does not exist."""
    if row is None:
        raise PageError(404, "Not found", f"{what} does not exist")
    return row


def owned_row(
    state: ConsoleState, principal: Principal, get: GetRow[_Row], row_id: int, what: str
) -> _Row:
    """The row of the caller's organization that `get` reads, in a read transaction of its
    own; one that does not exist is the 404 page (`what` names its kind)."""
    with state.db.read() as conn:
        row = get(conn, principal.organization_id, row_id)
    return found(row, f"{what} {row_id}")


class ActionRefused(Exception):
    """The rules refused an action on an item: the page answers `status` and says `message`
    (a sentence) on the action's confirmation page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@contextmanager
def missing_is_404() -> Iterator[None]:
    """A refusal because what was asked for does not exist becomes the 404 page; any other
    refusal goes on to the caller."""
    try:
        yield
    except Refused as exc:
        if exc.reason is Reason.NOT_FOUND:
            raise PageError(404, "Not found", exc.message) from exc
        raise
