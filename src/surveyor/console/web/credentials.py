"""The Credentials pages (admins only): the organization's connector credentials, creating,
editing, verifying and deleting them through the same rules as `/api/v1/credentials`.

Secret inputs are password fields that are never filled in: a page shows only whether a
secret is set and when, and a form sent back with an error leaves them empty again. On an
edit, a secret left blank keeps the stored one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response

from surveyor.console.credential_schemas import CredentialOut
from surveyor.console.state import ConsoleState, State
from surveyor.console.web.confirm import Confirmation
from surveyor.console.web.forms import sentence
from surveyor.console.web.pages import ResourcePages
from surveyor.console.web.refusals import missing_is_404, owned_row
from surveyor.console.web.secret_forms import SecretForms
from surveyor.console.web.session import CheckedPrincipal, require_role
from surveyor.core.credentials import CredentialKind, FieldSpec, field_specs
from surveyor.service import credentials as rules
from surveyor.service.credentials import CredentialRefused, Verification
from surveyor.service.refusals import Reason
from surveyor.store import credentials as store
from surveyor.store import records
from surveyor.store.accounts import Principal, Role

router = APIRouter(include_in_schema=False)
PAGES = ResourcePages(router, "/credentials", "credential_id", Role.ADMIN)
MAX_NAME = 200
#: The fields of each kind, for the forms.
KINDS: dict[str, tuple[FieldSpec, ...]] = {kind.value: field_specs(kind) for kind in CredentialKind}
KIND_LABELS = {"ldap": "LDAP / Active Directory", "snmp": "SNMP", "dns": "DNS zone transfer"}


def _sites(state: ConsoleState, principal: Principal) -> dict[str, Any]:
    """The sites a form offers, and their names by id (a credential's sites as a page names
    them)."""
    with state.db.read() as conn:
        sites = records.list_sites(conn, principal.organization_id, limit=1000)
    return {"sites": sites, "site_names": {site.id: site.name for site in sites}}


def _list_context(
    state: ConsoleState,
    principal: Principal,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    with state.db.read() as conn:
        found = store.list_credentials(conn, principal.organization_id, limit=1000)
    return {
        "credentials": [CredentialOut.of(credential) for credential in found],
        **_sites(state, principal),
        "kinds": KINDS,
        "kind_labels": KIND_LABELS,
        # Never a secret: the forms' values are the plain fields only.
        "form": form or {"name": "", "kind": "ldap", "site_ids": [], "fields": {}},
        "errors": errors or {},
    }


def _credential_context(
    state: ConsoleState,
    principal: Principal,
    credential_id: int,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: bool = False,
    verification: Verification | None = None,
    verify_form: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    with missing_is_404(), state.db.read() as conn:
        credential = CredentialOut.of(rules.get_credential(conn, principal, credential_id))
    plain = {key: value for key, value in credential.fields.items() if isinstance(value, str)}
    return {
        "credential": credential,
        "specs": KINDS[credential.kind.value],
        "kind_labels": KIND_LABELS,
        **_sites(state, principal),
        "form": form
        or {"name": credential.name, "site_ids": list(credential.site_ids), "fields": plain},
        "errors": errors or {},
        "saved": saved,
        "verification": verification,
        "verify_form": verify_form or {"server": "", "options": ""},
    }


async def _submitted(request: Request, kind: str) -> dict[str, Any]:
    """The form as the rules take it: name, site ids, and the fields of `kind` (inputs named
    `<kind>-<field>`); blank fields are left out."""
    form = await request.form()
    name = form.get("name")
    site_ids = []
    for raw in form.getlist("site_ids"):
        if isinstance(raw, str) and raw.isdigit() and len(raw) < 19:
            site_ids.append(int(raw))
    fields: dict[str, str] = {}
    for spec in KINDS.get(kind, ()):
        value = form.get(f"{kind}-{spec.name}")
        if isinstance(value, str) and value.strip():
            fields[spec.name] = value if spec.secret else value.strip()
    return {
        "name": name.strip() if isinstance(name, str) else "",
        "site_ids": site_ids,
        "fields": fields,
    }


def _shown(kind: str, submitted: Mapping[str, Any]) -> dict[str, Any]:
    """What a form sent back shows: everything but the secrets."""
    secret = {spec.name for spec in KINDS.get(kind, ()) if spec.secret}
    plain = {k: v for k, v in submitted["fields"].items() if k not in secret}
    return {**submitted, "kind": kind, "fields": plain}


def _name_error(name: str) -> dict[str, str]:
    if not name:
        return {"name": "Give the credential a name."}
    if len(name) > MAX_NAME:
        return {"name": f"A name has at most {MAX_NAME} characters."}
    return {}


def _refusal_errors(exc: CredentialRefused, kind: str) -> dict[str, str]:
    where = exc.details.get("field")
    if where in ("name", "site_ids"):
        return {str(where): sentence(exc.message)}
    if where:
        return {f"{kind}-{where}": sentence(exc.message)}
    return {"name": sentence(exc.message)}


LIST = PAGES.list_page("credentials.html", _list_context)
ITEM = PAGES.item_page("credential.html", _credential_context)
FORMS = SecretForms(
    PAGES, LIST, ITEM, rules.create_credential, rules.update_credential, CredentialRefused
)


@router.post("/credentials")
async def create_credential(
    request: Request, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    form = await request.form()
    kind = form.get("kind")
    kind = kind if isinstance(kind, str) and kind in KINDS else ""
    submitted = await _submitted(request, kind)
    errors = _name_error(submitted["name"]) if kind else {"kind": "Choose a kind."}
    values = {**submitted, "kind": CredentialKind(kind)} if kind else {}
    return await FORMS.create(
        request,
        state,
        principal,
        values,
        errors=errors,
        shown=_shown(kind or "ldap", submitted),
        refusal_errors=lambda exc: _refusal_errors(exc, kind),
    )


@router.post("/credentials/{credential_id:int}")
async def edit_credential(
    request: Request, credential_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    kind = owned_row(state, principal, store.get_credential, credential_id, "credential").kind.value
    submitted = await _submitted(request, kind)
    # Plain fields left blank are cleared; secrets left blank stay as they are.
    fields: dict[str, str | None] = {spec.name: None for spec in KINDS[kind] if not spec.secret}
    fields.update(submitted["fields"])
    return await FORMS.edit(
        request,
        state,
        principal,
        credential_id,
        {**submitted, "fields": fields},
        errors=_name_error(submitted["name"]),
        shown=_shown(kind, submitted),
        refusal_errors=lambda exc: _refusal_errors(exc, kind),
    )


@router.post("/credentials/{credential_id:int}/verify")
async def verify_credential(
    request: Request, credential_id: int, principal: CheckedPrincipal, state: State
) -> Response:
    require_role(principal, Role.ADMIN)
    form = await request.form()
    server = form.get("server")
    raw_options = form.get("options")
    verify_form = {
        "server": server.strip() if isinstance(server, str) else "",
        "options": raw_options.strip() if isinstance(raw_options, str) else "",
    }
    errors: dict[str, str] = {}
    verification = None
    try:
        options = json.loads(verify_form["options"]) if verify_form["options"] else {}
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        errors["options"] = 'Options are a JSON object, such as {"base_dn": "dc=lab"}.'
    else:
        try:
            with missing_is_404():
                verification = await asyncio.to_thread(
                    rules.verify_credential,
                    state.db,
                    principal,
                    state.secret_box,
                    credential_id,
                    server=verify_form["server"],
                    options=options,
                    now=state.clock.now(),
                )
        except CredentialRefused as exc:
            target = "server" if exc.details.get("field") == "server" else "options"
            if exc.reason is Reason.WRONG_KEY:
                target = "verify"
            errors[target] = sentence(exc.message)
    return await ITEM.sent_back(
        request,
        state,
        principal,
        credential_id,
        status=400 if errors else 200,
        verification=verification,
        verify_form=verify_form,
        errors=errors,
    )


def _delete_confirmation(
    state: ConsoleState, principal: Principal, credential_id: int
) -> Confirmation:
    credential = _credential_context(state, principal, credential_id)["credential"]
    return Confirmation(
        title=f"Delete credential “{credential.name}”?",
        consequences=[
            "Its secrets are deleted with it; nobody can read them back.",
            "Connector tasks that name it fail until they are given another credential.",
        ],
        button="Delete credential",
        cancel=f"/credentials/{credential_id}",
    )


PAGES.deletion(_delete_confirmation, rules.delete_credential)
