"""The new-task form: a scan or a connector run, now, later or on a schedule, with the next
runs previewed.

The form's fields are turned into the API's `TaskCreate` body and handed to the same service
the API uses, so the rules and messages are the API's. An error names an API field
(`params.targets`, `recur.timezone`, …); the form shows it at the matching input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from surveyor.console.schemas import RecurrenceIn, TaskCreate
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.render import render
from surveyor.console.web.session import CheckedPrincipal, PagePrincipal, require_role
from surveyor.core import kinds, recurrence
from surveyor.core.credentials import Credential
from surveyor.core.ports import PRESETS
from surveyor.core.recurrence.model import Weekday
from surveyor.core.recurrence.wall_clock import load_zone, to_instant
from surveyor.core.resources import Explorer, HostedZone, Site
from surveyor.core.scan_params import DEFAULT_RATE
from surveyor.core.task import Task
from surveyor.core.tasks import Tab
from surveyor.service import tasks as task_service
from surveyor.service.tasks import InvalidTask
from surveyor.store import credentials as credential_store
from surveyor.store import records
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)

#: The schedule fields the form shows for each frequency.
RECUR_FIELDS: dict[str, tuple[str, ...]] = {
    "hourly": ("interval",),
    "daily": ("interval", "time"),
    "weekly": ("interval", "time", "weekdays"),
    "monthly": ("interval", "time", "day_of_month"),
    "cron": ("cron",),
}
WEEKDAYS = [(day.name.lower(), day.label) for day in Weekday]
CUSTOM_PORTS = "custom"


def port_choices() -> list[tuple[str, str]]:
    """The port presets as (value, label), one per distinct list (`default` is `top100`)."""
    seen: set[tuple[int, ...]] = set()
    choices = []
    for name, ports in PRESETS.items():
        if ports not in seen:
            seen.add(ports)
            choices.append((name, f"{name} ({len(ports):,} ports)"))
    return choices


#: Where an error about an API field is shown in the form.
_FIELD_INPUTS = {
    "name": "name",
    "description": "description",
    "site_id": "site_id",
    "explorer_id": "runner",
    "hosted_zone_id": "runner",
    "params": "targets",
    "params.targets": "targets",
    "params.excludes": "excludes",
    "params.tcp_ports": "ports_custom",
    "params.rate": "rate",
    "params.connector": "connector",
    "params.credential_id": "credential_id",
    "params.server": "server",
    "params.base_dn": "base_dn",
    "params.filter": "ldap_filter",
    "params.tls": "tls",
    "params.ca_file": "ca_file",
    "params.dns_server": "dns_server",
    "params.resolve": "resolve",
    "params.zones": "zones",
    "params.version": "snmp_version",
    "type": "form",
    "start_time": "start_time",
    "recur": "frequency",
    "recur.frequency": "frequency",
    "recur.interval": "interval",
    "recur.time": "time",
    "recur.weekdays": "weekdays",
    "recur.day_of_month": "day_of_month",
    "recur.cron": "cron",
    "recur.timezone": "timezone",
    "recur.start": "frequency",
}


class FormProblem(ValueError):
    """A form value the API body cannot even be built from; `field` is the form input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _whole(form: FormData, key: str, *, default: int | None = None) -> int | None:
    text = _text(form, key)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise FormProblem(key, f"must be a whole number, not {text!r}") from None


def recurrence_input(form: FormData) -> dict[str, Any]:
    """The API's `recur` object from the schedule fields shown for the chosen frequency."""
    frequency = _text(form, "frequency") or "daily"
    if frequency not in RECUR_FIELDS:
        raise FormProblem("frequency", f"{frequency!r} is not a frequency of this form")
    shown = RECUR_FIELDS[frequency]
    recur: dict[str, Any] = {"frequency": frequency, "timezone": _text(form, "timezone") or "UTC"}
    if "interval" in shown:
        recur["interval"] = _whole(form, "interval", default=1)
    if "time" in shown and _text(form, "time"):
        recur["time"] = _text(form, "time")
    if "weekdays" in shown:
        recur["weekdays"] = [day for day in form.getlist("weekdays") if isinstance(day, str)]
    if "day_of_month" in shown:
        recur["day_of_month"] = _whole(form, "day_of_month")
    if "cron" in shown:
        recur["cron"] = _text(form, "cron")
    return recur


