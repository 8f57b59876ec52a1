"""every asset's sources with their first and last time seen; the extended host record
(SPEC §7) on assets and services; assets found by any of their names

Assets known before this revision get one source: `import` when the task that saw them
last was an import, else `scan`, seen from the asset's first to its last time seen.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0015"
down_revision: str | None = "0014"

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


def _text_columns(names: tuple[tuple[str, sa.types.TypeEngine[str]], ...]) -> list[sa.Column[Any]]:
    return [sa.Column(name, kind, nullable=False, server_default="") for name, kind in names]


def _asset_columns() -> list[sa.Column[Any]]:
    return [
        *_text_columns(_ASSET_TEXT),
        sa.Column("os_accuracy", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("attributes", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("uptime_seconds", sa.BigInteger(), nullable=True),
        sa.Column("distance", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: no table is rebuilt, whatever it holds.
    for column in _asset_columns():
        op.add_column("assets", column)
    for column in _text_columns(_SERVICE_TEXT):
        op.add_column("services", column)
    ddl.create_index("asset_names", "name", "asset_id")
    op.create_table(
        "asset_sources",
        sa.Column("asset_id", ddl.ID, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("first_seen", ddl.TIME(), nullable=False),
        sa.Column("last_seen", ddl.TIME(), nullable=False),
        ddl.foreign_key("asset_sources", "asset_id", "assets", ondelete="CASCADE"),
        ddl.primary_key("asset_sources", "asset_id", "source"),
    )
    ddl.create_index("asset_sources", "source", "asset_id")
    op.execute(
        "INSERT INTO asset_sources (asset_id, source, first_seen, last_seen) "
        "SELECT assets.id, CASE WHEN tasks.type = 'import' THEN 'import' ELSE 'scan' END, "
        "assets.first_seen, assets.last_seen "
        "FROM assets LEFT JOIN tasks ON tasks.id = assets.last_task_id"
    )


def downgrade() -> None:
    op.drop_table("asset_sources")
    ddl.drop_index("asset_names", "name", "asset_id")
    with op.batch_alter_table("services") as batch:
        for column in reversed(_text_columns(_SERVICE_TEXT)):
            batch.drop_column(column.name)
    with op.batch_alter_table("assets") as batch:
        for column in reversed(_asset_columns()):
            batch.drop_column(column.name)
