"""covering indexes for the reports' grouped counts of assets and open services"""

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"

_ASSET_COLUMNS = [
    "organization_id",
    "site_id",
    "os",
    "device_type",
    "alive",
    "service_count",
    "first_seen",
    "outlier",
]


def upgrade() -> None:
    op.create_index("ix_assets_report_groups", "assets", _ASSET_COLUMNS)
    op.create_index("ix_services_report_groups", "services", ["proto", "port", "name", "state"])


def downgrade() -> None:
    op.drop_index("ix_services_report_groups", table_name="services")
    op.drop_index("ix_assets_report_groups", table_name="assets")
