"""saved queries and their counts: the Dashboard's insights and their history"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0020"
down_revision: str | None = "0019"


def upgrade() -> None:
    op.create_table(
        "saved_queries",
        *ddl.owned_row_columns(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_by_user_id", ddl.ID, nullable=True),
        *ddl.timestamps(),
        sa.Column("last_count", sa.BigInteger(), nullable=True),
        sa.Column("last_counted_at", ddl.TIME(), nullable=True),
        *ddl.owned_row_keys("saved_queries"),
    )
    ddl.create_index("saved_queries", "organization_id", "pinned", "id")
    op.create_table(
        "query_counts",
        ddl.id_column(),
        sa.Column("query_id", ddl.ID, nullable=False),
        sa.Column("counted_at", ddl.TIME(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("task_id", ddl.ID, nullable=True),
        ddl.foreign_key("query_counts", "query_id", "saved_queries", ondelete="CASCADE"),
        ddl.primary_key("query_counts"),
    )
    ddl.create_index("query_counts", "query_id", "counted_at")


def downgrade() -> None:
    op.drop_table("query_counts")
    op.drop_table("saved_queries")
