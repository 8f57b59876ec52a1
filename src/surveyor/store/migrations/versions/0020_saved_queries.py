"""saved queries and their counts: the Dashboard's insights and their history

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surveyor.store.schema

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "saved_queries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_by_user_id", _ID, nullable=True),
        sa.Column("created_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.Column("last_count", sa.BigInteger(), nullable=True),
        sa.Column("last_counted_at", surveyor.store.schema.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            ondelete="CASCADE",
            name=op.f("fk_saved_queries_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_queries")),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_saved_queries_organization_id_name")
        ),
    )
    op.create_index(
        op.f("ix_saved_queries_organization_id_pinned_id"),
        "saved_queries",
        ["organization_id", "pinned", "id"],
    )
    op.create_table(
        "query_counts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("query_id", _ID, nullable=False),
        sa.Column("counted_at", surveyor.store.schema.UTCDateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("task_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["saved_queries.id"],
            ondelete="CASCADE",
            name=op.f("fk_query_counts_query_id_saved_queries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_counts")),
    )
    op.create_index(
        op.f("ix_query_counts_query_id_counted_at"), "query_counts", ["query_id", "counted_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_query_counts_query_id_counted_at"), table_name="query_counts")
    op.drop_table("query_counts")
    op.drop_index(op.f("ix_saved_queries_organization_id_pinned_id"), table_name="saved_queries")
    op.drop_table("saved_queries")
