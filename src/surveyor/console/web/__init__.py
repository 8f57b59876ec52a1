"""The web console: server-rendered pages (Jinja2) on the same service and store as the API.

One module per page (`tasks`, `new_task`, `imports`, `explorers`, `zones`, `sites`, `assets`,
`dashboard`, `queries` (saved searches), `reports`, `tokens`, `members`, `credentials`,
`notifications`, `audit`, `account`, `settings`),
`login` for signing in and out,
`session` for cookie sessions and CSRF, `render` for templates and security headers, `forms`
for reading submitted forms, `task_view` for how a task is shown. The live updates come from
`GET /api/v1/events` (`console/routes/events.py`, fed by `console/live.py`); the pages' own
scripts and styles are in `console/static/`, the templates in `console/templates/`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from surveyor.console.routing import add_routes
from surveyor.console.web import (
    account,
    assets,
    audit,
    credentials,
    dashboard,
    explorers,
    imports,
    login,
    members,
    new_task,
    notifications,
    queries,
    reports,
    settings,
    sites,
    tasks,
    tokens,
    zones,
)
from surveyor.console.web.render import STATIC_DIR, render
from surveyor.console.web.session import LoginRequired, PageError, login_url

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the pages, their static files and their error pages to the console app."""
    for module in (
        login,
        account,
        dashboard,
        queries,
        new_task,
        imports,
        tasks,
        explorers,
        zones,
        sites,
        assets,
        reports,
        tokens,
        members,
        credentials,
        notifications,
        audit,
        settings,
    ):
        add_routes(app, module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message},
            status=exc.status,
        )
