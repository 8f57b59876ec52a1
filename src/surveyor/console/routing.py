"""Putting routers' routes in a console app (`add_routes`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put the routes of `routers` in `app`, in order, as they are.

    A router's routes are complete when declared (its prefix, tags and responses are in each),
    and need no copy. `include_router` would make one: recent FastAPI versions build each
    included route's handler again per app, on the app's first request (about 0.15 s for the
    API, more for the pages), which every console app in a process would pay."""
    for router in routers:
        app.router.routes.extend(router.routes)
