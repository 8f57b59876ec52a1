"""task columns for runs: occurrences, explorer attempts, processing leases, data checksum"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0002"
down_revision: str | None = "0001"


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("occurrence_at", ddl.TIME(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("attempt_token", sa.String(64), nullable=True),
        sa.Column("last_report_at", ddl.TIME(), nullable=True),
        sa.Column("stop_requested_at", ddl.TIME(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", ddl.TIME(), nullable=True),
        sa.Column("processing_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("data_sha256", sa.String(64), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in _columns():
            batch.add_column(column)
        batch.create_index(
            "uq_tasks_parent_occurrence", ["parent_id", "occurrence_at"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("uq_tasks_parent_occurrence")
        for column in reversed(_columns()):
            batch.drop_column(column.name)
