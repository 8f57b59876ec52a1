"""Credentials: creating, editing, deleting, verifying and re-keying them, for
`/api/v1/credentials`, the Credentials page and the CLI alike.

Secret fields are sealed with the console's key (`security/secretbox.py`) before they reach
the store and opened only to hand them to a connector; they are never returned, logged or
audited. A credential's `fields` as callers give them hold plain and secret fields together
(`core/credentials.py` says which is which); on an edit, a field given replaces the stored
one, a field given as null clears it, and a field not given stays.

The functions that only touch the database take an open write connection (one transaction
each) and the acting principal; another organization's credential is simply not found.
`verify_credential` takes the database, because it talks to another system between its
read and its write and holds no transaction meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.core.credentials import (
    Credential,
    CredentialInvalid,
    CredentialKind,
    check_fields,
    secret_fields,
)
from surveyor.core.sealed import StoredSecret
from surveyor.security.secretbox import (
    SecretBox,
    SecretDamaged,
    WrongSecretKey,
    associated_data,
    sealed_key_id,
)
from surveyor.service.audit import record
from surveyor.service.refusals import Reason, Refused
from surveyor.store import credentials as store
from surveyor.store import records
from surveyor.store.accounts import Principal
from surveyor.store.engine import Database
from surveyor.store.records import Conflict

log = logging.getLogger("surveyor.credentials")

#: The longest `host[:port]` a verify names.
MAX_SERVER_LENGTH = 300
#: What a secret is shown as if a message ever carried one.
REDACTED = "[secret]"
MIN_REDACTED_LENGTH = 3


class CredentialRefused(Refused):
    """A refused action on a credential."""

    noun = "credential"


def _invalid(exc: CredentialInvalid) -> CredentialRefused:
    return CredentialRefused(
        Reason.INVALID, "invalid_credential", exc.message, {"field": exc.field}
    )


def _split(kind: CredentialKind, given: Mapping[str, str | None]) -> tuple[dict[str, Any], ...]:
    """The plain and the secret fields of `given` (None values kept: they clear)."""
    secret = secret_fields(kind)
    plain = {name: value for name, value in given.items() if name not in secret}
    secrets = {name: value for name, value in given.items() if name in secret}
    return plain, secrets


def _check_sites(conn: Connection, organization_id: int, site_ids: Collection[int]) -> None:
    found = records.site_names(conn, organization_id, site_ids)
    missing = sorted(set(site_ids) - set(found))
    if missing:
        raise CredentialRefused(
            Reason.INVALID,
            "invalid_credential",
            f"site {missing[0]} does not exist",
            {"field": "site_ids"},
        )


def _seal_all(
    box: SecretBox,
    credential_id: int,
    secrets: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, StoredSecret]:
    return {
        name: StoredSecret(box.seal(value, aad=associated_data(credential_id, name)), now)
        for name, value in secrets.items()
    }


def create_credential(
    conn: Connection,
    actor: Principal,
    box: SecretBox,
    *,
    name: str,
    kind: CredentialKind,
    fields: Mapping[str, str],
    site_ids: Collection[int] = (),
    now: datetime,
) -> Credential:
    org = actor.organization_id
    plain, secrets = _split(kind, fields)
    plain = {key: value for key, value in plain.items() if value}
    secrets = {key: value for key, value in secrets.items() if value}
    try:
        check_fields(kind, plain, secrets)
    except CredentialInvalid as exc:
        raise _invalid(exc) from exc
    sites = tuple(sorted(set(site_ids)))
    _check_sites(conn, org, sites)
    try:
        credential_id = store.create_credential(
            conn, org, name=name, kind=kind, site_ids=sites, fields=plain, now=now
        )
    except Conflict as exc:
        raise CredentialRefused.name_taken(name) from exc
    store.update_credential(
        conn,
        org,
        credential_id,
        {"secrets": _seal_all(box, credential_id, secrets, now=now)},
        now=now,
    )
    record(
        conn,
        actor,
        "create",
        "credential",
        credential_id,
        now=now,
        details={
            "name": name,
            "kind": kind.value,
            "site_ids": list(sites),
            "fields": sorted(plain),
            "secrets_set": sorted(secrets),
        },
    )
    created = store.get_credential(conn, org, credential_id)
    assert created is not None
    return created


def get_credential(conn: Connection, actor: Principal, credential_id: int) -> Credential:
    found = store.get_credential(conn, actor.organization_id, credential_id)
    return CredentialRefused.require_found(found, credential_id)


def update_credential(
    conn: Connection,
    actor: Principal,
    box: SecretBox,
    credential_id: int,
    *,
    name: str | None = None,
    site_ids: Collection[int] | None = None,
    fields: Mapping[str, str | None] | None = None,
    now: datetime,
) -> Credential:
    """Change the name, the sites or fields (a field given replaces, null clears, absent
    stays); the kind never changes. Audits the names of what changed."""
    org = actor.organization_id
    current = get_credential(conn, actor, credential_id)
    kind = current.kind
    plain_given, secrets_given = _split(kind, fields or {})
    plain = dict(current.fields)
    for key, value in plain_given.items():
        if value:
            plain[key] = value
        else:
            plain.pop(key, None)
    new_secrets = {key: value for key, value in secrets_given.items() if value}
    cleared = {key for key, value in secrets_given.items() if not value}
    kept = set(current.secrets) - cleared - set(new_secrets)
    try:
        check_fields(kind, plain, new_secrets, secrets_kept=kept)
    except CredentialInvalid as exc:
        raise _invalid(exc) from exc
    changes: dict[str, Any] = {}
    if name is not None and name != current.name:
        changes["name"] = name
    if site_ids is not None and tuple(sorted(set(site_ids))) != current.site_ids:
        sites = tuple(sorted(set(site_ids)))
        _check_sites(conn, org, sites)
        changes["site_ids"] = sites
    changed_plain = sorted(
        key for key in set(plain) | set(current.fields) if plain.get(key) != current.fields.get(key)
    )
    if changed_plain:
        changes["fields"] = plain
    if new_secrets or (cleared & set(current.secrets)):
        stored = {key: value for key, value in current.secrets.items() if key in kept}
        stored.update(_seal_all(box, credential_id, new_secrets, now=now))
        changes["secrets"] = stored
    if changes:
        try:
            store.update_credential(conn, org, credential_id, changes, now=now)
        except Conflict as exc:
            raise CredentialRefused.name_taken(name or "") from exc
        details: dict[str, Any] = {
            "changed": sorted(key for key in changes if key in ("name", "site_ids")),
            "fields": changed_plain,
            "secrets_set": sorted(new_secrets),
            "secrets_cleared": sorted(cleared & set(current.secrets)),
        }
        record(conn, actor, "edit", "credential", credential_id, now=now, details=details)
    return get_credential(conn, actor, credential_id)


def delete_credential(
    conn: Connection, actor: Principal, credential_id: int, *, now: datetime
) -> None:
    current = get_credential(conn, actor, credential_id)
    store.delete_credential(conn, actor.organization_id, credential_id)
    record(
        conn,
        actor,
        "delete",
        "credential",
        credential_id,
        now=now,
        details={"name": current.name, "kind": current.kind.value},
    )


# Using the secrets


def open_fields(credential: Credential, box: SecretBox) -> dict[str, str]:
    """The credential's fields with its secrets opened, for a connector."""
    opened = dict(credential.fields)
    for name, stored in credential.secrets.items():
        opened[name] = _open(credential, name, stored, box)
    return opened


