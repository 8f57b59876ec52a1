"""inventory: assets, their addresses, names and services, processing runs and change reports

Also the processing queue's index on tasks and, on PostgreSQL, the trigger that wakes
workers (LISTEN surveyor_processing) when a task is queued or leaves processing.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = surveyor.store.schema.UTCDateTime

#: The channel workers listened on until 0013 replaced this trigger by the change bus.
_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION surveyor_processing_wakeup() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('surveyor_processing', COALESCE(NEW.site_id::text, ''));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER tasks_processing_wakeup
AFTER INSERT OR UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status = 'processing_queued')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""
_NOTIFY_RELEASE_TRIGGER = """
CREATE TRIGGER tasks_processing_release
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (OLD.status = 'processing' AND NEW.status <> 'processing')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
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
        sa.Column("first_seen", _TIME(), nullable=False),
        sa.Column("last_seen", _TIME(), nullable=False),
        sa.Column("changed_at", _TIME(), nullable=False),
        sa.Column("last_task_id", _ID, nullable=True),
        sa.Column("last_run_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_assets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_assets_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets") as batch:
        batch.create_index(batch.f("ix_assets_site_id_mac"), ["site_id", "mac"])
        batch.create_index(batch.f("ix_assets_site_id_hostname"), ["site_id", "hostname"])
        batch.create_index("ix_assets_page", ["organization_id", "address_key", "id"])

    op.create_table(
        "asset_addresses",
        sa.Column("asset_id", _ID, nullable=False),
        sa.Column("address_key", sa.String(length=33), nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_addresses_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "address_key", name=op.f("pk_asset_addresses")),
    )
    with op.batch_alter_table("asset_addresses") as batch:
        batch.create_index("ix_asset_addresses_lookup", ["site_id", "address_key", "asset_id"])

    op.create_table(
        "asset_names",
        sa.Column("asset_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_names_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "name", name=op.f("pk_asset_names")),
    )

    op.create_table(
        "services",
        sa.Column("id", _ID, nullable=False),
        sa.Column("asset_id", _ID, nullable=False),
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
        sa.Column("first_seen", _TIME(), nullable=False),
        sa.Column("changed_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_services_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint(
            "asset_id", "proto", "port", name=op.f("uq_services_asset_id_proto_port")
        ),
    )
    with op.batch_alter_table("services") as batch:
        batch.create_index(batch.f("ix_services_port_asset_id"), ["port", "asset_id"])

    op.create_table(
        "processing_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("task_id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=True),
        sa.Column("data_sha256", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("observed_at", _TIME(), nullable=False),
        sa.Column("started_at", _TIME(), nullable=False),
        sa.Column("ended_at", _TIME(), nullable=True),
        sa.Column("records_total", sa.Integer(), nullable=False),
        sa.Column("records_done", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("offline", sa.Integer(), nullable=False),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_processing_runs_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_runs")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("processing_runs") as batch:
        batch.create_index(batch.f("ix_processing_runs_task_id_id"), ["task_id", "id"])

    op.create_table(
        "asset_changes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("task_id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("asset_id", _ID, nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["processing_runs.id"],
            name=op.f("fk_asset_changes_run_id_processing_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_changes")),
    )
    with op.batch_alter_table("asset_changes") as batch:
        batch.create_index(batch.f("ix_asset_changes_run_id_id"), ["run_id", "id"])
        batch.create_index(batch.f("ix_asset_changes_asset_id_id"), ["asset_id", "id"])

    with op.batch_alter_table("tasks") as batch:
        batch.create_index("ix_tasks_queue", ["status", "site_id", "tab_sort", "id"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)
        op.execute(_NOTIFY_RELEASE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_release ON tasks")
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_wakeup ON tasks")
        op.execute("DROP FUNCTION IF EXISTS surveyor_processing_wakeup()")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_queue")
    op.drop_table("asset_changes")
    op.drop_table("processing_runs")
    op.drop_table("services")
    op.drop_table("asset_names")
    op.drop_table("asset_addresses")
    op.drop_table("assets")
