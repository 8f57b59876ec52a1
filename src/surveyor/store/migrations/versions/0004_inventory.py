"""inventory: assets, their addresses, names and services, processing runs and change reports

Also the processing queue's index on tasks and, on PostgreSQL, the trigger that wakes
workers (LISTEN surveyor_processing) when a task is queued or leaves processing.
"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl, processing_wakeup

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.create_table(
        "assets",
        *ddl.id_and_organization(),
        sa.Column("site_id", ddl.ID, nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("address_key", sa.String(length=33), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("hostnames", sa.JSON(), nullable=False),
        sa.Column("os", sa.String(length=200), nullable=False),
        sa.Column("alive", sa.Boolean(), nullable=False),
        sa.Column("service_count", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(length=32), nullable=False),
        sa.Column("outlier", sa.Integer(), nullable=True),
        sa.Column("first_seen", ddl.TIME(), nullable=False),
        sa.Column("last_seen", ddl.TIME(), nullable=False),
        sa.Column("changed_at", ddl.TIME(), nullable=False),
        sa.Column("last_task_id", ddl.ID, nullable=True),
        sa.Column("last_run_id", ddl.ID, nullable=True),
        ddl.organization_key("assets"),
        ddl.foreign_key("assets", "site_id", "sites", ondelete="CASCADE"),
        ddl.primary_key("assets"),
    )
    ddl.create_index("assets", "site_id", "mac")
    ddl.create_index("assets", "site_id", "hostname")
    op.create_index("ix_assets_page", "assets", ["organization_id", "address_key", "id"])

    op.create_table(
        "asset_addresses",
        sa.Column("asset_id", ddl.ID, nullable=False),
        sa.Column("address_key", sa.String(length=33), nullable=False),
        sa.Column("site_id", ddl.ID, nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        ddl.foreign_key("asset_addresses", "asset_id", "assets", ondelete="CASCADE"),
        ddl.primary_key("asset_addresses", "asset_id", "address_key"),
    )
    op.create_index(
        "ix_asset_addresses_lookup", "asset_addresses", ["site_id", "address_key", "asset_id"]
    )

    op.create_table(
        "asset_names",
        sa.Column("asset_id", ddl.ID, nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        ddl.foreign_key("asset_names", "asset_id", "assets", ondelete="CASCADE"),
        ddl.primary_key("asset_names", "asset_id", "name"),
    )

    op.create_table(
        "services",
        ddl.id_column(),
        sa.Column("asset_id", ddl.ID, nullable=False),
        sa.Column("proto", sa.String(length=8), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("banner", sa.Text(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("http_server", sa.String(length=200), nullable=False),
        sa.Column("http_title", sa.Text(), nullable=False),
        sa.Column("tls_subject", sa.Text(), nullable=False),
        sa.Column("tls_issuer", sa.Text(), nullable=False),
        sa.Column("tls_sans", sa.Text(), nullable=False),
        sa.Column("tls_not_before", sa.String(length=40), nullable=False),
        sa.Column("tls_not_after", sa.String(length=40), nullable=False),
        sa.Column("tls_sha256", sa.String(length=64), nullable=False),
        sa.Column("first_seen", ddl.TIME(), nullable=False),
        sa.Column("changed_at", ddl.TIME(), nullable=False),
        ddl.foreign_key("services", "asset_id", "assets", ondelete="CASCADE"),
        ddl.primary_key("services"),
        ddl.unique("services", "asset_id", "proto", "port"),
    )
    ddl.create_index("services", "port", "asset_id")

    op.create_table(
        "processing_runs",
        ddl.id_column(),
        sa.Column("task_id", ddl.ID, nullable=False),
        ddl.organization_id(),
        sa.Column("site_id", ddl.ID, nullable=True),
        sa.Column("data_sha256", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("observed_at", ddl.TIME(), nullable=False),
        sa.Column("started_at", ddl.TIME(), nullable=False),
        sa.Column("ended_at", ddl.TIME(), nullable=True),
        sa.Column("records_total", sa.Integer(), nullable=False),
        sa.Column("records_done", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        *ddl.count_columns([*ddl.CHANGE_KINDS, "ignored"], nullable=False),
        ddl.foreign_key("processing_runs", "task_id", "tasks", ondelete="CASCADE"),
        ddl.primary_key("processing_runs"),
        sqlite_autoincrement=True,
    )
    ddl.create_index("processing_runs", "task_id", "id")

    op.create_table(
        "asset_changes",
        ddl.id_column(),
        sa.Column("run_id", ddl.ID, nullable=False),
        sa.Column("task_id", ddl.ID, nullable=False),
        ddl.organization_id(),
        sa.Column("asset_id", ddl.ID, nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        ddl.foreign_key("asset_changes", "run_id", "processing_runs", ondelete="CASCADE"),
        ddl.primary_key("asset_changes"),
    )
    ddl.create_index("asset_changes", "run_id", "id")
    ddl.create_index("asset_changes", "asset_id", "id")

    op.create_index("ix_tasks_queue", "tasks", ["status", "site_id", "tab_sort", "id"])
    processing_wakeup.create()


def downgrade() -> None:
    processing_wakeup.drop()
    op.drop_index("ix_tasks_queue", table_name="tasks")
    for table in (
        "asset_changes",
        "processing_runs",
        "services",
        "asset_names",
        "asset_addresses",
        "assets",
    ):
        op.drop_table(table)