def _open(credential: Credential, name: str, stored: StoredSecret, box: SecretBox) -> str:
    """One secret in the clear; one sealed with another key is refused in words that say
    what to do."""
    try:
        return box.open(stored.sealed, aad=associated_data(credential.id, name))
    except WrongSecretKey as exc:
        raise CredentialRefused(
            Reason.WRONG_KEY,
            "wrong_secret_key",
            f"credential {credential.name!r} was encrypted with key {exc.sealed_with}; "
            f"this console has key {exc.holding}: set SURVEYOR_SECRET_KEY (or "
            "SURVEYOR_SECRET_KEY_FILE) to the key the other consoles use, or run "
            "`surveyor secrets rotate` where that key is",
            {"credential_id": credential.id, "key_id": exc.sealed_with},
        ) from exc
    except SecretDamaged as exc:
        raise CredentialRefused(
            Reason.WRONG_KEY,
            "damaged_secret",
            f"the {name} of credential {credential.name!r} does not decrypt: it was "
            "altered in the database; set it again",
            {"credential_id": credential.id, "field": name},
        ) from exc


def redact(message: str, opened: Mapping[str, str], kind: CredentialKind) -> str:
    """`message` with any secret of the credential replaced, should a connector ever say
    one."""
    for name in secret_fields(kind):
        value = opened.get(name, "")
        # A secret of one or two characters found in a message is a coincidence, not a leak.
        if len(value) >= MIN_REDACTED_LENGTH:
            message = message.replace(value, REDACTED)
    return message


