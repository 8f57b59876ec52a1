"""initial schema"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        ddl.id_column(),
        ddl.organization_id(nullable=True),
        sa.Column("at", ddl.TIME(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", ddl.ID, nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        ddl.primary_key("audit_events"),
    )
    ddl.create_index("audit_events", "organization_id", "id")

    op.create_table(
        "organizations",
        ddl.id_column(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scope_cap", sa.Integer(), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        ddl.primary_key("organizations"),
        ddl.unique("organizations", "name"),
    )
    op.create_table(
        "users",
        ddl.id_column(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        sa.Column("last_login_at", ddl.TIME(), nullable=True),
        ddl.primary_key("users"),
        ddl.unique("users", "email"),
    )
    op.create_table(
        "api_tokens",
        ddl.id_column(),
        sa.Column("user_id", ddl.ID, nullable=False),
        ddl.organization_id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        *ddl.token_columns(),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        sa.Column("last_used_at", ddl.TIME(), nullable=True),
        sa.Column("expires_at", ddl.TIME(), nullable=True),
        ddl.organization_key("api_tokens"),
        ddl.foreign_key("api_tokens", "user_id", "users", ondelete="CASCADE"),
        ddl.primary_key("api_tokens"),
        ddl.unique("api_tokens", "lookup"),
    )
    ddl.create_index("api_tokens", "user_id")

    op.create_table(
        "hosted_zones",
        *ddl.owned_row_columns(),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        *ddl.timestamps(),
        *ddl.owned_row_keys("hosted_zones"),
    )
    op.create_table(
        "memberships",
        ddl.organization_id(),
        sa.Column("user_id", ddl.ID, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        ddl.organization_key("memberships"),
        ddl.foreign_key("memberships", "user_id", "users", ondelete="CASCADE"),
        ddl.primary_key("memberships", "organization_id", "user_id"),
    )
    ddl.create_index("memberships", "user_id")

    op.create_table(
        "sites",
        *ddl.owned_row_columns(),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("excludes", sa.Text(), nullable=False),
        *ddl.timestamps(),
        *ddl.owned_row_keys("sites"),
    )
    op.create_table(
        "explorers",
        *ddl.owned_row_columns(),
        sa.Column("site_id", ddl.ID, nullable=True),
        sa.Column("hosted_zone_id", ddl.ID, nullable=True),
        sa.Column("secret_hash", sa.String(length=128), nullable=True),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("os", sa.String(length=200), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("last_checkin_at", ddl.TIME(), nullable=True),
        *ddl.timestamps(),
        ddl.foreign_key("explorers", "hosted_zone_id", "hosted_zones", ondelete="SET NULL"),
        ddl.organization_key("explorers"),
        ddl.foreign_key("explorers", "site_id", "sites", ondelete="SET NULL"),
        ddl.primary_key("explorers"),
        ddl.unique("explorers", "organization_id", "name"),
    )
    ddl.create_index("explorers", "hosted_zone_id")

    op.create_table(
        "tasks",
        *ddl.id_and_organization(),
        sa.Column("site_id", ddl.ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("wait_reason", sa.String(length=40), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("progress_collect", sa.Float(), nullable=False),
        sa.Column("progress_process", sa.Float(), nullable=False),
        sa.Column("change_summary", sa.JSON(), nullable=True),
        *ddl.count_columns([f"cs_{kind}" for kind in ddl.CHANGE_KINDS], nullable=True),
        sa.Column("explorer_id", ddl.ID, nullable=True),
        sa.Column("hosted_zone_id", ddl.ID, nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_by_user_id", ddl.ID, nullable=True),
        *ddl.timestamps(),
        sa.Column("start_time", ddl.TIME(), nullable=True),
        sa.Column("recur", sa.Boolean(), nullable=False),
        sa.Column("recur_frequency", sa.String(length=20), nullable=True),
        sa.Column("recur_rule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("recur_next", ddl.TIME(), nullable=True),
        sa.Column("recur_last", ddl.TIME(), nullable=True),
        sa.Column("recur_last_task_id", ddl.ID, nullable=True),
        sa.Column("parent_id", ddl.ID, nullable=True),
        sa.Column("grace_period", sa.Integer(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("removed_at", ddl.TIME(), nullable=True),
        sa.Column("data_acquisition_started_at", ddl.TIME(), nullable=True),
        sa.Column("data_acquisition_ended_at", ddl.TIME(), nullable=True),
        sa.Column("data_processing_started_at", ddl.TIME(), nullable=True),
        sa.Column("data_processing_ended_at", ddl.TIME(), nullable=True),
        sa.Column("finished_at", ddl.TIME(), nullable=True),
        sa.Column("size_data", sa.BigInteger(), nullable=False),
        sa.Column("size_results", sa.BigInteger(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("tab", sa.String(length=20), nullable=True),
        sa.Column("tab_sort", ddl.TIME(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        ddl.foreign_key("tasks", "created_by_user_id", "users", ondelete="SET NULL"),
        ddl.foreign_key("tasks", "explorer_id", "explorers", ondelete="SET NULL"),
        ddl.foreign_key("tasks", "hosted_zone_id", "hosted_zones", ondelete="SET NULL"),
        ddl.organization_key("tasks"),
        ddl.foreign_key("tasks", "parent_id", "tasks", ondelete="SET NULL"),
        ddl.foreign_key("tasks", "site_id", "sites", ondelete="SET NULL"),
        ddl.primary_key("tasks"),
    )
    op.create_index("ix_tasks_all_page", "tasks", ["organization_id", "hidden", "id"])
    ddl.create_index("tasks", "explorer_id")
    ddl.create_index("tasks", "parent_id")
    ddl.create_index("tasks", "site_id")
    op.create_index(
        "ix_tasks_tab_page", "tasks", ["organization_id", "tab", "hidden", "tab_sort", "id"]
    )

    op.create_table(
        "task_events",
        ddl.id_column(),
        sa.Column("task_id", ddl.ID, nullable=False),
        ddl.organization_id(),
        sa.Column("at", ddl.TIME(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        ddl.foreign_key("task_events", "task_id", "tasks", ondelete="CASCADE"),
        ddl.primary_key("task_events"),
    )
    ddl.create_index("task_events", "task_id", "id")


def downgrade() -> None:
    # Each table's indexes go with it.
    for table in (
        "task_events",
        "tasks",
        "explorers",
        "sites",
        "memberships",
        "hosted_zones",
        "api_tokens",
        "users",
        "organizations",
        "audit_events",
    ):
        op.drop_table(table)
