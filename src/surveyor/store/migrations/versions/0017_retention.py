"""retention: each organization's retention settings, and assets marked stale

`retention_settings` holds an organization's retention in days (no row: the defaults of
core/retention.py) and its daily Retention task; `assets.stale_since` is when a Retention run
found an asset unseen for the organization's period.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("task_data_days", sa.Integer(), nullable=False),
        sa.Column("stale_after_days", sa.Integer(), nullable=False),
        sa.Column("template_id", _ID, nullable=True),
        sa.Column("updated_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            ondelete="CASCADE",
            name=op.f("fk_retention_settings_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["tasks.id"],
            ondelete="SET NULL",
            name=op.f("fk_retention_settings_template_id_tasks"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_retention_settings")),
    )
    op.add_column(
        "assets",
        sa.Column("stale_since", surveyor.store.schema.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("stale_since")
    op.drop_table("retention_settings")
