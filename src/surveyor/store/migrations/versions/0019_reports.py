"""reports: each organization's stored report results (docs/reports.md)

One row per organization and report (`overview`, `comparison`, `external`): the result its
latest refresh stored, when, by which task, and the recurring template that refreshes it daily.
"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0019"
down_revision: str | None = "0018"


def upgrade() -> None:
    op.create_table(
        "reports",
        *ddl.id_and_organization(),
        sa.Column("report", sa.String(40), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("refreshed_at", ddl.TIME(), nullable=True),
        sa.Column("task_id", ddl.ID, nullable=True),
        sa.Column("schedule_id", ddl.ID, nullable=True),
        *ddl.timestamps(),
        ddl.primary_key("reports"),
        ddl.unique("reports", "organization_id", "report"),
        ddl.organization_key("reports"),
    )


def downgrade() -> None:
    op.drop_table("reports")
