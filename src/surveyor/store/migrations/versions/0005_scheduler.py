"""scheduler: indexes for due templates and for tasks waiting to launch"""

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    # Due templates (`recur_next <= now`) and the ones due next, in (recur_next, id) order;
    # only active templates have a next occurrence.
    op.create_index("ix_tasks_recur_next", "tasks", ["recur_next", "id"])
    # Tasks in `new` by start time: one-off tasks that become due, and launches whose grace
    # period ran out. Few tasks are `new`, so the status prefix keeps these scans short.
    op.create_index("ix_tasks_status_start_time", "tasks", ["status", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_start_time", table_name="tasks")
    op.drop_index("ix_tasks_recur_next", table_name="tasks")
