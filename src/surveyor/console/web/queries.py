"""The Saved searches pages: saving an asset, service or task search with a name and an
optional threshold (pinned, it is an insight on the Dashboard), changing, pinning, unpinning
and deleting saved searches, through the same rules as `/api/v1/queries`
(service/queries.py). Viewers read them; operators change them.

The Assets and Tasks pages, and each insight of the Dashboard, carry small forms that post
here; a form that is refused comes back on the Saved searches page (or the search's own page)
with the reason next to the field at fault, and for a search that is not valid, the position.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import form_fields, sentence
from surveyor.console.web.pages import Page, ResourcePages
from surveyor.console.web.render import render
from surveyor.console.web.search_box import SearchProblem
from surveyor.console.web.session import CheckedPrincipal, PageError, PagePrincipal, require_role
from surveyor.core.queries import MAX_NAME_LENGTH, MAX_THRESHOLD, QueryKind, SavedQuery
from surveyor.core.search import SearchError
from surveyor.service import queries as rules
from surveyor.service.queries import QueryRefused
from surveyor.service.refusals import Reason
from surveyor.store import queries as store
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/queries", "query_id")
OPERATOR_PAGES = ResourcePages(router, "/queries", "query_id", Role.OPERATOR)

#: What each kind of search counts, as the forms offer it.
KIND_LABELS = {
    QueryKind.ASSET.value: "Assets",
    QueryKind.SERVICE.value: "Services (one per asset, port and transport)",
    QueryKind.TASK.value: "Tasks",
}
#: Counts a search's own page lists.
HISTORY_SHOWN = 24
#: Where a form may send the browser back to, by the name it posts as `return_to`.
_RETURNS = {"dashboard": "/dashboard", "queries": "/queries"}
FIELDS = ("name", "kind", "search", "threshold", "pinned", "return_to")
_BLANK = {"name": "", "kind": QueryKind.ASSET.value, "search": "", "threshold": "", "pinned": "1"}


class FormProblem(Exception):
    """A form at fault: a message per field, and the search's problem to mark."""

    def __init__(self, errors: dict[str, str], problem: SearchProblem | None = None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.problem = problem


def _threshold(text: str) -> int | None:
    """A threshold as typed: empty for none, else a count from 0."""
    if not text:
        return None
    if not text.isdigit() or int(text) > MAX_THRESHOLD:
        raise FormProblem({"threshold": f"Give a whole number from 0 to {MAX_THRESHOLD:,}."})
    return int(text)


def _refusal(exc: QueryRefused | SearchError, search: str) -> FormProblem:
    if isinstance(exc, SearchError):
        problem = SearchProblem.of(search, exc)
        return FormProblem({"search": sentence(f"the search is not valid: {exc.message}")}, problem)
    if exc.reason is Reason.NOT_FOUND:
        raise PageError(404, "Not found", exc.message)
    field = str(exc.details.get("field") or "name")
    return FormProblem({field: sentence(exc.message)})


def _return_path(form: Mapping[str, str], default: str) -> str:
    return _RETURNS.get(form.get("return_to", ""), default)


def _list_context(
    state: ConsoleState,
    principal: Principal,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    problem: SearchProblem | None = None,
) -> dict[str, Any]:
    with state.db.read() as conn:
        found = store.list_queries(conn, principal.organization_id)
    return {
        "queries": found,
        "kinds": KIND_LABELS,
        "form": {**_BLANK, **(form or {})},
        "errors": errors or {},
        "problem": problem,
        "can_edit": principal.role.allows(Role.OPERATOR),
        "max_name": MAX_NAME_LENGTH,
    }


def _query_context(
    state: ConsoleState,
    principal: Principal,
    query_id: int,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    problem: SearchProblem | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    try:
        with state.db.read() as conn:
            query = rules.get_query(conn, principal, query_id)
            history = store.count_history(conn, query_id, limit=HISTORY_SHOWN)
    except QueryRefused as exc:
        raise PageError(404, "Not found", exc.message) from exc
    shown = {
        "name": query.name,
        "search": query.search,
        "threshold": "" if query.threshold is None else str(query.threshold),
    }
    return {
        "query": query,
        "kind_label": KIND_LABELS[query.kind],
        "history": history,
        "form": {**shown, **(form or {})},
        "errors": errors or {},
        "problem": problem,
        "saved": saved,
        "can_edit": principal.role.allows(Role.OPERATOR),
        "max_name": MAX_NAME_LENGTH,
    }


LIST = Page("queries.html", _list_context)


@router.get("/queries")
def queries_page(
    request: Request, principal: PagePrincipal, state: State, kind: str = "", search: str = ""
) -> Response:
    """Every saved search; `?kind=&search=` fills in the form to save one."""
    form = {"search": search}
    if kind in KIND_LABELS:
        form["kind"] = kind
    return render(request, LIST.template, _list_context(state, principal, form=form))


def _create(state: ConsoleState, principal: Principal, form: Mapping[str, str]) -> SavedQuery:
    threshold = _threshold(form["threshold"])
    try:
        with state.db.write() as conn:
            return rules.create_query(
                conn,
                principal,
                name=form["name"],
                kind=form["kind"],
                search=form["search"],
                threshold=threshold,
                pinned=bool(form["pinned"]),
                now=state.clock.now(),
            )
    except (QueryRefused, SearchError) as exc:
        raise _refusal(exc, form["search"]) from exc


@router.post("/queries")
async def create_query(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """Save a search (pinned: to the Dashboard, where the browser goes next)."""
    require_role(principal, Role.OPERATOR)
    form = await form_fields(request, FIELDS)
    try:
        created = await asyncio.to_thread(_create, state, principal, form)
    except FormProblem as exc:
        return await LIST.sent_back(
            request, state, principal, form=form, errors=exc.errors, problem=exc.problem
        )
    where = "/dashboard" if created.pinned else "/queries"
    return RedirectResponse(f"{where}?saved={created.id}", status_code=303)


ITEM = PAGES.item_page("query.html", _query_context)


#: The fields a change may send; the Dashboard's form sends no search (it stays as it was).
CHANGEABLE = ("name", "search", "threshold")


def _edit(
    state: ConsoleState,
    principal: Principal,
    query_id: int,
    form: Mapping[str, str],
    sent: set[str],
) -> None:
    changes: dict[str, Any] = {key: form[key] for key in sent if key != "threshold"}
    if "threshold" in sent:
        changes["threshold"] = _threshold(form["threshold"])
    try:
        with state.db.write() as conn:
            current = rules.get_query(conn, principal, query_id)
            # Only what changed: a search left as it was keeps its history of counts.
            changed = {
                key: value for key, value in changes.items() if value != getattr(current, key)
            }
            if changed:
                rules.edit_query(conn, principal, query_id, changed, now=state.clock.now())
    except (QueryRefused, SearchError) as exc:
        raise _refusal(exc, form["search"]) from exc


@router.post("/queries/{query_id:int}")
async def edit_query(
    request: Request, query_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    """Rename a saved search, change its threshold (empty: none) or its search."""
    require_role(principal, Role.OPERATOR)
    submitted = await request.form()
    sent = {name for name in CHANGEABLE if name in submitted}
    form = await form_fields(request, FIELDS)
    try:
        await asyncio.to_thread(_edit, state, principal, query_id, form, sent)
    except FormProblem as exc:
        return await ITEM.sent_back(
            request,
            state,
            principal,
            query_id,
            form={key: form[key] for key in sent},
            errors=exc.errors,
            problem=exc.problem,
        )
    where = _return_path(form, PAGES.item_url(query_id, saved=True))
    return RedirectResponse(where, status_code=303)


def _set_pinned(state: ConsoleState, principal: Principal, query_id: int, pinned: bool) -> None:
    with state.db.write() as conn:
        rules.set_pinned(conn, principal, query_id, pinned, now=state.clock.now())


async def _pin(
    request: Request, query_id: int, principal: Principal, state: ConsoleState, pinned: bool
) -> Response:
    require_role(principal, Role.OPERATOR)
    form = await form_fields(request, ("return_to",))
    try:
        await asyncio.to_thread(_set_pinned, state, principal, query_id, pinned)
    except QueryRefused as exc:
        if exc.reason is Reason.NOT_FOUND:
            raise PageError(404, "Not found", exc.message) from exc
        raise PageError(409, "Not pinned", sentence(exc.message)) from exc
    return RedirectResponse(_return_path(form, PAGES.item_url(query_id)), status_code=303)


@router.post("/queries/{query_id:int}/pin")
async def pin_query(
    request: Request, query_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    """Pin a saved search to the Dashboard as an insight."""
    return await _pin(request, query_id, principal, state, True)


@router.post("/queries/{query_id:int}/unpin")
async def unpin_query(
    request: Request, query_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    """Take an insight off the Dashboard; the search and its counts stay."""
    return await _pin(request, query_id, principal, state, False)


def _delete_confirmation(state: ConsoleState, principal: Principal, query_id: int) -> Confirmation:
    query = _query_context(state, principal, query_id)["query"]
    return Confirmation(
        title=f"Delete the saved search “{query.name}”?",
        consequences=[
            "It leaves the Dashboard, and no Query task counts it any more."
            if query.pinned
            else "No Query task counts it any more.",
            "Its history of counts is deleted with it; the audit trail keeps what it was.",
        ],
        button="Delete saved search",
        cancel="/dashboard" if query.pinned else f"/queries/{query_id}",
    )


def _delete(state: ConsoleState, principal: Principal, query_id: int) -> bool:
    """Delete the saved search; whether it was pinned (its page then was the Dashboard)."""
    try:
        with state.db.write() as conn:
            pinned = rules.get_query(conn, principal, query_id).pinned
            rules.delete_query(conn, principal, query_id, now=state.clock.now())
    except QueryRefused as exc:
        raise PageError(404, "Not found", exc.message) from exc
    return pinned


OPERATOR_PAGES.action(
    "delete",
    _delete_confirmation,
    _delete,
    then=lambda pinned: "/dashboard" if pinned else "/queries",
)