def credential_for_use(
    conn: Connection,
    organization_id: int,
    box: SecretBox,
    credential_id: int,
    *,
    site_id: int | None,
    now: datetime,
) -> tuple[Credential, dict[str, str]]:
    """The credential and its opened fields, for a connector run on `site_id` (None: no
    site check); marks it used. Refuses a credential the site may not use."""
    found = store.get_credential(conn, organization_id, credential_id)
    credential = CredentialRefused.require_found(found, credential_id)
    if site_id is not None and not credential.usable_on(site_id):
        raise CredentialRefused(
            Reason.INVALID,
            "invalid_credential",
            f"credential {credential.name!r} is not for site {site_id}",
            {"field": "credential_id"},
        )
    opened = open_fields(credential, box)
    store.mark_used(conn, organization_id, credential_id, now=now)
    return credential, opened


@dataclass(frozen=True)
class Verification:
    """What trying a credential against a server found: `ok`, and in words what worked or
    what did not."""

    ok: bool
    message: str
    server: str


def check_server(server: str) -> str:
    server = server.strip()
    if not server or len(server) > MAX_SERVER_LENGTH or any(c.isspace() for c in server):
        raise CredentialRefused(
            Reason.INVALID,
            "invalid_server",
            f"server is host[:port], without spaces, at most {MAX_SERVER_LENGTH} characters",
            {"field": "server"},
        )
    return server


def verify_credential(
    db: Database,
    actor: Principal,
    box: SecretBox,
    credential_id: int,
    *,
    server: str,
    options: Mapping[str, Any],
    now: datetime,
    timeout: float = 10.0,
) -> Verification:
    """Try the credential against `server` with the connector of its kind. A failure the
    connector names is a Verification with `ok` false (not a refusal); a missing
    credential, a bad server or option, or a key that does not open it is refused."""
    server = check_server(server)
    with db.read() as conn:
        credential = get_credential(conn, actor, credential_id)
    opened = open_fields(credential, box)
    try:
        connector = connector_named(credential.kind.value)
    except ConnectorError as exc:
        return Verification(False, str(exc), server)
    try:
        checked = connector.check_options(options)
    except ValueError as exc:
        raise CredentialRefused(
            Reason.INVALID, "invalid_options", redact(str(exc), opened, credential.kind)
        ) from exc
    config = ConnectorConfig(server=server, options=checked, credential=opened, timeout=timeout)
    try:
        outcome = Verification(True, connector.verify(config), server)
    except ConnectorError as exc:
        outcome = Verification(False, str(exc), server)
    except Exception as exc:  # a connector's bug: its message might hold anything
        log.warning(
            "the %s connector failed verifying credential %d: %s",
            credential.kind.value,
            credential.id,
            type(exc).__name__,
        )
        outcome = Verification(
            False, f"verifying against {server} failed unexpectedly ({type(exc).__name__})", server
        )
    outcome = Verification(outcome.ok, redact(outcome.message, opened, credential.kind), server)
    with db.write() as conn:
        store.mark_used(conn, actor.organization_id, credential_id, now=now)
        record(
            conn,
            actor,
            "verify",
            "credential",
            credential_id,
            now=now,
            details={"server": server, "ok": outcome.ok},
        )
    return outcome


