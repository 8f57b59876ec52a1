"""assets' outlier reasons, and the index the Assets list sorts by score with

`assets.outlier` (0004) holds the score an Outlier calculation gives; `outlier_reasons` holds
its strongest reasons in words (core/outliers.py, docs/outliers.md).
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"


def upgrade() -> None:
    op.add_column("assets", sa.Column("outlier_reasons", sa.JSON(), nullable=True))
    op.create_index("ix_assets_outlier", "assets", ["organization_id", "outlier", "id"])


def downgrade() -> None:
    op.drop_index("ix_assets_outlier", table_name="assets")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("outlier_reasons")
