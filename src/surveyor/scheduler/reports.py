"""The scheduler initializes reports: an organization that has an inventory but not every
report gets the missing ones (each a `report` task created by the system, queued at once, and
its daily refresh template; docs/reports.md). Checked with the scheduler's sweep, every few
seconds: the check reads one row per organization that still lacks a report, so it costs
nothing once every organization has them."""

from __future__ import annotations

from datetime import datetime

from surveyor.store import reports as report_store
from surveyor.store.engine import Database

#: Organizations initialized per transaction.
BATCH = 20


def initialize_reports(db: Database, now: datetime) -> int:
    """Initialize the missing reports of organizations that have assets; how many
    organizations got reports."""
    with db.read() as conn:
        if not report_store.organizations_to_initialize(conn, limit=1):
            return 0
    with db.write() as conn:
        waiting = report_store.organizations_to_initialize(conn, limit=BATCH)
        for organization_id in waiting:
            report_store.initialize_missing(conn, organization_id, now=now)
    return len(waiting)
