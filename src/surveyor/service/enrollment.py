"""Enrollment tokens: what admins create, list and revoke so explorers can enroll (SPEC §6).

A token is shown once, when it is created; the console keeps only its digest. It expires
after `DEFAULT_EXPIRY_DAYS` unless asked otherwise (None: never), and may be limited to
`max_uses` enrollments. Revoking a token stops new enrollments with it; explorers already
enrolled keep their own secrets. Creating and revoking are audited here, for the API and the
web console alike. Trading a token for an explorer's secret is `service/explorers.enroll`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from surveyor.service.audit import record
from surveyor.store import explorers as explorer_store
from surveyor.store import records
from surveyor.store.accounts import Principal

#: A token nobody revokes stops working by itself after a week, unless asked otherwise.
DEFAULT_EXPIRY_DAYS = 7


class TokenRefused(Exception):
    """The token cannot be created as asked; `field` names the part of the request."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def token_state(row: Mapping[str, Any], *, now: datetime) -> str:
    """Whether explorers can enroll with the token, and if not, why."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up"
    return "usable"


def token_out(row: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """A token row with its state, as the API and the Explorers page show it."""
    state = token_state(row, now=now)
    return {**row, "state": state, "usable": state == "usable"}


def create_token(
    conn: Connection,
    actor: Principal,
    *,
    name: str,
    site_id: int | None,
    hosted_zone_id: int | None,
    expires_in_days: int | None,
    max_uses: int | None,
    now: datetime,
) -> tuple[dict[str, Any], str]:
    """A token of the actor's organization; returns its row and its secret (shown once)."""
    org = actor.organization_id
    if site_id is not None and records.get_site(conn, org, site_id) is None:
        raise TokenRefused(f"site {site_id} does not exist", "site_id")
    if hosted_zone_id is not None and records.get_zone(conn, org, hosted_zone_id) is None:
        raise TokenRefused(f"hosted zone {hosted_zone_id} does not exist", "hosted_zone_id")
    row, plaintext = explorer_store.create_enrollment_token(
        conn,
        org,
        name=name.strip(),
        created_by=actor.email,
        now=now,
        site_id=site_id,
        hosted_zone_id=hosted_zone_id,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        max_uses=max_uses,
    )
    record(
        conn,
        actor,
        "create",
        "enrollment_token",
        row["id"],
        now=now,
        details={
            "name": row["name"],
            "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
            "max_uses": row["max_uses"],
        },
        organization_id=org,
    )
    return row, plaintext


def revoke_token(
    conn: Connection, actor: Principal, token_id: int, *, now: datetime
) -> dict[str, Any] | None:
    """Revoke one of the organization's tokens; None when it has no such token."""
    row = explorer_store.revoke_enrollment_token(conn, actor.organization_id, token_id, now=now)
    if row is None:
        return None
    record(conn, actor, "revoke", "enrollment_token", token_id, now=now)
    return row
