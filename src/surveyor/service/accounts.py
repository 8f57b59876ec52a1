"""Who may change accounts, memberships and invitations (SPEC §13).

Accounts are global; memberships are per organization. An organization admin manages the
organization's memberships and invitations: an e-mail without an account gets a new account
that is a member at once, while an existing account is only invited and joins when it
accepts. An account's own fields (name, e-mail, password, active flag) are changed only by
the account itself, which confirms e-mail, password and active-flag changes with its current
password, or by a superuser. Being a superuser gives no role in an organization: that takes a
membership like anyone else's.

A password change revokes the account's other sessions and API tokens (the calling one stays
valid); a superuser's reset, or a deactivation, revokes all of them.

Audit trail: every action here records itself. Membership, invitation, API token and
organization changes are recorded in their organization. An account change is recorded once
with no organization (the global trail) and once in every organization the account belongs
to, so each organization sees what happened to its members.

The functions take an open write connection, so each action is one transaction; the caller
forgets remembered principals (`console/principals.py`) after it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from surveyor.security.passwords import generate_password, verify_password
from surveyor.service.audit import record
from surveyor.store import accounts, retention
from surveyor.store.accounts import Invitation, Membership, Principal, Role
from surveyor.store.records import Conflict, audit


class Refusal(StrEnum):
    """Why an account action is refused; the API answers with the matching status."""

    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "bad_request"
    REAUTHENTICATE = "reauthentication_required"
    RATE_LIMITED = "rate_limited"


class AccountRefused(Exception):
    def __init__(
        self, refusal: Refusal, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message
        self.details = dict(details or {})


class Outcome(StrEnum):
    """What adding someone to an organization did."""

    CREATED = "created"  # a new account, a member at once
    INVITED = "invited"  # an existing account, a member once it accepts
    JOINED = "joined"  # the caller's own account, a member at once


@dataclass(frozen=True)
class MemberAdded:
    outcome: Outcome
    user_id: int
    invitation: Invitation | None = None
    generated_password: str | None = None


@dataclass(frozen=True)
class AccountChanges:
    """Fields of an account to change; None leaves a field as it is."""

    name: str | None = None
    email: str | None = None
    password: str | None = None
    is_active: bool | None = None

    def names(self) -> list[str]:
        return sorted(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def needs_confirmation(self) -> bool:
        """Whether the account itself must confirm with its current password."""
        return any(getattr(self, name) is not None for name in CONFIRMED_FIELDS)


#: The account's own fields that its owner confirms with the current password.
CONFIRMED_FIELDS = ("email", "password", "is_active")
_OTHERS_ACCOUNT = (
    "an organization admin manages memberships and roles, not accounts: only the account "
    "itself or a superuser changes its name, e-mail, password or active flag"
)


def _not_found(kind: str, object_id: int) -> AccountRefused:
    return AccountRefused(Refusal.NOT_FOUND, f"{kind} {object_id} does not exist")


def _account(conn: Connection, user_id: int) -> dict[str, Any]:
    account = accounts.get_user(conn, user_id)
    if account is None:
        raise _not_found("user", user_id)
    return account


def _member_role(conn: Connection, organization_id: int, user_id: int) -> Role:
    role = accounts.membership_role(conn, organization_id, user_id)
    if role is None:
        raise _not_found("user", user_id)
    return role


def add_member(
    conn: Connection,
    actor: Principal,
    organization_id: int,
    *,
    email: str,
    role: Role,
    now: datetime,
    name: str = "",
    password: str | None = None,
) -> MemberAdded:
    """Add `email` to the organization: a new account is created (with `password`, or a
    generated one that is shown once); an existing account is invited, except the caller's
    own, which joins at once."""
    account = accounts.find_user_by_email(conn, email)
    if account is None:
        generated = None if password else generate_password()
        account = accounts.create_user(
            conn, email, password=password or generated, name=name, now=now
        )
        accounts.set_membership(conn, organization_id, account["id"], role, now=now)
        record(
            conn,
            actor,
            "create",
            "member",
            account["id"],
            now=now,
            details={"email": account["email"], "role": role.value, "new_account": True},
            organization_id=organization_id,
        )
        return MemberAdded(Outcome.CREATED, account["id"], generated_password=generated)
    if password is not None:
        raise AccountRefused(
            Refusal.CONFLICT,
            f"an account with the email '{account['email']}' exists and keeps its own "
            "password; invite it without one",
        )
    if accounts.membership_role(conn, organization_id, account["id"]) is not None:
        raise AccountRefused(Refusal.CONFLICT, f"{account['email']} is already a member")
    if account["id"] == actor.user_id:
        accounts.set_membership(conn, organization_id, account["id"], role, now=now)
        record(
            conn,
            actor,
            "join",
            "member",
            account["id"],
            now=now,
            details={"role": role.value},
            organization_id=organization_id,
        )
        return MemberAdded(Outcome.JOINED, account["id"])
    try:
        invitation = accounts.create_invitation(
            conn, organization_id, account["id"], role, invited_by=actor.email, now=now
        )
    except Conflict as exc:
        raise AccountRefused(
            Refusal.CONFLICT, f"{account['email']} already has a pending invitation"
        ) from exc
    record(
        conn,
        actor,
        "invite",
        "invitation",
        invitation.id,
        now=now,
        details={"email": account["email"], "user_id": account["id"], "role": role.value},
        organization_id=organization_id,
    )
    return MemberAdded(Outcome.INVITED, account["id"], invitation=invitation)


def update_member(
    conn: Connection,
    actor: Principal,
    organization_id: int,
    user_id: int,
    *,
    now: datetime,
    role: Role | None = None,
    changes: AccountChanges | None = None,
    current_password: str | None = None,
) -> int:
    """Change a member's role in the organization (an admin's business) and, when asked,
    their account (the account's or a superuser's business); return the revoked tokens."""
    current_role = _member_role(conn, organization_id, user_id)
    revoked = 0
    if changes is not None and changes.names():
        revoked = change_account(
            conn, actor, user_id, changes, now=now, current_password=current_password
        )
    if role is not None and role != current_role:
        if user_id == actor.user_id and not role.allows(Role.ADMIN):
            raise AccountRefused(Refusal.CONFLICT, "you cannot demote yourself; ask another admin")
        accounts.set_membership(conn, organization_id, user_id, role, now=now)
        record(
            conn,
            actor,
            "edit",
            "member",
            user_id,
            now=now,
            details={"role": {"from": current_role.value, "to": role.value}},
            organization_id=organization_id,
        )
    return revoked


def remove_member(
    conn: Connection, actor: Principal, organization_id: int, user_id: int, *, now: datetime
) -> int:
    """Take an account out of the organization; its sessions and tokens there are revoked
    (the account and its history stay). Returns the revoked tokens."""
    if user_id == actor.user_id:
        raise AccountRefused(Refusal.CONFLICT, "you cannot remove yourself; ask another admin")
    if not accounts.remove_membership(conn, organization_id, user_id):
        raise _not_found("user", user_id)
    revoked = accounts.revoke_tokens(conn, user_id, organization_id=organization_id)
    record(
        conn,
        actor,
        "delete",
        "member",
        user_id,
        now=now,
        details={"revoked_tokens": revoked},
        organization_id=organization_id,
    )
    return revoked


def pending_invitations(conn: Connection, user_id: int, *, now: datetime) -> list[Invitation]:
    """The invitations an account may still accept."""
    return [
        invitation
        for invitation in accounts.list_invitations(conn, user_id=user_id)
        if not invitation.expired(now)
    ]


def _invitation_to(conn: Connection, actor: Principal, invitation_id: int) -> Invitation:
    invitation = accounts.get_invitation(conn, invitation_id)
    if invitation is None or invitation.user_id != actor.user_id:
        raise _not_found("invitation", invitation_id)
    return invitation


def accept_invitation(
    conn: Connection, actor: Principal, invitation_id: int, *, now: datetime
) -> Membership:
    """The invited account joins the organization with the invitation's role."""
    invitation = _invitation_to(conn, actor, invitation_id)
    if invitation.expired(now):
        raise AccountRefused(
            Refusal.CONFLICT,
            f"the invitation expired on {invitation.expires_at:%Y-%m-%d}; ask an admin of "
            f"{invitation.organization_name} to invite you again",
        )
    accounts.delete_invitation(conn, invitation.id)
    if accounts.membership_role(conn, invitation.organization_id, actor.user_id) is None:
        accounts.set_membership(
            conn, invitation.organization_id, actor.user_id, invitation.role, now=now
        )
    record(
        conn,
        actor,
        "accept",
        "invitation",
        invitation.id,
        now=now,
        details={"user_id": actor.user_id, "role": invitation.role.value},
        organization_id=invitation.organization_id,
    )
    memberships = accounts.list_memberships(conn, [actor.user_id])[actor.user_id]
    return next(m for m in memberships if m.organization_id == invitation.organization_id)


