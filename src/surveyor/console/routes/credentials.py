"""`/api/v1/credentials`: connectors' credentials, for admins only; secrets are write-only."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from surveyor.console.auth import Admin
from surveyor.console.credential_schemas import (
    CredentialIn,
    CredentialOut,
    CredentialUpdate,
    VerifyIn,
    VerifyOut,
)
from surveyor.console.errors import error_responses
from surveyor.console.refusals import answering_refusals, deleted, reading, writing
from surveyor.console.schemas import After, IdPath, Limit
from surveyor.console.state import State
from surveyor.service import credentials as rules
from surveyor.store import credentials as store

router = APIRouter(
    prefix="/api/v1", tags=["credentials"], responses=error_responses(400, 401, 403, 404, 409, 422)
)


@router.get("/credentials", response_model=list[CredentialOut])
def list_credentials(
    principal: Admin, state: State, limit: Limit = 100, after: After = None
) -> Any:
    with state.db.read() as conn:
        found = store.list_credentials(conn, principal.organization_id, limit=limit, after_id=after)
    return [CredentialOut.of(credential) for credential in found]


@router.post("/credentials", status_code=201, response_model=CredentialOut)
def create_credential(body: CredentialIn, principal: Admin, state: State) -> Any:
    """Create a credential; its secret fields are encrypted and never shown again."""
    with writing(state) as conn:
        created = rules.create_credential(
            conn,
            principal,
            state.secret_box,
            **body.model_dump(),
            now=state.clock.now(),
        )
    return CredentialOut.of(created)


@router.get("/credentials/{credential_id}", response_model=CredentialOut)
def get_credential(credential_id: IdPath, principal: Admin, state: State) -> Any:
    with reading(state) as conn:
        return CredentialOut.of(rules.get_credential(conn, principal, credential_id))


@router.patch("/credentials/{credential_id}", response_model=CredentialOut)
def update_credential(
    credential_id: IdPath, body: CredentialUpdate, principal: Admin, state: State
) -> Any:
    """Change a credential: a field given replaces the stored one (a secret too), null
    clears it, a field not given stays. The kind never changes."""
    with writing(state) as conn:
        updated = rules.update_credential(
            conn,
            principal,
            state.secret_box,
            credential_id,
            **body.model_dump(),
            now=state.clock.now(),
        )
    return CredentialOut.of(updated)


@router.delete("/credentials/{credential_id}", status_code=204)
def delete_credential(credential_id: IdPath, principal: Admin, state: State) -> Response:
    return deleted(state, principal, rules.delete_credential, credential_id)


@router.post("/credentials/{credential_id}/verify", response_model=VerifyOut)
async def verify_credential(
    credential_id: IdPath, body: VerifyIn, principal: Admin, state: State
) -> Any:
    """Try the credential against `server` with the connector of its kind. 200 with `ok`
    true and what worked, or `ok` false and what failed, in plain words ("bind as
    cn=svc,dc=lab to 127.0.0.1:3890 failed: invalid credentials"); 400 for a bad server or
    options, 409 when this console's key does not open the credential."""
    with answering_refusals():
        outcome = await asyncio.to_thread(
            rules.verify_credential,
            state.db,
            principal,
            state.secret_box,
            credential_id,
            server=body.server,
            options=body.options,
            now=state.clock.now(),
        )
    return VerifyOut(
        credential_id=credential_id, server=outcome.server, ok=outcome.ok, message=outcome.message
    )
