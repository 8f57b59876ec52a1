"""The Sites page: each site's scan scope, excludes, size and how many assets it holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection, func, select

from surveyor.console.routes.resources import site_out
from surveyor.console.state import ConsoleState, console_state
from surveyor.console.web.render import render
from surveyor.console.web.session import PagePrincipal
from surveyor.store import records
from surveyor.store.schema import assets, sites

router = APIRouter(include_in_schema=False)
State = Annotated[ConsoleState, Depends(console_state)]


def asset_counts(conn: Connection, organization_id: int) -> dict[int, dict[str, int]]:
    """Assets per site: all of them and those that answered the last scan of their scope."""
    rows = conn.execute(
        select(
            assets.c.site_id,
            func.count(),
            func.sum(func.cast(assets.c.alive, assets.c.service_count.type)),
        )
        .where(assets.c.organization_id == organization_id)
        .group_by(assets.c.site_id)
    ).all()
    return {
        site_id: {"total": int(total), "online": int(alive or 0)} for site_id, total, alive in rows
    }


@router.get("/sites")
def sites_page(request: Request, principal: PagePrincipal, state: State) -> Response:
    org = principal.organization_id
    with state.db.read() as conn:
        rows = records.list_records(conn, sites, org, limit=1000)
        counts = asset_counts(conn, org)
    context: dict[str, Any] = {
        "sites": [site_out(row) for row in rows],
        "asset_counts": counts,
    }
    return render(request, "sites.html", context)
