"""The pages every kind of resource has alike, registered once for each: its list, one
item's page (with the notice `?saved=1` that an edit's redirect asks for), the confirmation
asked before an action on one item, and an admin's deletion of one. What a page shows comes
from the module that owns the resource. A form the rules refuse comes back on the page it
was sent from (`Page.sent_back`), with what was typed and a message by each field at fault."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console.refusals import DeleteRule
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation, render_confirmation
from surveyor.console.web.refusals import ActionRefused, missing_is_404
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PagePrincipal, require_role
from surveyor.store.accounts import Principal, Role

#: A list page's context for the caller's organization.
ListContext = Callable[[ConsoleState, Principal], dict[str, Any]]
#: The confirmation of an action on one item, by its id (one that does not exist raises the
#: 404 page).
Confirm = Callable[[ConsoleState, Principal, int], Confirmation]
#: An action on one item, by its id, in a transaction of its own: it raises the 404 page for
#: an item that does not exist and `ActionRefused` when the rules refuse it; what it returns
#: may decide where the browser goes next.
Act = Callable[[ConsoleState, Principal, int], Any]


class ItemContext(Protocol):
    """An item's page context by its id (one that does not exist raises the 404 page), with
    or without the notice that an edit was saved."""

    def __call__(
        self, state: ConsoleState, principal: Principal, row_id: int, /, *, saved: bool
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Page:
    """A page: its template, and the function that makes its context from the state, the
    signed-in member and the page's own arguments (an item's id, a form sent back, errors)."""

    template: str
    context: Callable[..., dict[str, Any]]

    async def sent_back(
        self,
        request: Request,
        state: ConsoleState,
        principal: Principal,
        *args: Any,
        status: int = 400,
        **context: Any,
    ) -> Response:
        """The page again after a form was posted to it: `context` carries what the form
        said and what was wrong with it (by default a refusal: 400)."""
        found = await asyncio.to_thread(self.context, state, principal, *args, **context)
        return render(request, self.template, found, status=status)


def _page_name(template: str) -> str:
    return template.removesuffix(".html").replace("/", "_") + "_page"


@dataclass(frozen=True)
class ResourcePages:
    """The pages of one kind of resource: its list at `path`, an item at `path/{id_name}`,
    for members with `role` at least (None: whoever is signed in)."""

    router: APIRouter
    path: str
    id_name: str
    role: Role | None = None

    def _item_path(self, action: str = "") -> str:
        return f"{self.path}/{{{self.id_name}:int}}" + (f"/{action}" if action else "")

    def _name(self, action: str) -> str:
        """The name of an action's route on an item: `confirm_delete_credential`."""
        return f"{action}_{self.id_name.removesuffix('_id')}"

    def _allow(self, principal: Principal) -> None:
        if self.role is not None:
            require_role(principal, self.role)

    def item_url(self, row_id: int, *, saved: bool = False) -> str:
        """The address of an item's page; `saved`: with the notice that an edit was saved."""
        return f"{self.path}/{row_id}" + ("?saved=1" if saved else "")

    def to_item(self, row_id: int, *, saved: bool = False) -> Response:
        """Go on to an item's page (after a form created or saved it)."""
        return RedirectResponse(self.item_url(row_id, saved=saved), status_code=303)

    def list_page(self, template: str, context: ListContext) -> Page:
        """GET `path`: `template` with `context`."""

        def list_page(request: Request, principal: PagePrincipal, state: State) -> Response:
            self._allow(principal)
            return render(request, template, context(state, principal))

        self.router.get(self.path, name=_page_name(template))(list_page)
        return Page(template, context)

    def item_page(self, template: str, context: ItemContext) -> Page:
        """GET an item: `template` with `context`, saying the item was saved when
        `?saved=1`."""

        def item_page(
            request: Request, principal: PagePrincipal, state: State, saved: str = ""
        ) -> Response:
            self._allow(principal)
            found = context(state, principal, path_id(request), saved=saved == "1")
            return render(request, template, found)

        self.router.get(self._item_path(), name=_page_name(template))(item_page)
        return Page(template, context)

    def action(
        self, action: str, confirm: Confirm, act: Act, *, then: str | Callable[[Any], str]
    ) -> None:
        """`path/ID/action`: GET asks with the confirmation page `confirm` makes, whose form
        posts to the same address; POST does `act` and goes on to `then` (an address, or one
        made from what `act` returned). A refused action shows its confirmation again, with
        the reason."""

        def confirmation_page(request: Request, principal: PagePrincipal, state: State) -> Response:
            self._allow(principal)
            return render_confirmation(request, confirm(state, principal, path_id(request)))

        async def act_on_item(
            request: Request, principal: CheckedPrincipal, state: State
        ) -> Response:
            self._allow(principal)
            row_id = path_id(request)
            try:
                done = await asyncio.to_thread(act, state, principal, row_id)
            except ActionRefused as exc:
                asked = await asyncio.to_thread(confirm, state, principal, row_id)
                return render_confirmation(request, asked, error=exc.message, status=exc.status)
            where = then(done) if callable(then) else then
            return RedirectResponse(where, status_code=303)

        path = self._item_path(action)
        self.router.get(path, name=self._name(f"confirm_{action}"))(confirmation_page)
        self.router.post(path, name=self._name(action))(act_on_item)

    def deletion(self, confirm: Confirm, rule: DeleteRule) -> None:
        """`path/ID/delete`: GET asks with the page `confirm` makes; POST deletes the item
        with the service's `rule` and goes back to the list (a missing item: the 404 page)."""

        def delete(state: ConsoleState, principal: Principal, row_id: int) -> None:
            with missing_is_404(), state.db.write() as conn:
                rule(conn, principal, row_id, now=state.clock.now())

        self.action("delete", confirm, delete, then=self.path)


def path_id(request: Request) -> int:
    """The id of the item a page's path names: its one path parameter, an `int` one."""
    (row_id,) = request.path_params.values()
    return int(row_id)
