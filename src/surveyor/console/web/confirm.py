"""The confirmation page (`confirm.html`) asked before an action that cannot be undone, and
shown again with the reason when the action is refused. Its form posts to the address the
page is at: an action is asked about (GET) and done (POST) at one address."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fastapi import Request, Response

from surveyor.console.web.render import render


@dataclass(frozen=True)
class Confirmation:
    """What the action does (`title`), what follows from it, its button's label, and where
    Cancel leads."""

    title: str
    consequences: list[str]
    button: str
    cancel: str


def render_confirmation(
    request: Request, confirmation: Confirmation, *, error: str = "", status: int = 200
) -> Response:
    """The confirmation page; `error` says why the action was refused."""
    context = {**asdict(confirmation), "action": request.url.path, "error": error}
    return render(request, "confirm.html", context, status=status)
