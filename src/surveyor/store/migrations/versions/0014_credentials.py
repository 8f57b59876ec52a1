"""credentials: connectors' credentials, their secret fields sealed"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0014"
down_revision: str | None = "0013"


def upgrade() -> None:
    op.create_table(
        "credentials",
        *ddl.owned_row_columns(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("site_ids", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        *ddl.timestamps(),
        sa.Column("last_used_at", ddl.TIME(), nullable=True),
        *ddl.owned_row_keys("credentials"),
    )


def downgrade() -> None:
    op.drop_table("credentials")