def decline_invitation(
    conn: Connection, actor: Principal, invitation_id: int, *, now: datetime
) -> None:
    invitation = _invitation_to(conn, actor, invitation_id)
    accounts.delete_invitation(conn, invitation.id)
    record(
        conn,
        actor,
        "decline",
        "invitation",
        invitation.id,
        now=now,
        details={"user_id": actor.user_id},
        organization_id=invitation.organization_id,
    )


def revoke_invitation(
    conn: Connection, actor: Principal, organization_id: int, invitation_id: int, *, now: datetime
) -> None:
    """Withdraw an invitation of the organization before it is accepted."""
    invitation = accounts.get_invitation(conn, invitation_id)
    if invitation is None or invitation.organization_id != organization_id:
        raise _not_found("invitation", invitation_id)
    accounts.delete_invitation(conn, invitation.id)
    record(
        conn,
        actor,
        "revoke",
        "invitation",
        invitation.id,
        now=now,
        details={"email": invitation.email, "user_id": invitation.user_id},
        organization_id=organization_id,
    )


def confirm_password(account: Mapping[str, Any], current_password: str | None) -> None:
    """Re-authentication: the account's current password, or a refusal saying what is wrong."""
    if not current_password:
        raise AccountRefused(
            Refusal.REAUTHENTICATE,
            "confirm this change with your current password (current_password)",
        )
    if not verify_password(account["password_hash"], current_password):
        raise AccountRefused(Refusal.REAUTHENTICATE, "the current password is wrong")


