"""explorer protocol: enrollment tokens, explorer secret lookups"""

import sqlalchemy as sa
from alembic import op

from surveyor.store.migrations import ddl

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        *ddl.id_and_organization(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("site_id", ddl.ID, nullable=True),
        sa.Column("hosted_zone_id", ddl.ID, nullable=True),
        *ddl.token_columns(),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", ddl.TIME(), nullable=False),
        sa.Column("expires_at", ddl.TIME(), nullable=True),
        sa.Column("revoked_at", ddl.TIME(), nullable=True),
        sa.Column("last_used_at", ddl.TIME(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        ddl.organization_key("enrollment_tokens"),
        ddl.foreign_key("enrollment_tokens", "site_id", "sites", ondelete="SET NULL"),
        ddl.foreign_key("enrollment_tokens", "hosted_zone_id", "hosted_zones", ondelete="SET NULL"),
        ddl.primary_key("enrollment_tokens"),
        ddl.unique("enrollment_tokens", "lookup"),
    )
    ddl.create_index("enrollment_tokens", "organization_id", "id")
    with op.batch_alter_table("explorers") as batch:
        batch.add_column(sa.Column("secret_lookup", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("enrollment_token_id", ddl.ID, nullable=True))
        batch.create_unique_constraint(batch.f("uq_explorers_secret_lookup"), ["secret_lookup"])
        batch.create_foreign_key(
            batch.f("fk_explorers_enrollment_token_id_enrollment_tokens"),
            "enrollment_tokens",
            ["enrollment_token_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("explorers") as batch:
        batch.drop_constraint(
            batch.f("fk_explorers_enrollment_token_id_enrollment_tokens"), type_="foreignkey"
        )
        batch.drop_constraint(batch.f("uq_explorers_secret_lookup"), type_="unique")
        batch.drop_column("enrollment_token_id")
        batch.drop_column("secret_lookup")
    op.drop_table("enrollment_tokens")
