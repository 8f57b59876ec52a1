"""The shapes of credentials in the API (and the CLI that reads it): what is sent, and what
is shown, where a secret field is only ever `{"set": ..., "set_at": ...}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from surveyor.console.schemas import MAX_ID, Strict, name_field
from surveyor.core.credentials import (
    MAX_FIELD_LENGTH,
    Credential,
    CredentialKind,
    field_specs,
)

FieldValue = Annotated[str, Field(max_length=MAX_FIELD_LENGTH)]
SiteId = Annotated[int, Field(ge=1, le=MAX_ID)]
_FIELDS = (
    "the credential's fields by name, plain and secret alike (docs/credentials.md lists "
    "each kind's)"
)


class CredentialIn(Strict):
    name: str = name_field()
    kind: CredentialKind
    site_ids: list[SiteId] = Field(
        default_factory=list, max_length=1000, description="empty: every site"
    )
    fields: dict[str, FieldValue] = Field(default_factory=dict, description=_FIELDS)


class CredentialUpdate(Strict):
    name: str | None = name_field(default=None)
    site_ids: list[SiteId] | None = Field(default=None, max_length=1000)
    fields: dict[str, FieldValue | None] | None = Field(
        default=None,
        description="a field given replaces the stored one, null clears it, absent keeps it",
    )


class SecretState(BaseModel):
    """A secret field as reads show it: whether it is set and when, never its value."""

    set: bool
    set_at: datetime | None


class CredentialOut(BaseModel):
    id: int
    organization_id: int
    name: str
    kind: CredentialKind
    site_ids: list[int]
    fields: dict[str, str | SecretState]
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, credential: Credential) -> CredentialOut:
        fields: dict[str, str | SecretState] = {}
        for spec in field_specs(credential.kind):
            if spec.secret:
                stored = credential.secrets.get(spec.name)
                fields[spec.name] = SecretState(
                    set=stored is not None, set_at=stored.set_at if stored else None
                )
            elif spec.name in credential.fields:
                fields[spec.name] = credential.fields[spec.name]
        return cls(
            id=credential.id,
            organization_id=credential.organization_id,
            name=credential.name,
            kind=credential.kind,
            site_ids=list(credential.site_ids),
            fields=fields,
            created_at=credential.created_at,
            updated_at=credential.updated_at,
            last_used_at=credential.last_used_at,
        )


class VerifyIn(Strict):
    server: str = Field(min_length=1, max_length=300, description="host[:port]")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the connector's options, as a connector task's params"
    )


class VerifyOut(BaseModel):
    """`ok` false is an answer, not an error: the connector tried and says what failed."""

    credential_id: int
    server: str
    ok: bool
    message: str
