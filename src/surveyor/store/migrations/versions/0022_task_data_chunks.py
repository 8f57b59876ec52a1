"""task data kept in the database, for consoles and workers that share no data directory

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_data_chunks",
        sa.Column("task_id", _ID, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            ondelete="CASCADE",
            name=op.f("fk_task_data_chunks_task_id_tasks"),
        ),
        sa.PrimaryKeyConstraint("task_id", "seq", name=op.f("pk_task_data_chunks")),
    )


def downgrade() -> None:
    op.drop_table("task_data_chunks")
