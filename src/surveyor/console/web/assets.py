"""The Assets page: the inventory in address order (or most unusual first) with search, and
one asset with its services, outlier score and history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from surveyor.console.exports import assets_download
from surveyor.console.presenters import asset_out
from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.search_box import (
    MAX_SEARCH_LENGTH,
    SearchProblem,
    parse_search,
)
from surveyor.console.web.session import PageError, PagePrincipal
from surveyor.core.fingerprint import Service
from surveyor.core.identify import STACK_ATTRIBUTE, identify, reasons
from surveyor.core.inventory import AssetService
from surveyor.core.search import SearchError
from surveyor.store import inventory, outliers, records
from surveyor.store.accounts import Role
from surveyor.store.asset_search import compile_asset_search
from surveyor.store.tasks import COUNT_CAP

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100

SEARCH_EXAMPLES = [
    ("alive:false", "assets that stopped answering"),
    ("port:443 site:lab", "a service on 443, in a site whose name contains “lab”"),
    ("hostname:=%.example.com", "exact match with % wildcard"),
    ("outlier:>=60", "assets unusual among their site's peers"),
    ("stale:true", "assets not seen for the retention period (left out otherwise)"),
]
#: The orders the Assets list offers: `?sort=` value → its label.
SORTS = {"address": "Address order", "outlier": "Most unusual first"}


@router.get("/assets")
def assets_page(
    request: Request,
    principal: PagePrincipal,
    state: State,
    search: str = "",
    cursor: str | None = None,
    sort: str = "address",
    exact: bool = False,
) -> Response:
    """The list, with how many assets the search finds: past 10,000 the count reads
    `10,000+`, and its "Count exactly" link asks again with `exact=true`."""
    org = principal.organization_id
    search = search[:MAX_SEARCH_LENGTH]
    sort = sort if sort in SORTS else "address"
    lister = outliers.list_assets_by_outlier if sort == "outlier" else inventory.list_assets
    problem: SearchProblem | None = None
    page = inventory.AssetPage([], None)
    count: inventory.AssetCount | None = None
    with state.db.read() as conn:
        site_names = {site.id: site.name for site in records.list_sites(conn, org, limit=1000)}
        try:
            clause = compile_asset_search(conn, parse_search(search), now=state.clock.now())
        except SearchError as error:
            problem = SearchProblem.of(search, error)
        else:
            try:
                page = lister(conn, org, search=clause, limit=PAGE_SIZE, cursor=cursor)
            except inventory.InvalidAssetCursor:
                page = lister(conn, org, search=clause, limit=PAGE_SIZE)
            count = inventory.count_assets(
                conn, org, search=clause, cap=None if exact else COUNT_CAP
            )
        services = inventory.services_of(conn, [asset.id for asset in page.items])
    context: dict[str, Any] = {
        "assets": [asset_out(asset, site_names, services[asset.id]) for asset in page.items],
        "search": search,
        "problem": problem,
        "search_examples": SEARCH_EXAMPLES,
        "cursor": cursor,
        "next_cursor": page.next_cursor,
        "count": count,
        # a count asked for exactly stays exact on the other pages
        "exact": exact,
        "sort": sort,
        "sorts": SORTS,
        "can_edit": principal.role.allows(Role.OPERATOR),
    }
    return render(request, "assets.html", context)


@router.get("/assets/export")
def export_page_assets(
    principal: PagePrincipal, state: State, search: str = "", format: str = "csv"
) -> Response:
    """The Export links of the Assets page: what the search finds, as CSV or JSONL."""
    if format not in ("csv", "jsonl"):
        raise PageError(400, "Not an export format", f"{format!r} is not csv or jsonl")
    with state.db.read() as conn:
        try:
            clause = compile_asset_search(
                conn, parse_search(search[:MAX_SEARCH_LENGTH]), now=state.clock.now()
            )
        except SearchError as error:
            raise PageError(400, "The search is not valid", str(error)) from error
    return assets_download(state, principal.organization_id, clause, format)  # type: ignore[arg-type]


@router.get("/assets/{asset_id:int}")
def asset_page(request: Request, asset_id: int, principal: PagePrincipal, state: State) -> Response:
    org = principal.organization_id
    with state.db.read() as conn:
        asset = inventory.get_asset(conn, org, asset_id)
        if asset is None:
            raise PageError(404, "Not found", f"asset {asset_id} does not exist")
        services = inventory.services_of(conn, [asset_id])[asset_id]
        sources = inventory.sources_of(conn, [asset_id])[asset_id]
        history = inventory.asset_history(conn, asset_id, limit=50)
        site = records.get_site(conn, org, asset.site_id)
    context: dict[str, Any] = {
        "asset": asset,
        "services": services,
        "sources": sources,
        "history": history,
        "site_name": site.name if site else "",
        "why": why_we_think_so(services, asset.attributes.get(STACK_ATTRIBUTE, "")),
    }
    return render(request, "asset.html", context)


def why_we_think_so(services: list[AssetService], stack: str) -> dict[str, Any] | None:
    """What the fingerprint rules make of the asset's answers and its stack hint
    (docs/fingerprints.md): the system and device type with their confidence, and the
    findings behind them in words; None when no finding names either."""
    fields = Service._fields
    answers = [Service(*(getattr(service, name) for name in fields)) for service in services]
    found = identify(answers, stack=stack)
    lines = reasons(found)
    if not lines:
        return None
    guesses = []
    if found.os:
        guesses.append(f"{found.os_label} ({found.os_confidence:.0%} sure)")
    if found.device_type:
        guesses.append(f"{found.device_type} ({found.device_confidence:.0%} sure)")
    return {"guess": ", ".join(guesses), "reasons": lines}
