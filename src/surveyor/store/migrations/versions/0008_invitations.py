"""invitations: an existing account joins an organization only when it accepts"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.create_table(
        "invitations",
        *ddl.id_and_organization(),
        sa.Column("user_id", ddl.ID, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        sa.Column("expires_at", ddl.TIME(), nullable=False),
        ddl.organization_key("invitations"),
        ddl.foreign_key("invitations", "user_id", "users", ondelete="CASCADE"),
        ddl.primary_key("invitations"),
        ddl.unique("invitations", "organization_id", "user_id"),
        sqlite_autoincrement=True,
    )
    ddl.create_index("invitations", "user_id")


def downgrade() -> None:
    op.drop_table("invitations")
