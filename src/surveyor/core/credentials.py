"""Credentials: the kinds (SPEC §9), their fields, which fields are secret, and what a
complete credential of each kind holds. Pure rules; the store keeps the rows, the service
encrypts the secret fields.

The field names are those the connectors read (`connectors/base.py`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from surveyor.core.field_error import FieldError
from surveyor.core.rows import Row, from_columns
from surveyor.core.sealed import StoredSecret


class CredentialKind(StrEnum):
    LDAP = "ldap"
    SNMP = "snmp"
    DNS = "dns"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    secret: bool = False
    #: The values it may take; empty: any text.
    choices: tuple[str, ...] = ()


SNMP_VERSIONS = ("2c", "3")
SNMP_AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
SNMP_PRIV_PROTOCOLS = ("DES", "3DES", "AES", "AES192", "AES256")
TSIG_ALGORITHMS = (
    "hmac-md5",
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha256",
    "hmac-sha384",
    "hmac-sha512",
)
#: SNMPv3 (RFC 3414) refuses shorter authentication and privacy passphrases.
SNMP_MIN_KEY_LENGTH = 8
MAX_FIELD_LENGTH = 4096

FIELDS: dict[CredentialKind, tuple[FieldSpec, ...]] = {
    CredentialKind.LDAP: (
        FieldSpec("bind_dn", "Bind DN"),
        FieldSpec("password", "Password", secret=True),
    ),
    CredentialKind.SNMP: (
        FieldSpec("version", "SNMP version", choices=SNMP_VERSIONS),
        FieldSpec("community", "Community (v2c)", secret=True),
        FieldSpec("user", "User (v3)"),
        FieldSpec("auth_protocol", "Authentication protocol (v3)", choices=SNMP_AUTH_PROTOCOLS),
        FieldSpec("auth_key", "Authentication key (v3)", secret=True),
        FieldSpec("priv_protocol", "Privacy protocol (v3)", choices=SNMP_PRIV_PROTOCOLS),
        FieldSpec("priv_key", "Privacy key (v3)", secret=True),
    ),
    CredentialKind.DNS: (
        FieldSpec("tsig_name", "TSIG key name"),
        FieldSpec("tsig_algorithm", "TSIG algorithm", choices=TSIG_ALGORITHMS),
        FieldSpec("tsig_secret", "TSIG secret (base64)", secret=True),
    ),
}


def field_specs(kind: CredentialKind) -> tuple[FieldSpec, ...]:
    return FIELDS[kind]


def secret_fields(kind: CredentialKind) -> frozenset[str]:
    return frozenset(spec.name for spec in FIELDS[kind] if spec.secret)


def plain_fields(kind: CredentialKind) -> frozenset[str]:
    return frozenset(spec.name for spec in FIELDS[kind] if not spec.secret)


ALL_SECRET_FIELDS = frozenset(name for kind in CredentialKind for name in secret_fields(kind))


class CredentialInvalid(FieldError):
    """A field is missing, unknown or malformed; `field` names it (never its value)."""


def required_fields(kind: CredentialKind, plain: Mapping[str, str]) -> frozenset[str]:
    """The fields a complete credential of `kind` has, given its plain fields (SNMP's
    version decides which)."""
    match kind:
        case CredentialKind.LDAP:
            return frozenset({"bind_dn", "password"})
        case CredentialKind.SNMP:
            if plain.get("version") == "3":
                return frozenset(
                    {"version", "user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"}
                )
            return frozenset({"version", "community"})
        case CredentialKind.DNS:
            if plain.get("tsig_name"):
                return frozenset({"tsig_name", "tsig_secret"})
            return frozenset()


def check_fields(
    kind: CredentialKind,
    plain: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    secrets_kept: Collection[str] = (),
) -> None:
    """Refuse a credential that is not complete and well-formed: `plain` and `secrets` are
    the fields given, `secrets_kept` the secret fields already stored (an edit keeps them).
    Messages name fields, never their values."""
    known = {spec.name: spec for spec in FIELDS[kind]}
    for name, value in [*plain.items(), *secrets.items()]:
        spec = known.get(name)
        if spec is None:
            raise CredentialInvalid(
                name,
                f"{kind.value.upper()} credentials have no field {name!r}; "
                f"their fields are {', '.join(known)}",
            )
        if (name in secrets) != spec.secret:
            where = "secret" if spec.secret else "plain"
            raise CredentialInvalid(name, f"{name} is a {where} field")
        if len(value) > MAX_FIELD_LENGTH:
            raise CredentialInvalid(name, f"{name} has at most {MAX_FIELD_LENGTH} characters")
        if spec.choices and value and value not in spec.choices:
            raise CredentialInvalid(name, f"{name} is one of {', '.join(spec.choices)}")
    present = {name for name, value in plain.items() if value}
    present |= {name for name, value in secrets.items() if value} | set(secrets_kept)
    missing = [name for name in known if name in required_fields(kind, plain) - present]
    if missing:
        raise CredentialInvalid(missing[0], f"{kind.value.upper()} credentials need {missing[0]}")
    if kind is CredentialKind.SNMP:
        for name in ("auth_key", "priv_key"):
            value = secrets.get(name, "")
            if plain.get("version") == "3" and value and len(value) < SNMP_MIN_KEY_LENGTH:
                raise CredentialInvalid(
                    name, f"{name} has at least {SNMP_MIN_KEY_LENGTH} characters (RFC 3414)"
                )
    if kind is CredentialKind.DNS and secrets.get("tsig_secret"):
        try:
            base64.b64decode(secrets["tsig_secret"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CredentialInvalid("tsig_secret", "tsig_secret is base64 text") from exc


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as the rest of the code sees it: plain fields in the clear, secret
    fields sealed."""

    id: int
    organization_id: int
    name: str
    kind: CredentialKind
    #: The sites whose tasks may use it; empty: every site.
    site_ids: tuple[int, ...]
    fields: Mapping[str, str]
    secrets: Mapping[str, StoredSecret]
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Credential:
        """From the store's row, whose `secrets` column maps each field set to its sealed
        text and the time (RFC 3339) it was set."""
        return from_columns(
            cls,
            row,
            site_ids=tuple(row["site_ids"] or ()),
            fields=dict(row["fields"] or {}),
            secrets={
                name: StoredSecret.from_column(stored)
                for name, stored in (row["secrets"] or {}).items()
            },
        )

    def usable_on(self, site_id: int) -> bool:
        return not self.site_ids or site_id in self.site_ids