def _start_time(form: FormData) -> datetime:
    text = _text(form, "start_time")
    if not text:
        raise FormProblem("start_time", "choose when the scan starts")
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise FormProblem("start_time", f"{text!r} is not a date and time") from None
    zone_name = _text(form, "timezone") or "UTC"
    try:
        zone = load_zone(zone_name)
    except ValueError as exc:
        raise FormProblem("timezone", str(exc)) from None
    return to_instant(wall.replace(tzinfo=None), zone).astimezone(UTC)


#: The connectors the form offers, with the options each shows (SPEC §9).
CONNECTORS = (("ldap", "LDAP / Active Directory"), ("dns", "DNS zone transfer"), ("snmp", "SNMP"))
TLS_MODES = (("none", "none"), ("starttls", "StartTLS"), ("ldaps", "LDAPS"))


def scan_params(form: FormData) -> dict[str, Any]:
    params: dict[str, Any] = {"targets": _text(form, "targets")}
    if _text(form, "excludes"):
        params["excludes"] = _text(form, "excludes")
    preset = _text(form, "ports") or "default"
    params["tcp_ports"] = _text(form, "ports_custom") if preset == CUSTOM_PORTS else preset
    params["rate"] = _whole(form, "rate", default=DEFAULT_RATE)
    return params


def connector_params(form: FormData) -> dict[str, Any]:
    """A connector run's params: the connector, its credential and server, and the
    options of that connector that the form filled in."""
    connector = _text(form, "connector")
    credential = _text(form, "credential_id")
    if not credential:
        raise FormProblem("credential_id", "choose a credential (Settings → Credentials)")
    params: dict[str, Any] = {
        "connector": connector,
        "credential_id": _whole(form, "credential_id"),
        "server": _text(form, "server"),
    }
    if connector == "ldap":
        for field, key in (
            ("base_dn", "base_dn"),
            ("ldap_filter", "filter"),
            ("ca_file", "ca_file"),
            ("dns_server", "dns_server"),
        ):
            if _text(form, field):
                params[key] = _text(form, field)
        params["tls"] = _text(form, "tls") or "none"
        params["resolve"] = _text(form, "resolve") == "on"
    elif connector == "dns":
        params["zones"] = [zone for zone in _text(form, "zones").replace(",", " ").split() if zone]
    elif connector == "snmp":
        params["targets"] = _text(form, "snmp_targets")
        params["version"] = _text(form, "snmp_version") or "2c"
    return params


def task_body(form: FormData) -> dict[str, Any]:
    """The API's `TaskCreate` body from the form."""
    connector = _text(form, "type") == kinds.CONNECTOR.type
    body: dict[str, Any] = {
        "name": _text(form, "name"),
        "description": _text(form, "description"),
        "type": kinds.CONNECTOR.type if connector else kinds.SCAN.type,
        "params": connector_params(form) if connector else scan_params(form),
    }
    site = _text(form, "site_id")
    if site:
        body["site_id"] = _whole(form, "site_id")
    runner = _text(form, "runner")
    kind, _, runner_id = runner.partition(":")
    if kind in ("explorer", "zone") and runner_id.isdigit():
        body["explorer_id" if kind == "explorer" else "hosted_zone_id"] = int(runner_id)
    when = _text(form, "when") or "now"
    if when == "later":
        body["start_time"] = _start_time(form)
    elif when == "recurring":
        body["recur"] = recurrence_input(form)
    return body


