"""The Audit page: who created, edited, stopped or removed what, newest first (admins only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from surveyor.console.schemas import MAX_ID
from surveyor.console.state import State
from surveyor.console.web.render import render
from surveyor.console.web.session import PagePrincipal, require_role
from surveyor.store import audit as audit_store
from surveyor.store.accounts import Role
from surveyor.store.audit import AuditEvent, AuditFilter, InvalidAuditFilter
from surveyor.store.tasks import InvalidCursor

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
FILTER_FIELDS = ("actor", "action", "object_type", "object_id", "since", "until")

#: Where the console shows each kind of object, for links from the entries about it.
OBJECT_PAGES: dict[str, Callable[[int], str]] = {
    "task": lambda object_id: f"/tasks?tab=all&task={object_id}",
    "hosted_zone": lambda object_id: f"/hosted-zones/{object_id}",
    "site": lambda _object_id: "/sites",
    "explorer": lambda _object_id: "/explorers",
    "enrollment_token": lambda _object_id: "/explorers",
    "credential": lambda object_id: f"/credentials/{object_id}",
}
_OBJECT_LABELS = {"token": "API token"}


def object_label(object_type: str) -> str:
    label = _OBJECT_LABELS.get(object_type, object_type.replace("_", " "))
    return label[:1].upper() + label[1:]


def details_pairs(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An entry's details as (label, text) pairs; lists are joined with commas."""
    pairs = []
    for key, value in details.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        pairs.append((key.replace("_", " "), shown))
    return pairs


@dataclass(frozen=True)
class EntryView:
    """An entry as the page shows it: the object by kind and current name (linked to where
    the console shows it, while it exists), and links to narrow the trail to its actor and
    to its object."""

    event: AuditEvent
    object: str
    name: str | None
    url: str | None
    actor_url: str
    history_url: str | None
    details: list[tuple[str, str]]


def entry_view(event: AuditEvent, names: Mapping[tuple[str, int], str]) -> EntryView:
    name = names.get((event.object_type, event.object_id)) if event.object_id else None
    page = OBJECT_PAGES.get(event.object_type)
    url = page(event.object_id) if page and name is not None and event.object_id else None
    history = AuditFilter(object_type=event.object_type, object_id=event.object_id)
    return EntryView(
        event=event,
        object=object_label(event.object_type),
        name=name,
        url=url,
        actor_url=filter_query(AuditFilter(actor=event.actor)),
        history_url=filter_query(history) if event.object_id else None,
        details=details_pairs(event.details),
    )


def _time(raw: str) -> datetime:
    """A time from the form (`datetime-local`, read as UTC) or from a link (RFC 3339)."""
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def form_time(moment: datetime | None) -> str:
    """A time as a `datetime-local` input shows it, in UTC."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S").removesuffix(":00")


def link_time(moment: datetime | None) -> str | None:
    """A time in a link, exactly (RFC 3339, UTC)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_filters(raw: Mapping[str, str]) -> tuple[AuditFilter, dict[str, str]]:
    """The filters of the form, and a message for each field that could not be read."""
    errors: dict[str, str] = {}
    text = {key: raw.get(key, "").strip() for key in FILTER_FIELDS}
    for key in ("actor", "action", "object_type"):
        if "\x00" in text[key] or len(text[key]) > (320 if key == "actor" else 40):
            errors[key] = "That is not something the trail records."
    object_id: int | None = None
    if text["object_id"]:
        digits = text["object_id"]
        if digits.isascii() and digits.isdigit() and 1 <= int(digits) <= MAX_ID:
            object_id = int(digits)
        else:
            errors["object_id"] = "An object id is a whole number from 1."
    times: dict[str, datetime | None] = {"since": None, "until": None}
    for key in times:
        if text[key]:
            try:
                times[key] = _time(text[key])
            except (ValueError, OverflowError):
                errors[key] = "Give a date and time, e.g. 2030-01-31T22:00."

    def given(key: str) -> str | None:
        return None if key in errors else text[key] or None

    filters = AuditFilter(
        actor=given("actor"),
        action=given("action"),
        object_type=given("object_type"),
        object_id=object_id,
        since=times["since"],
        until=times["until"],
    )
    return filters, errors


def filter_query(filters: AuditFilter, **extra: str) -> str:
    """The page's address for these filters (and a cursor)."""
    values = {
        "actor": filters.actor,
        "action": filters.action,
        "object_type": filters.object_type,
        "object_id": str(filters.object_id) if filters.object_id is not None else None,
        "since": link_time(filters.since),
        "until": link_time(filters.until),
        **extra,
    }
    query = urlencode({key: value for key, value in values.items() if value})
    return f"/audit?{query}" if query else "/audit"


@router.get("/audit")
def audit_page(request: Request, principal: PagePrincipal, state: State) -> Response:
    require_role(principal, Role.ADMIN)
    params = request.query_params
    filters, errors = parse_filters({key: params.get(key, "") for key in FILTER_FIELDS})
    cursor = params.get("cursor") or None
    page = audit_store.AuditPage()
    names: dict[tuple[str, int], str] = {}
    if not errors:
        with state.db.read() as conn:
            try:
                page = audit_store.list_audit_events(
                    conn, principal.organization_id, filters, limit=PAGE_SIZE, cursor=cursor
                )
            except InvalidAuditFilter as exc:
                errors[exc.field] = exc.message
            except InvalidCursor:
                cursor = None
                page = audit_store.list_audit_events(
                    conn, principal.organization_id, filters, limit=PAGE_SIZE
                )
            names = audit_store.object_names(conn, principal.organization_id, page.items)
    context: dict[str, Any] = {
        "entries": [entry_view(event, names) for event in page.items],
        "filters": filters,
        "form": {
            **{key: params.get(key, "") for key in FILTER_FIELDS},
            **{
                key: form_time(moment)
                for key, moment in (("since", filters.since), ("until", filters.until))
                if moment is not None
            },
        },
        "errors": errors,
        "filtered": any(params.get(key) for key in FILTER_FIELDS),
        "cursor": cursor,
        "first_url": filter_query(filters),
        "next_url": filter_query(filters, cursor=page.next_cursor) if page.next_cursor else "",
    }
    return render(request, "audit.html", context, status=400 if errors else 200)
