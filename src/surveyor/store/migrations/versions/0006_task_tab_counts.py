"""task_tab_counts: per-organization tab counts kept in step with tasks

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_tab_counts",
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("tab", sa.String(20), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            ondelete="CASCADE",
            name=op.f("fk_task_tab_counts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "tab", "hidden", name=op.f("pk_task_tab_counts")
        ),
    )
    op.execute(
        "INSERT INTO task_tab_counts (organization_id, tab, hidden, count) "
        "SELECT organization_id, tab, hidden, count(*) FROM tasks "
        "WHERE tab IS NOT NULL GROUP BY organization_id, tab, hidden"
    )


def downgrade() -> None:
    op.drop_table("task_tab_counts")