def change_account(
    conn: Connection,
    actor: Principal,
    account_id: int,
    changes: AccountChanges,
    *,
    now: datetime,
    current_password: str | None = None,
) -> int:
    """Change an account's own fields; return how many of its tokens were revoked."""
    account = _account(conn, account_id)
    is_self = account_id == actor.user_id
    if not is_self and not actor.is_superuser:
        raise AccountRefused(Refusal.FORBIDDEN, _OTHERS_ACCOUNT, {"fields": changes.names()})
    if is_self and changes.is_active is False:
        raise AccountRefused(Refusal.CONFLICT, "you cannot deactivate yourself; ask a superuser")
    if is_self and changes.needs_confirmation():
        confirm_password(account, current_password)
    if (
        is_self
        and changes.password is not None
        and verify_password(account["password_hash"], changes.password)
    ):
        raise AccountRefused(Refusal.INVALID, "the new password is the same as the current one")
    try:
        accounts.update_account(
            conn, account_id, name=changes.name, email=changes.email, is_active=changes.is_active
        )
    except Conflict as exc:
        raise AccountRefused(Refusal.CONFLICT, str(exc)) from exc
    revoked = 0
    if changes.password is not None:
        accounts.set_password(conn, account_id, changes.password)
        keep = actor.token_id if is_self else None
        revoked = accounts.revoke_tokens(conn, account_id, keep_token_id=keep)
    if changes.is_active is False:
        revoked += accounts.revoke_tokens(conn, account_id)
    details: dict[str, Any] = {
        "email": account["email"],
        "fields": changes.names(),
        "by": "self" if is_self else "superuser",
        "revoked_tokens": revoked,
    }
    if changes.email is not None and changes.email.lower() != account["email"]:
        details["new_email"] = changes.email.lower()
    if changes.is_active is not None:
        details["is_active"] = changes.is_active
    _audit_account(conn, actor, account_id, "edit", details, now)
    return revoked


