"""notifications: rules per organization, the outbox of deliveries, their attempts"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0018"
down_revision: str | None = "0017"


def upgrade() -> None:
    op.create_table(
        "notification_rules",
        *ddl.owned_row_columns(),
        sa.Column("trigger", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("secret", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        *ddl.timestamps(),
        *ddl.owned_row_keys("notification_rules"),
    )
    op.create_table(
        "notification_deliveries",
        *ddl.id_and_organization(),
        sa.Column("rule_id", ddl.ID, nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=30), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ddl.TIME(), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        sa.Column("delivered_at", ddl.TIME(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", ddl.TIME(), nullable=True),
        ddl.foreign_key(
            "notification_deliveries", "rule_id", "notification_rules", ondelete="CASCADE"
        ),
        ddl.primary_key("notification_deliveries"),
        ddl.unique("notification_deliveries", "rule_id", "event_key"),
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["status", "next_attempt_at", "id"],
    )
    ddl.create_index("notification_deliveries", "rule_id", "id")
    op.create_table(
        "notification_attempts",
        ddl.id_column(),
        sa.Column("delivery_id", ddl.ID, nullable=False),
        sa.Column("at", ddl.TIME(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        ddl.foreign_key(
            "notification_attempts", "delivery_id", "notification_deliveries", ondelete="CASCADE"
        ),
        ddl.primary_key("notification_attempts"),
    )
    ddl.create_index("notification_attempts", "delivery_id", "id")
    op.create_table(
        "notification_watermarks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        ddl.primary_key("notification_watermarks", "name"),
    )


def downgrade() -> None:
    op.drop_table("notification_watermarks")
    op.drop_table("notification_attempts")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_rules")
