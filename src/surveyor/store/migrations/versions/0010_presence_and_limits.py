"""explorers' dropped polls; enrollment token use limits; probe caps; sites' allowed scope"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0010"
down_revision: str | None = "0009"


def upgrade() -> None:
    op.add_column("explorers", sa.Column("poll_dropped_at", ddl.TIME(), nullable=True))
    op.add_column("enrollment_tokens", sa.Column("max_uses", sa.Integer(), nullable=True))
    op.add_column("sites", sa.Column("allowed_scope", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "organizations",
        sa.Column("probe_cap", sa.BigInteger(), nullable=False, server_default="65536000"),
    )


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("allowed_scope")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("probe_cap")
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.drop_column("max_uses")
    with op.batch_alter_table("explorers") as batch:
        batch.drop_column("poll_dropped_at")