def _audit_account(
    conn: Connection,
    actor: Principal,
    account_id: int,
    action: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """One entry in the global trail, and one in each organization the account belongs to."""
    organizations = [
        m.organization_id for m in accounts.list_memberships(conn, [account_id])[account_id]
    ]
    for organization_id in (None, *organizations):
        audit(
            conn,
            organization_id=organization_id,
            actor=actor.email,
            action=action,
            object_type="account",
            object_id=account_id,
            details=details,
            at=now,
        )


def create_organization(
    conn: Connection,
    actor: Principal,
    *,
    name: str,
    scope_cap: int,
    probe_cap: int,
    join: bool,
    admin_email: str | None,
    now: datetime,
) -> tuple[dict[str, Any], list[MemberAdded]]:
    """A superuser creates an organization and says who runs it: the superuser joins as its
    admin (`join`), and/or `admin_email` is added as its first admin (a new account at once,
    an existing one by invitation)."""
    if admin_email is not None and admin_email.lower() == actor.email.lower():
        join, admin_email = True, None
    if not join and admin_email is None:
        raise AccountRefused(
            Refusal.INVALID,
            "say who runs the new organization: join it yourself (join: true) or name its "
            "first admin (admin_email)",
        )
    organization = accounts.create_organization(
        conn, name, scope_cap=scope_cap, probe_cap=probe_cap, now=now
    )
    retention.ensure_template(conn, organization["id"], now=now)
    record(
        conn,
        actor,
        "create",
        "organization",
        organization["id"],
        now=now,
        details={"name": name, "join": join, "admin_email": admin_email},
        organization_id=organization["id"],
    )
    emails = ([actor.email] if join else []) + ([admin_email] if admin_email else [])
    added = [
        add_member(conn, actor, organization["id"], email=email, role=Role.ADMIN, now=now)
        for email in emails
    ]
    return organization, added


def create_token(
    conn: Connection, actor: Principal, *, name: str, expires_in_days: int | None, now: datetime
) -> tuple[dict[str, Any], str]:
    """An API token of the caller's, with the caller's role in its organization; returns its
    row and its secret, which is shown once and never stored."""
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    row, plaintext = accounts.create_token(
        conn,
        user_id=actor.user_id,
        organization_id=actor.organization_id,
        name=name,
        expires_at=expires,
        now=now,
    )
    record(conn, actor, "create", "token", row["id"], now=now, details={"name": name})
    return row, plaintext


def delete_token(conn: Connection, actor: Principal, token_id: int, *, now: datetime) -> None:
    """Delete one of the caller's API tokens in this organization (sessions end by logging
    out, not here)."""
    deleted = accounts.delete_token(
        conn, actor.user_id, token_id, organization_id=actor.organization_id, kind="api"
    )
    if deleted is None:
        raise _not_found("token", token_id)
    record(conn, actor, "delete", "token", token_id, now=now, details={"name": deleted["name"]})


def update_organization(
    conn: Connection,
    actor: Principal,
    organization_id: int,
    *,
    name: str,
    scope_cap: int,
    probe_cap: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A superuser renames an organization or changes its caps (`probe_cap` None: unchanged);
    returns the organization as it is now."""
    if accounts.get_organization(conn, organization_id) is None:
        raise _not_found("organization", organization_id)
    accounts.update_organization(
        conn, organization_id, name=name, scope_cap=scope_cap, probe_cap=probe_cap
    )
    record(
        conn,
        actor,
        "edit",
        "organization",
        organization_id,
        now=now,
        organization_id=organization_id,
    )
    organization = accounts.get_organization(conn, organization_id)
    assert organization is not None
    return organization
