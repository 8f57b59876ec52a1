"""The confirmation page (`confirm.html`) asked before an action that cannot be undone, and
shown again with the reason when the action is refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request, Response

from surveyor.console.state import ConsoleState, State
from surveyor.console.web.render import render
from surveyor.console.web.session import PagePrincipal, require_role
from surveyor.store.accounts import Principal, Role


@dataclass(frozen=True)
class Confirmation:
    """What the action does (`title`), what follows from it, where the form posts to
    (`action`), its button's label, and where Cancel leads."""

    title: str
    consequences: list[str]
    action: str
    button: str
    cancel: str


#: The confirmation of an action on one row of the caller's organization, by the row's id (a
#: row that does not exist raises the 404 page).
Confirm = Callable[[ConsoleState, Principal, int], Confirmation]


def render_confirmation(
    request: Request, confirmation: Confirmation, *, error: str = "", status: int = 200
) -> Response:
    """The confirmation page; `error` says why the action was refused."""
    return render(request, "confirm.html", {**asdict(confirmation), "error": error}, status=status)


def path_id(request: Request) -> int:
    """The id of the row a page's path names: its one path parameter, an `int` one."""
    (row_id,) = request.path_params.values()
    return int(row_id)


def add_confirmation_page(
    router: APIRouter, path: str, confirm: Confirm, *, role: Role | None, name: str
) -> None:
    """GET `path` (one `{…_id:int}` parameter naming the row): the confirmation page that
    `confirm` makes, for members with `role` at least (None: whoever is signed in). `name`
    names the route."""

    def confirmation_page(request: Request, principal: PagePrincipal, state: State) -> Response:
        if role is not None:
            require_role(principal, role)
        return render_confirmation(request, confirm(state, principal, path_id(request)))

    router.get(path, name=name)(confirmation_page)
