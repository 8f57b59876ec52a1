"""task columns for runs: occurrences, explorer attempts, processing leases, data checksum

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = surveyor.store.schema.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("occurrence_at", _TIME(), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("attempt_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_report_at", _TIME(), nullable=True))
        batch.add_column(sa.Column("stop_requested_at", _TIME(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", _TIME(), nullable=True))
        batch.add_column(
            sa.Column("processing_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("data_sha256", sa.String(64), nullable=True))
        batch.create_index(
            "uq_tasks_parent_occurrence", ["parent_id", "occurrence_at"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("uq_tasks_parent_occurrence")
        for column in (
            "data_sha256",
            "processing_attempts",
            "lease_expires_at",
            "lease_owner",
            "stop_requested_at",
            "last_report_at",
            "attempt_token",
            "attempt",
            "occurrence_at",
        ):
            batch.drop_column(column)
