"""keep every processing run (numbered per task); tasks remember partial data"""

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: rebuilding processing_runs on SQLite would lose its
    # AUTOINCREMENT (run ids must never be reused) and cascade into the change reports.
    op.add_column(
        "tasks",
        sa.Column("data_partial", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "processing_runs",
        sa.Column("number", sa.Integer(), nullable=False, server_default="0"),
    )
    # Runs so far are numbered in the order they started, per task.
    op.execute(
        "UPDATE processing_runs SET number = (SELECT count(*) FROM processing_runs AS earlier "
        "WHERE earlier.task_id = processing_runs.task_id AND earlier.id <= processing_runs.id)"
    )
    op.create_index(
        "uq_processing_runs_task_number", "processing_runs", ["task_id", "number"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_processing_runs_task_number", table_name="processing_runs")
    with op.batch_alter_table("processing_runs") as batch:
        batch.drop_column("number")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("data_partial")
