"""explorer protocol: enrollment tokens, explorer secret lookups

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = surveyor.store.schema.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("site_id", _ID, nullable=True),
        sa.Column("hosted_zone_id", _ID, nullable=True),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=True),
        sa.Column("revoked_at", _TIME(), nullable=True),
        sa.Column("last_used_at", _TIME(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_enrollment_tokens_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_enrollment_tokens_site_id_sites"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["hosted_zone_id"],
            ["hosted_zones.id"],
            name=op.f("fk_enrollment_tokens_hosted_zone_id_hosted_zones"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("lookup", name=op.f("uq_enrollment_tokens_lookup")),
    )
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.create_index(
            batch.f("ix_enrollment_tokens_organization_id_id"), ["organization_id", "id"]
        )
    with op.batch_alter_table("explorers") as batch:
        batch.add_column(sa.Column("secret_lookup", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("enrollment_token_id", _ID, nullable=True))
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
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.drop_index(batch.f("ix_enrollment_tokens_organization_id_id"))
    op.drop_table("enrollment_tokens")
