"""outlier scores and reasons in their own narrow table, `asset_outliers`

Until now an Outlier calculation rewrote `assets.outlier` and `assets.outlier_reasons` of
every asset: each write moved the asset's entries in `ix_assets_outlier` and in the wide
`ix_assets_report_groups` (0021), and on PostgreSQL, an indexed column changing, a new entry
in every index of the assets, their trigram indexes too. Now a score is a row of
`asset_outliers` (asset, organization, score, reasons), and an asset without one is not scored
yet. The scores and reasons there are moved over; `ix_assets_outlier` gives way to
`ix_asset_outliers_rank`, and `ix_assets_report_groups` no longer holds the score (the reports
count unusual assets from `asset_outliers`).
"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0024"
down_revision: str | None = "0023"

#: `ix_assets_report_groups` of 0021, and without the score.
_REPORT_GROUPS = [
    "organization_id",
    "site_id",
    "os",
    "device_type",
    "alive",
    "service_count",
    "first_seen",
]
_REPORT_GROUPS_0021 = [*_REPORT_GROUPS, "outlier"]


def upgrade() -> None:
    op.create_table(
        "asset_outliers",
        sa.Column("asset_id", ddl.ID, nullable=False),
        ddl.organization_id(),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        ddl.foreign_key("asset_outliers", "asset_id", "assets", ondelete="CASCADE"),
        ddl.primary_key("asset_outliers", "asset_id"),
    )
    op.execute(
        "INSERT INTO asset_outliers (asset_id, organization_id, score, reasons) "
        "SELECT id, organization_id, outlier, COALESCE(outlier_reasons, '[]') "
        "FROM assets WHERE outlier IS NOT NULL"
    )
    op.create_index(
        "ix_asset_outliers_rank",
        "asset_outliers",
        [sa.text("score DESC"), "asset_id", "organization_id"],
    )
    op.drop_index("ix_assets_outlier", table_name="assets")
    op.drop_index("ix_assets_report_groups", table_name="assets")
    op.create_index("ix_assets_report_groups", "assets", _REPORT_GROUPS)
    # Neither column is in an index now, so SQLite drops them in place (no copy of the
    # table, whose trigram triggers stay).
    op.drop_column("assets", "outlier_reasons")
    op.drop_column("assets", "outlier")


def downgrade() -> None:
    op.add_column("assets", sa.Column("outlier", sa.Integer(), nullable=True))
    op.add_column("assets", sa.Column("outlier_reasons", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE assets SET "
        "outlier = (SELECT score FROM asset_outliers WHERE asset_id = assets.id), "
        "outlier_reasons = (SELECT reasons FROM asset_outliers WHERE asset_id = assets.id) "
        "WHERE id IN (SELECT asset_id FROM asset_outliers)"
    )
    op.drop_index("ix_assets_report_groups", table_name="assets")
    op.create_index("ix_assets_report_groups", "assets", _REPORT_GROUPS_0021)
    op.create_index("ix_assets_outlier", "assets", ["organization_id", "outlier", "id"])
    op.drop_index("ix_asset_outliers_rank", table_name="asset_outliers")
    op.drop_table("asset_outliers")
