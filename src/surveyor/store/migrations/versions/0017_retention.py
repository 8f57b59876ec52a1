"""retention: each organization's retention settings, and assets marked stale

`retention_settings` holds an organization's retention in days (no row: the defaults of
core/retention.py) and its daily Retention task; `assets.stale_since` is when a Retention run
found an asset unseen for the organization's period.
"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0017"
down_revision: str | None = "0016"


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        ddl.organization_id(),
        sa.Column("task_data_days", sa.Integer(), nullable=False),
        sa.Column("stale_after_days", sa.Integer(), nullable=False),
        sa.Column("template_id", ddl.ID, nullable=True),
        sa.Column("updated_at", ddl.TIME(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        ddl.organization_key("retention_settings"),
        ddl.foreign_key("retention_settings", "template_id", "tasks", ondelete="SET NULL"),
        ddl.primary_key("retention_settings", "organization_id"),
    )
    op.add_column("assets", sa.Column("stale_since", ddl.TIME(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("stale_since")
    op.drop_table("retention_settings")
