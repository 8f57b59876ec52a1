"""reports: each organization's stored report results (docs/reports.md)

One row per organization and report (`overview`, `comparison`, `external`): the result its
latest refresh stored, when, by which task, and the recurring template that refreshes it daily.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0019"
# The chain continues from 0017; until that revision is on this branch, 0016 precedes it.
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "organization_id",
            _ID,
            sa.ForeignKey(
                "organizations.id",
                name="fk_reports_organization_id_organizations",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("report", sa.String(40), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("refreshed_at", surveyor.store.schema.UTCDateTime(), nullable=True),
        sa.Column("task_id", _ID, nullable=True),
        sa.Column("schedule_id", _ID, nullable=True),
        sa.Column("created_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("organization_id", "report", name="uq_reports_organization_id_report"),
    )


def downgrade() -> None:
    op.drop_table("reports")
