"""The `credentials` table: an organization's connector credentials, secret fields sealed.

This module stores what it is given; sealing and opening secrets is the service's
(`service/credentials.py`). Every read and write takes the caller's organization, so another
organization's credential is simply not found; rotation alone reads every organization's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from sqlalchemy import Connection, select, update

from surveyor.core.credentials import Credential, CredentialKind
from surveyor.core.sealed import StoredSecret
from surveyor.store import owned_rows
from surveyor.store.schema import credentials

_NAME_TAKEN = "a credential with that name exists"


def _secrets_column(secrets: Mapping[str, StoredSecret]) -> dict[str, dict[str, str]]:
    return {name: stored.to_column() for name, stored in sorted(secrets.items())}


_CREDENTIALS = owned_rows.OwnedTable(
    credentials,
    Credential.from_row,
    name_taken=_NAME_TAKEN,
    to_column={"secrets": _secrets_column, "site_ids": list},
)
get_credential = _CREDENTIALS.get
#: The organization's credentials by id, after `after_id`.
list_credentials = _CREDENTIALS.page
#: Change `name`, `site_ids`, `fields` or `secrets` (all the secrets, as StoredSecret);
#: False when there is no such credential, `Conflict` when the new name is taken.
update_credential = _CREDENTIALS.change
delete_credential = _CREDENTIALS.delete


def create_credential(
    conn: Connection,
    organization_id: int,
    *,
    name: str,
    kind: CredentialKind,
    site_ids: tuple[int, ...],
    fields: Mapping[str, str],
    now: datetime,
) -> int:
    """A new credential without secrets (they are sealed with its id, so set after);
    `Conflict` when the name is taken in the organization."""
    values = {
        "name": name,
        "kind": kind.value,
        "site_ids": site_ids,
        "fields": dict(fields),
        "secrets": {},
    }
    return _CREDENTIALS.insert(conn, organization_id, values, now=now)


def mark_used(conn: Connection, organization_id: int, credential_id: int, *, now: datetime) -> None:
    """Remember that the credential's secrets were just used (not a change: updated_at stays)."""
    conn.execute(
        update(credentials)
        .where(credentials.c.id == credential_id, credentials.c.organization_id == organization_id)
        .values(last_used_at=now)
    )


def every_credential(conn: Connection) -> Iterator[Credential]:
    """Every organization's credentials, for key rotation."""
    rows = conn.execute(select(credentials).order_by(credentials.c.id)).mappings()
    for row in rows.all():
        yield Credential.from_row(row)


def replace_secrets(
    conn: Connection, credential_id: int, secrets: Mapping[str, StoredSecret]
) -> None:
    """Store re-sealed secrets (rotation): neither updated_at nor the set times change."""
    conn.execute(
        update(credentials)
        .where(credentials.c.id == credential_id)
        .values(secrets=_secrets_column(secrets))
    )
