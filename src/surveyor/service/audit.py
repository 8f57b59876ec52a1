"""The audit trail as the services write it: who did what to which object, and when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.store.accounts import Principal
from surveyor.store.audit import audit


def record(
    conn: Connection,
    actor: Principal,
    action: str,
    object_type: str,
    object_id: int | None,
    *,
    now: datetime,
    details: Mapping[str, Any] | None = None,
    organization_id: int | None = None,
) -> None:
    """Record that `actor` did `action` to an object, in the trail of `organization_id` (the
    actor's own organization unless another is named)."""
    audit(
        conn,
        organization_id=actor.organization_id if organization_id is None else organization_id,
        actor=actor.email,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
        at=now,
    )
