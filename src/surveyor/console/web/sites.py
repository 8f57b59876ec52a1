"""The Sites page: each site's scan scope, excludes, size and how many assets it holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from surveyor.console import presenters
from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.session import PagePrincipal
from surveyor.store import inventory, records

router = APIRouter(include_in_schema=False)


@router.get("/sites")
def sites_page(request: Request, principal: PagePrincipal, state: State) -> Response:
    org = principal.organization_id
    with state.db.read() as conn:
        sites = records.list_sites(conn, org, limit=1000)
        counts = inventory.asset_counts_by_site(conn, org)
    context: dict[str, Any] = {
        "sites": [presenters.site_out(site) for site in sites],
        "asset_counts": counts,
    }
    return render(request, "sites.html", context)
