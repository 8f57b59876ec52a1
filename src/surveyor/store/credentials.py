"""The `credentials` table: an organization's connector credentials, secret fields sealed.

This module stores what it is given; sealing and opening secrets is the service's
(`service/credentials.py`). Every read and write takes the caller's organization, so another
organization's credential is simply not found; rotation alone reads every organization's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveyor.core.credentials import Credential, CredentialKind, StoredSecret
from surveyor.store.records import Conflict
from surveyor.store.schema import credentials

_NAME_TAKEN = "a credential with that name exists"


def _secrets_column(secrets: Mapping[str, StoredSecret]) -> dict[str, dict[str, str]]:
    return {
        name: {"sealed": stored.sealed, "set_at": stored.set_at.isoformat()}
        for name, stored in sorted(secrets.items())
    }


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
    try:
        with conn.begin_nested():
            return int(
                conn.execute(
                    insert(credentials)
                    .values(
                        organization_id=organization_id,
                        name=name,
                        kind=kind.value,
                        site_ids=list(site_ids),
                        fields=dict(fields),
                        secrets={},
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(credentials.c.id)
                ).scalar_one()
            )
    except IntegrityError as exc:
        raise Conflict(_NAME_TAKEN) from exc


def get_credential(conn: Connection, organization_id: int, credential_id: int) -> Credential | None:
    row = (
        conn.execute(
            select(credentials).where(
                credentials.c.id == credential_id,
                credentials.c.organization_id == organization_id,
            )
        )
        .mappings()
        .first()
    )
    return Credential.from_row(row) if row is not None else None


def list_credentials(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[Credential]:
    """The organization's credentials by id, after `after_id`."""
    query = select(credentials).where(credentials.c.organization_id == organization_id)
    if after_id is not None:
        query = query.where(credentials.c.id > after_id)
    rows = conn.execute(query.order_by(credentials.c.id).limit(limit)).mappings()
    return [Credential.from_row(row) for row in rows]


def update_credential(
    conn: Connection,
    organization_id: int,
    credential_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime,
) -> bool:
    """Change `name`, `site_ids`, `fields` or `secrets` (all the secrets, as StoredSecret);
    False when there is no such credential, `Conflict` when the new name is taken."""
    values = dict(changes)
    if "secrets" in values:
        values["secrets"] = _secrets_column(values["secrets"])
    if "site_ids" in values:
        values["site_ids"] = list(values["site_ids"])
    try:
        with conn.begin_nested():
            result = conn.execute(
                update(credentials)
                .where(
                    credentials.c.id == credential_id,
                    credentials.c.organization_id == organization_id,
                )
                .values(**values, updated_at=now)
            )
    except IntegrityError as exc:
        raise Conflict(_NAME_TAKEN) from exc
    return result.rowcount == 1


def mark_used(conn: Connection, organization_id: int, credential_id: int, *, now: datetime) -> None:
    """Remember that the credential's secrets were just used (not a change: updated_at stays)."""
    conn.execute(
        update(credentials)
        .where(credentials.c.id == credential_id, credentials.c.organization_id == organization_id)
        .values(last_used_at=now)
    )


def delete_credential(conn: Connection, organization_id: int, credential_id: int) -> bool:
    result = conn.execute(
        delete(credentials).where(
            credentials.c.id == credential_id, credentials.c.organization_id == organization_id
        )
    )
    return result.rowcount == 1


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
