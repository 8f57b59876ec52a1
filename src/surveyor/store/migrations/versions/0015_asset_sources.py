"""every asset's sources with their first and last time seen; the extended host record
(SPEC §7) on assets and services; assets found by any of their names

Assets known before this revision get one source: `import` when the task that saw them
last was an import, else `scan`, seen from the asset's first to its last time seen.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = surveyor.store.schema.UTCDateTime

_ASSET_TEXT = (
    ("mac_vendor", sa.String(length=200)),
    ("os_version", sa.String(length=200)),
    ("device_type", sa.String(length=100)),
    ("description", sa.Text()),
    ("seen_by", sa.String(length=253)),
)
_SERVICE_TEXT = (
    ("version", sa.String(length=200)),
    ("extrainfo", sa.String(length=200)),
    ("tunnel", sa.String(length=20)),
    ("cpe", sa.Text()),
)


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: no table is rebuilt, whatever it holds.
    for name, kind in _ASSET_TEXT:
        op.add_column("assets", sa.Column(name, kind, nullable=False, server_default=""))
    op.add_column("assets", sa.Column("os_accuracy", sa.Integer(), nullable=True))
    op.add_column("assets", sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("assets", sa.Column("attributes", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column("assets", sa.Column("uptime_seconds", sa.BigInteger(), nullable=True))
    op.add_column("assets", sa.Column("distance", sa.Integer(), nullable=True))
    for name, kind in _SERVICE_TEXT:
        op.add_column("services", sa.Column(name, kind, nullable=False, server_default=""))
    op.create_index(
        op.f("ix_asset_names_name_asset_id"), "asset_names", ["name", "asset_id"], unique=False
    )
    op.create_table(
        "asset_sources",
        sa.Column("asset_id", _ID, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("first_seen", _TIME(), nullable=False),
        sa.Column("last_seen", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_sources_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "source", name=op.f("pk_asset_sources")),
    )
    op.create_index(
        op.f("ix_asset_sources_source_asset_id"),
        "asset_sources",
        ["source", "asset_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO asset_sources (asset_id, source, first_seen, last_seen) "
        "SELECT assets.id, CASE WHEN tasks.type = 'import' THEN 'import' ELSE 'scan' END, "
        "assets.first_seen, assets.last_seen "
        "FROM assets LEFT JOIN tasks ON tasks.id = assets.last_task_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_asset_sources_source_asset_id"), table_name="asset_sources")
    op.drop_table("asset_sources")
    op.drop_index(op.f("ix_asset_names_name_asset_id"), table_name="asset_names")
    with op.batch_alter_table("services") as batch:
        for name, _ in reversed(_SERVICE_TEXT):
            batch.drop_column(name)
    with op.batch_alter_table("assets") as batch:
        for name in ("distance", "uptime_seconds", "attributes", "tags", "os_accuracy"):
            batch.drop_column(name)
        for name, _ in reversed(_ASSET_TEXT):
            batch.drop_column(name)
