"""Organizations, users, memberships and API tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.rows import from_columns
from surveyor.core.scan_params import DEFAULT_PROBE_CAP
from surveyor.security.passwords import hash_password
from surveyor.security.tokens import IssuedToken, issue_token, secret_matches, split_token
from surveyor.store.records import Conflict
from surveyor.store.schema import (
    api_tokens,
    invitations,
    memberships,
    organizations,
    sites,
    users,
)

DEFAULT_SCOPE_CAP = 65_536
SESSION_LIFETIME = timedelta(hours=12)
#: An invitation not accepted within this time can no longer be accepted.
INVITATION_LIFETIME = timedelta(days=14)
#: Refresh `last_used_at` at most this often, so that reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling, in which organization, with which role."""

    user_id: int
    email: str
    organization_id: int
    role: Role
    is_superuser: bool
    token_id: int | None = None


def create_organization(
    conn: Connection,
    name: str,
    *,
    scope_cap: int = DEFAULT_SCOPE_CAP,
    probe_cap: int = DEFAULT_PROBE_CAP,
    now: datetime | None = None,
) -> dict[str, Any]:
    created_at = now or SYSTEM_CLOCK.now()
    try:
        with conn.begin_nested():
            org_id = conn.execute(
                insert(organizations)
                .values(name=name, scope_cap=scope_cap, probe_cap=probe_cap, created_at=created_at)
                .returning(organizations.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise Conflict(f"an organization named '{name}' exists") from exc
    return get_organization(conn, org_id) or {}


def update_organization(
    conn: Connection, org_id: int, *, name: str, scope_cap: int, probe_cap: int | None = None
) -> None:
    """Rename an organization and set its caps (`probe_cap` None: unchanged)."""
    values: dict[str, Any] = {"name": name, "scope_cap": scope_cap}
    if probe_cap is not None:
        values["probe_cap"] = probe_cap
    try:
        with conn.begin_nested():
            conn.execute(update(organizations).where(organizations.c.id == org_id).values(**values))
    except IntegrityError as exc:
        raise Conflict(f"an organization named '{name}' exists") from exc


def get_organization(conn: Connection, org_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(organizations).where(organizations.c.id == org_id)).mappings().first()
    return dict(row) if row else None


def find_organization(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(organizations).where(organizations.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_organizations(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(organizations).order_by(organizations.c.id)).mappings().all()
    return [dict(row) for row in rows]


def create_user(
    conn: Connection,
    email: str,
    *,
    password: str | None,
    name: str = "",
    is_superuser: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    try:
        with conn.begin_nested():
            user_id = conn.execute(
                insert(users)
                .values(
                    email=email.lower(),
                    name=name,
                    password_hash=hash_password(password) if password else None,
                    is_superuser=is_superuser,
                    is_active=True,
                    created_at=now or SYSTEM_CLOCK.now(),
                )
                .returning(users.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise Conflict(f"a user with the email '{email}' exists") from exc
    return get_user(conn, user_id) or {}


def get_user(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def find_user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.email == email.lower())).mappings().first()
    return dict(row) if row else None


def note_login(conn: Connection, user_id: int, *, at: datetime) -> None:
    """Remember when the account last logged in (the members list shows it)."""
    conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=at))


def set_password(conn: Connection, user_id: int, password: str) -> None:
    conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=hash_password(password))
    )


def update_account(
    conn: Connection,
    user_id: int,
    *,
    name: str | None = None,
    email: str | None = None,
    is_active: bool | None = None,
) -> None:
    """Change an account's own fields (None leaves a field as it is)."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if email is not None:
        values["email"] = email.lower()
    if is_active is not None:
        values["is_active"] = is_active
    if not values:
        return
    try:
        with conn.begin_nested():
            conn.execute(update(users).where(users.c.id == user_id).values(**values))
    except IntegrityError as exc:
        raise Conflict(f"another account has the email '{email}'") from exc


def list_accounts(conn: Connection, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Every account, whatever its organizations (for superusers)."""
    rows = conn.execute(select(users).order_by(users.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def set_membership(
    conn: Connection,
    organization_id: int,
    user_id: int,
    role: Role,
    *,
    now: datetime | None = None,
) -> None:
    existing = membership_role(conn, organization_id, user_id)
    if existing is None:
        conn.execute(
            insert(memberships).values(
                organization_id=organization_id,
                user_id=user_id,
                role=role.value,
                created_at=now or SYSTEM_CLOCK.now(),
            )
        )
    else:
        conn.execute(
            update(memberships)
            .where(
                memberships.c.organization_id == organization_id, memberships.c.user_id == user_id
            )
            .values(role=role.value)
        )


def membership_role(conn: Connection, organization_id: int, user_id: int) -> Role | None:
    role = conn.execute(
        select(memberships.c.role).where(
            memberships.c.organization_id == organization_id, memberships.c.user_id == user_id
        )
    ).scalar_one_or_none()
    return Role(role) if role is not None else None


def remove_membership(conn: Connection, organization_id: int, user_id: int) -> bool:
    result = conn.execute(
        delete(memberships).where(
            memberships.c.organization_id == organization_id, memberships.c.user_id == user_id
        )
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class Membership:
    """An account's place in one organization."""

    organization_id: int
    organization_name: str
    role: Role
    created_at: datetime


def list_memberships(conn: Connection, user_ids: list[int]) -> dict[int, list[Membership]]:
    """The organizations of each account, by account id, in organization order."""
    found: dict[int, list[Membership]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return found
    rows = conn.execute(
        select(
            memberships.c.user_id,
            memberships.c.organization_id,
            organizations.c.name,
            memberships.c.role,
            memberships.c.created_at,
        )
        .join(organizations, organizations.c.id == memberships.c.organization_id)
        .where(memberships.c.user_id.in_(user_ids))
        .order_by(memberships.c.user_id, memberships.c.organization_id)
    ).all()
    for user_id, organization_id, name, role, created_at in rows:
        found[user_id].append(Membership(organization_id, name, Role(role), created_at))
    return found


def _lowest(conn: Connection, column: Column[int], condition: ColumnElement[bool]) -> int | None:
    """The lowest value of `column` among the rows that meet `condition` (None: no row)."""
    return conn.execute(
        select(column).where(condition).order_by(column).limit(1)
    ).scalar_one_or_none()


def first_membership(conn: Connection, user_id: int) -> int | None:
    return _lowest(conn, memberships.c.organization_id, memberships.c.user_id == user_id)


def list_members(
    conn: Connection, organization_id: int, *, limit: int = 100, after_id: int | None = None
) -> list[dict[str, Any]]:
    query = (
        select(
            users.c.id,
            users.c.email,
            users.c.name,
            users.c.is_superuser,
            users.c.is_active,
            users.c.created_at,
            users.c.last_login_at,
            memberships.c.role,
        )
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.organization_id == organization_id)
    )
    if after_id is not None:
        query = query.where(users.c.id > after_id)
    rows = conn.execute(query.order_by(users.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def get_member(conn: Connection, organization_id: int, user_id: int) -> dict[str, Any] | None:
    rows = [
        m
        for m in list_members(conn, organization_id, after_id=user_id - 1, limit=1)
        if m["id"] == user_id
    ]
    return rows[0] if rows else None


@dataclass(frozen=True)
class Invitation:
    """An existing account asked to join an organization; it joins only if it accepts."""

    id: int
    organization_id: int
    organization_name: str
    user_id: int
    email: str
    role: Role
    invited_by: str
    created_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


def _invitation_query() -> Any:
    return select(
        invitations,
        organizations.c.name.label("organization_name"),
        users.c.email,
    ).select_from(
        invitations.join(organizations, organizations.c.id == invitations.c.organization_id).join(
            users, users.c.id == invitations.c.user_id
        )
    )


def _invitation(row: Any) -> Invitation:
    return from_columns(Invitation, row)


def create_invitation(
    conn: Connection,
    organization_id: int,
    user_id: int,
    role: Role,
    *,
    invited_by: str,
    now: datetime | None = None,
) -> Invitation:
    """Invite an account; an expired invitation to the same organization is replaced, a
    pending one is a conflict."""
    now = now or SYSTEM_CLOCK.now()
    conn.execute(
        delete(invitations).where(
            invitations.c.organization_id == organization_id,
            invitations.c.user_id == user_id,
            invitations.c.expires_at <= now,
        )
    )
    try:
        with conn.begin_nested():
            invitation_id = conn.execute(
                insert(invitations)
                .values(
                    organization_id=organization_id,
                    user_id=user_id,
                    role=role.value,
                    invited_by=invited_by,
                    created_at=now,
                    expires_at=now + INVITATION_LIFETIME,
                )
                .returning(invitations.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise Conflict("that account already has a pending invitation") from exc
    invitation = get_invitation(conn, invitation_id)
    assert invitation is not None
    return invitation


def get_invitation(conn: Connection, invitation_id: int) -> Invitation | None:
    row = (
        conn.execute(_invitation_query().where(invitations.c.id == invitation_id))
        .mappings()
        .first()
    )
    return _invitation(row) if row else None


def list_invitations(
    conn: Connection, *, organization_id: int | None = None, user_id: int | None = None
) -> list[Invitation]:
    """The invitations of an organization, or those addressed to an account, oldest first."""
    query = _invitation_query()
    if organization_id is not None:
        query = query.where(invitations.c.organization_id == organization_id)
    if user_id is not None:
        query = query.where(invitations.c.user_id == user_id)
    rows = conn.execute(query.order_by(invitations.c.id).limit(1000)).mappings().all()
    return [_invitation(row) for row in rows]


def delete_invitation(conn: Connection, invitation_id: int) -> bool:
    result = conn.execute(delete(invitations).where(invitations.c.id == invitation_id))
    return result.rowcount == 1


def create_token(
    conn: Connection,
    *,
    user_id: int,
    organization_id: int,
    name: str,
    kind: str = "api",
    expires_at: datetime | None = None,
    issued: IssuedToken | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a token; return its row and the plaintext, which is never stored."""
    values = {
        "user_id": user_id,
        "organization_id": organization_id,
        "name": name,
        "kind": kind,
        "created_at": now or SYSTEM_CLOCK.now(),
        "expires_at": expires_at,
    }
    return insert_issued(conn, api_tokens, issued or issue_token(), values)


def insert_issued(
    conn: Connection, table: Table, issued: IssuedToken, values: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """Add a row of `table` (an API or enrollment token) holding the `lookup` and
    `secret_hash` of the token `issued` for it; the row, and the plaintext, which is never
    stored."""
    row_id = conn.execute(
        insert(table)
        .values(**values, lookup=issued.lookup, secret_hash=issued.secret_hash)
        .returning(table.c.id)
    ).scalar_one()
    row = conn.execute(select(table).where(table.c.id == row_id)).mappings().one()
    return dict(row), issued.plaintext


def list_tokens(conn: Connection, user_id: int, organization_id: int) -> list[dict[str, Any]]:
    rows = (
        conn.execute(
            select(api_tokens)
            .where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.organization_id == organization_id,
                api_tokens.c.kind == "api",
            )
            .order_by(api_tokens.c.id)
        )
        .mappings()
        .all()
    )
    return [dict(row) for row in rows]


def delete_token(
    conn: Connection,
    user_id: int,
    token_id: int,
    *,
    organization_id: int | None = None,
    kind: str | None = None,
) -> dict[str, Any] | None:
    """Delete one of an account's tokens, only in `organization_id` and of `kind` when they
    are given; the deleted row, or None when there is no such token."""
    query = select(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    if organization_id is not None:
        query = query.where(api_tokens.c.organization_id == organization_id)
    if kind is not None:
        query = query.where(api_tokens.c.kind == kind)
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id))
    return dict(row)


def delete_session(conn: Connection, user_id: int, token_id: int) -> bool:
    """End one of the account's sessions (a signed-in browser or CLI login)."""
    result = conn.execute(
        delete(api_tokens).where(
            api_tokens.c.id == token_id,
            api_tokens.c.user_id == user_id,
            api_tokens.c.kind == "session",
        )
    )
    return result.rowcount == 1


def revoke_tokens(
    conn: Connection,
    user_id: int,
    *,
    organization_id: int | None = None,
    keep_token_id: int | None = None,
) -> int:
    """Delete an account's sessions and API tokens (in one organization, or everywhere),
    except `keep_token_id`; return how many were revoked."""
    query = delete(api_tokens).where(api_tokens.c.user_id == user_id)
    if organization_id is not None:
        query = query.where(api_tokens.c.organization_id == organization_id)
    if keep_token_id is not None:
        query = query.where(api_tokens.c.id != keep_token_id)
    return int(conn.execute(query).rowcount)


def resolve_token(
    conn: Connection, plaintext: str, *, now: datetime | None = None
) -> tuple[Principal, bool] | None:
    """The principal a bearer token stands for (and whether last_used_at is due a refresh)."""
    parts = split_token(plaintext)
    if parts is None:
        return None
    lookup, secret = parts
    row = (
        conn.execute(
            select(
                api_tokens,
                users.c.email,
                users.c.is_superuser,
                users.c.is_active,
                memberships.c.role,
            )
            .join(users, users.c.id == api_tokens.c.user_id)
            .join(
                memberships,
                (memberships.c.user_id == api_tokens.c.user_id)
                & (memberships.c.organization_id == api_tokens.c.organization_id),
            )
            .where(api_tokens.c.lookup == lookup)
        )
        .mappings()
        .first()
    )
    if row is None or not secret_matches(secret, row["secret_hash"]) or not row["is_active"]:
        return None
    now = now or SYSTEM_CLOCK.now()
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    principal = Principal(
        user_id=row["user_id"],
        email=row["email"],
        organization_id=row["organization_id"],
        role=Role(row["role"]),
        is_superuser=bool(row["is_superuser"]),
        token_id=row["id"],
    )
    stale = row["last_used_at"] is None or now - row["last_used_at"] > LAST_USED_RESOLUTION
    return principal, stale


def touch_token(conn: Connection, token_id: int, *, now: datetime | None = None) -> None:
    used_at = now or SYSTEM_CLOCK.now()
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=used_at))


def organization_scope_cap(conn: Connection, organization_id: int) -> int:
    cap = conn.execute(
        select(organizations.c.scope_cap).where(organizations.c.id == organization_id)
    ).scalar_one_or_none()
    return int(cap) if cap is not None else DEFAULT_SCOPE_CAP


def organization_probe_cap(conn: Connection, organization_id: int) -> int:
    cap = conn.execute(
        select(organizations.c.probe_cap).where(organizations.c.id == organization_id)
    ).scalar_one_or_none()
    return int(cap) if cap is not None else DEFAULT_PROBE_CAP


def default_site_id(conn: Connection, organization_id: int) -> int | None:
    return _lowest(conn, sites.c.id, sites.c.organization_id == organization_id)