# Rotation


@dataclass(frozen=True)
class Rotation:
    """What `rotate_secrets` did."""

    credentials: int
    secrets: int
    #: Secrets that were already sealed with the new key (a rotation run again).
    already: int


def rotate_secrets(conn: Connection, old: SecretBox, new: SecretBox) -> Rotation:
    """Re-seal every secret of every organization from `old` to `new`, in the caller's
    transaction (all or nothing). A secret sealed with neither key is refused, naming its
    credential."""
    credentials = secrets = already = 0
    for credential in store.every_credential(conn):
        resealed: dict[str, StoredSecret] = {}
        for name, stored in credential.secrets.items():
            if sealed_key_id(stored.sealed) == new.key_id:
                already += 1
                resealed[name] = stored
                continue
            plaintext = _open(credential, name, stored, old)
            aad = associated_data(credential.id, name)
            resealed[name] = StoredSecret(new.seal(plaintext, aad=aad), stored.set_at)
            secrets += 1
        if resealed != dict(credential.secrets):
            store.replace_secrets(conn, credential.id, resealed)
            credentials += 1
    return Rotation(credentials, secrets, already)


def key_ids_in_use(conn: Connection) -> dict[str, int]:
    """How many secrets each key sealed, over every organization."""
    counts: dict[str, int] = {}
    for credential in store.every_credential(conn):
        for stored in credential.secrets.values():
            key_id = sealed_key_id(stored.sealed)
            counts[key_id] = counts.get(key_id, 0) + 1
    return counts


class CredentialUnusable(Exception):
    """A connector run's credential cannot be used: gone, of another kind, not for the
    task's site, or sealed with another key. The message says which, never the secret."""


def open_for_run(
    conn: Connection,
    organization_id: int,
    box: SecretBox,
    credential_id: int,
    *,
    kind: str,
    site_id: int | None,
    now: datetime,
) -> dict[str, str]:
    """The opened fields of the credential a connector run names, for this run only (marks
    it used). Raises CredentialUnusable saying what is wrong."""
    try:
        credential, opened = credential_for_use(
            conn, organization_id, box, credential_id, site_id=site_id, now=now
        )
    except CredentialRefused as refused:
        raise CredentialUnusable(refused.message) from None
    if credential.kind.value != kind:
        raise CredentialUnusable(
            f"credential {credential.name!r} is a {credential.kind.value} credential; "
            f"this connector needs a {kind} one"
        )
    return opened


def check_usable(
    conn: Connection,
    organization_id: int,
    credential_id: int,
    *,
    kind: str,
    site_id: int | None,
) -> None:
    """Refuse a connector task naming a credential that does not exist, is of another kind
    or is not for its site (raises CredentialUnusable), without opening any secret."""
    credential = store.get_credential(conn, organization_id, credential_id)
    if credential is None:
        raise CredentialUnusable(f"credential {credential_id} does not exist")
    if credential.kind.value != kind:
        raise CredentialUnusable(
            f"credential {credential.name!r} is a {credential.kind.value} credential; "
            f"this connector needs a {kind} one"
        )
    if site_id is not None and not credential.usable_on(site_id):
        raise CredentialUnusable(f"credential {credential.name!r} is not for this task's site")
