"""A service's `Refused` (`service/refusals.py`) on the pages of an organization's own
resources (credentials, notification rules): what is not found is the 404 page, and a
deletion, asked on a confirmation page first, returns to the list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection

from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirm, add_confirmation_page, path_id
from surveyor.console.web.session import CheckedPrincipal, PageError, require_role
from surveyor.service.refusals import Reason, Refused
from surveyor.store.accounts import Principal, Role


class DeleteRule(Protocol):
    """A service's deletion of the actor's organization's row, in one write transaction."""

    def __call__(
        self, conn: Connection, actor: Principal, row_id: int, /, *, now: datetime
    ) -> None: ...


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


async def delete_then_list(
    state: ConsoleState, principal: Principal, row_id: int, rule: DeleteRule, *, listing: str
) -> Response:
    """Delete the row with the service's `rule` and go to the list (`listing`); a row that
    does not exist is the 404 page."""

    def delete() -> None:
        with state.db.write() as conn:
            rule(conn, principal, row_id, now=state.clock.now())

    with missing_is_404():
        await asyncio.to_thread(delete)
    return RedirectResponse(listing, status_code=303)


def add_delete_pages(
    router: APIRouter,
    path: str,
    confirm: Confirm,
    rule: DeleteRule,
    *,
    listing: str,
    names: tuple[str, str],
) -> None:
    """An admin's deletion of a row at `path` (one `{…_id:int}` parameter naming it): GET asks
    with the page `confirm` makes, POST deletes with the service's `rule` and goes to the list
    (`listing`). `names` names the two routes."""
    add_confirmation_page(router, path, confirm, role=Role.ADMIN, name=names[0])

    async def delete(request: Request, principal: CheckedPrincipal, state: State) -> Response:
        require_role(principal, Role.ADMIN)
        return await delete_then_list(state, principal, path_id(request), rule, listing=listing)

    router.post(path, name=names[1])(delete)
