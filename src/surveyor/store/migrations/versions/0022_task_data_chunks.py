"""task data kept in the database, for consoles and workers that share no data directory"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0022"
down_revision: str | None = "0021"


def upgrade() -> None:
    op.create_table(
        "task_data_chunks",
        sa.Column("task_id", ddl.ID, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        ddl.foreign_key("task_data_chunks", "task_id", "tasks", ondelete="CASCADE"),
        ddl.primary_key("task_data_chunks", "task_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("task_data_chunks")
