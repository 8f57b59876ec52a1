"""task_tab_counts: per-organization tab counts kept in step with tasks"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.create_table(
        "task_tab_counts",
        ddl.organization_id(),
        sa.Column("tab", sa.String(20), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        ddl.organization_key("task_tab_counts"),
        ddl.primary_key("task_tab_counts", "organization_id", "tab", "hidden"),
    )
    op.execute(
        "INSERT INTO task_tab_counts (organization_id, tab, hidden, count) "
        "SELECT organization_id, tab, hidden, count(*) FROM tasks "
        "WHERE tab IS NOT NULL GROUP BY organization_id, tab, hidden"
    )


def downgrade() -> None:
    op.drop_table("task_tab_counts")
