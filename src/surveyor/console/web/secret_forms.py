"""The create and edit forms of a resource that keeps secrets (credentials, notification
rules): what the form says is written through the service's rules with the console's secret
box, and the browser goes on to the item's page; a form the rules refuse comes back on the
page it was sent from, with a message by each field at fault. What a page checks itself,
and which of its values are secrets that never come back, stays with the page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import Request, Response

from surveyor.console.state import ConsoleState
from surveyor.console.web.pages import Page, ResourcePages
from surveyor.console.web.refusals import missing_is_404
from surveyor.service.refusals import Refused
from surveyor.store.accounts import Principal

_Refusal = TypeVar("_Refusal", bound=Refused)
#: The messages a page shows by field for a refusal of the rules.
RefusalErrors = Callable[[_Refusal], dict[str, str]]


class _Created(Protocol):
    """A row a create rule returns: its id is where the browser goes next."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True)
class SecretForms(Generic[_Refusal]):
    """The forms of the resource that `pages` lists (`list_page`) and shows (`item_page`).
    `create_rule` and `update_rule` are the service's, called in a write transaction as
    `rule(conn, principal, secret_box, [row id,] **values, now=...)`; they refuse with
    `refused`."""

    pages: ResourcePages
    list_page: Page
    item_page: Page
    create_rule: Callable[..., _Created]
    update_rule: Callable[..., object]
    refused: type[_Refusal]

    async def create(
        self,
        request: Request,
        state: ConsoleState,
        principal: Principal,
        values: Mapping[str, Any],
        *,
        errors: Mapping[str, str],
        shown: Mapping[str, Any],
        refusal_errors: RefusalErrors[_Refusal],
    ) -> Response:
        """Create the item from `values` (unless the page's own checks found `errors`) and
        go on to its page; otherwise the list page again with the form as `shown`."""
        if not errors:
            try:
                created = await asyncio.to_thread(self._create, state, principal, values)
            except self.refused as exc:
                errors = refusal_errors(exc)
            else:
                return self.pages.to_item(created)
        return await self.list_page.sent_back(request, state, principal, form=shown, errors=errors)

    async def edit(
        self,
        request: Request,
        state: ConsoleState,
        principal: Principal,
        row_id: int,
        values: Mapping[str, Any],
        *,
        errors: Mapping[str, str],
        shown: Mapping[str, Any],
        refusal_errors: RefusalErrors[_Refusal],
    ) -> Response:
        """Save `values` on item `row_id` (unless the page's own checks found `errors`; a
        missing item is the 404 page) and go on to its page, saying it was saved; otherwise
        the item's page again with the form as `shown`."""
        if not errors:
            try:
                with missing_is_404():
                    await asyncio.to_thread(self._update, state, principal, row_id, values)
            except self.refused as exc:
                errors = refusal_errors(exc)
            else:
                return self.pages.to_item(row_id, saved=True)
        return await self.item_page.sent_back(
            request, state, principal, row_id, form=shown, errors=errors
        )

    def _create(self, state: ConsoleState, principal: Principal, values: Mapping[str, Any]) -> int:
        with state.db.write() as conn:
            created = self.create_rule(
                conn, principal, state.secret_box, **values, now=state.clock.now()
            )
            return created.id

    def _update(
        self, state: ConsoleState, principal: Principal, row_id: int, values: Mapping[str, Any]
    ) -> None:
        with state.db.write() as conn:
            self.update_rule(
                conn, principal, state.secret_box, row_id, **values, now=state.clock.now()
            )
