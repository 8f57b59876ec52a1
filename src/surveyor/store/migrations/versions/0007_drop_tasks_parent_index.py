"""drop ix_tasks_parent_id: uq_tasks_parent_occurrence (parent_id, occurrence_at) serves it"""

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    # Every lookup by parent (a template's runs, the foreign key's SET NULL) is served by the
    # unique index that starts with parent_id; one index less to keep up per spawned run.
    op.drop_index("ix_tasks_parent_id", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_parent_id", "tasks", ["parent_id"])
