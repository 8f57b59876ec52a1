"""The API's answer to a refusal of the services of an organization's own resources
(`service/refusals.py`): the status of each reason, the transactions in which a refusal
becomes that answer, and a deletion through a service's rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from fastapi import Response
from sqlalchemy import Connection

from surveyor.console.errors import ApiError
from surveyor.console.state import ConsoleState
from surveyor.service.refusals import Reason, Refused
from surveyor.store.accounts import Principal

STATUS = {
    Reason.NOT_FOUND: 404,
    Reason.INVALID: 400,
    Reason.CONFLICT: 409,
    Reason.WRONG_KEY: 409,
}


def api_error(exc: Refused) -> ApiError:
    return ApiError(STATUS[exc.reason], exc.code, exc.message, exc.details)


@contextmanager
def answering_refusals() -> Iterator[None]:
    """A refusal raised inside becomes the API's answer."""
    try:
        yield
    except Refused as exc:
        raise api_error(exc) from exc


@contextmanager
def reading(state: ConsoleState) -> Iterator[Connection]:
    """One read transaction; a refusal becomes the API's answer."""
    with answering_refusals(), state.db.read() as conn:
        yield conn


@contextmanager
def writing(state: ConsoleState) -> Iterator[Connection]:
    """One write transaction; a refusal becomes the API's answer (and rolls it back)."""
    with answering_refusals(), state.db.write() as conn:
        yield conn


class DeleteRule(Protocol):
    """A service's deletion of the actor's organization's row, in one write transaction."""

    def __call__(
        self, conn: Connection, actor: Principal, row_id: int, /, *, now: datetime
    ) -> None: ...


def deleted(state: ConsoleState, principal: Principal, rule: DeleteRule, row_id: int) -> Response:
    """The API's deletion of an organization's row with the service's `rule`: 204, or the
    answer to the refusal."""
    with writing(state) as conn:
        rule(conn, principal, row_id, now=state.clock.now())
    return Response(status_code=204)