def _validation_errors(exc: ValidationError, *, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors by form input (`prefix` names the body the model sits in)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        location = prefix + ".".join(str(part) for part in error.get("loc", ()))
        field = _FIELD_INPUTS.get(location, "form")
        errors.setdefault(field, str(error.get("msg", "is not valid")))
    return errors


@dataclass(frozen=True)
class Choices:
    sites: list[Site]
    explorers: list[Explorer]
    zones: list[HostedZone]
    credentials: list[Credential]


def _choices(state: ConsoleState, principal: Principal) -> Choices:
    org = principal.organization_id
    with state.db.read() as conn:
        return Choices(
            records.list_sites(conn, org, limit=1000),
            records.list_explorers(conn, org, limit=1000),
            records.list_zones(conn, org, limit=1000),
            credential_store.list_credentials(conn, org, limit=1000),
        )


def _form_page(
    request: Request,
    state: ConsoleState,
    principal: Principal,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    *,
    status: int = 200,
) -> Response:
    return render(
        request,
        "tasks/new.html",
        {
            "choices": _choices(state, principal),
            "values": values,
            "errors": errors,
            "presets": port_choices(),
            "connectors": CONNECTORS,
            "tls_modes": TLS_MODES,
            "custom_ports": CUSTOM_PORTS,
            "recur_fields": RECUR_FIELDS,
            "weekdays": WEEKDAYS,
            "zones": sorted(available_timezones()),
        },
        status=status,
    )


#: What the form shows before anything is chosen.
FORM_DEFAULTS: dict[str, Any] = {
    "type": "scan",
    "connector": "ldap",
    "credential_id": "",
    "server": "",
    "base_dn": "",
    "ldap_filter": "",
    "tls": "none",
    "ca_file": "",
    "resolve": "",
    "dns_server": "",
    "zones": "",
    "snmp_targets": "",
    "snmp_version": "2c",
    "name": "",
    "description": "",
    "site_id": "",
    "runner": "",
    "targets": "",
    "excludes": "",
    "ports": "default",
    "ports_custom": "",
    "rate": str(DEFAULT_RATE),
    "when": "now",
    "start_time": "",
    "frequency": "daily",
    "interval": "1",
    "time": "02:00",
    "weekdays": ["mo"],
    "day_of_month": "1",
    "cron": "",
    "timezone": "UTC",
}


def _initial_values(state: ConsoleState, principal: Principal) -> dict[str, Any]:
    """The defaults, with the first site chosen and its scope as the targets."""
    choices = _choices(state, principal)
    values = dict(FORM_DEFAULTS)
    if choices.sites:
        site = choices.sites[0]
        values.update(site_id=str(site.id), targets=site.scope, excludes=site.excludes)
    return values


def _submitted_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = dict(FORM_DEFAULTS)
    values.update({key: _text(form, key) for key in form if key in FORM_DEFAULTS})
    values["weekdays"] = [day for day in form.getlist("weekdays") if isinstance(day, str)]
    return values


@router.get("/tasks/new")
def new_task_form(request: Request, principal: PagePrincipal, state: State) -> Response:
    require_role(principal, Role.OPERATOR)
    return _form_page(request, state, principal, _initial_values(state, principal), {})


def _create(state: ConsoleState, principal: Principal, form: FormData) -> Task:
    """Build the body, validate it as the API does, create; raises FormProblem with the
    form input at fault."""
    try:
        body = TaskCreate.model_validate(task_body(form)).model_dump(exclude_unset=True)
    except ValidationError as exc:
        first_field, message = next(iter(_validation_errors(exc).items()))
        raise FormProblem(first_field, message) from exc
    try:
        with state.db.write() as conn:
            return task_service.create_task(conn, principal, body, now=state.clock.now())
    except InvalidTask as exc:
        raise FormProblem(_FIELD_INPUTS.get(exc.field, "form"), exc.message) from exc


@router.post("/tasks/new")
async def create_task(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """Create the task and show it selected in its tab; on an error, the form again with
    the message at the field."""
    require_role(principal, Role.OPERATOR)
    form = await request.form()
    try:
        task = await asyncio.to_thread(_create, state, principal, form)
    except FormProblem as problem:
        return await asyncio.to_thread(
            _form_page,
            request,
            state,
            principal,
            _submitted_values(form),
            {problem.field: problem.message},
            status=400,
        )
    tab = Tab.RECURRING.value if task.recur else "all"
    return RedirectResponse(f"/tasks?tab={tab}&task={task.id}", status_code=303)


def occurrence_text(moment: datetime, zone_name: str) -> str:
    local = moment.astimezone(load_zone(zone_name))
    return local.strftime("%a %Y-%m-%d %H:%M ") + zone_name


@router.post("/tasks/new/preview")
async def preview(request: Request, principal: CheckedPrincipal, state: State) -> Response:
    """The next five runs of the schedule in the form, or the error at its field."""
    form = await request.form()
    now = state.clock.now()
    try:
        raw = recurrence_input(form)
        checked = RecurrenceIn.model_validate(raw).model_dump(exclude_unset=True)
        rec = task_service.parse_recurrence_input(checked, now=now)
    except FormProblem as problem:
        return _preview_error(problem.field, problem.message)
    except ValidationError as exc:
        field, message = next(iter(_validation_errors(exc, prefix="recur.").items()))
        return _preview_error(field, message)
    except InvalidTask as exc:
        return _preview_error(_FIELD_INPUTS.get(exc.field, "frequency"), exc.message)
    moments = recurrence.next_occurrences(rec, now, 5)
    return JSONResponse(
        {
            "description": recurrence.describe(rec),
            "occurrences": [
                {"at": moment.isoformat(), "text": occurrence_text(moment, rec.timezone)}
                for moment in moments
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


def _preview_error(field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=400)
