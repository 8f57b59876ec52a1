"""Columns, keys and indexes the migrations in `versions/` build their tables with.

Migrations are history: whenever one runs, it must build exactly what it built when it was
written. So a helper here never changes once a migration uses it: not a column's name, type,
nullability or order, not a constraint's or an index's name. A new shape is a new helper,
used from the new migration on. Nothing here follows `schema.py`, which declares today's
tables (only its `UTCDateTime` type, which the migrations always used); `tests/migration`
checks that the migrations end where `schema.py` says.

Names are spelled out as `schema.py`'s naming convention spells them (`op.f` keeps a name as
given), so a migration does not depend on the convention of the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from surveyor.store.schema import UTCDateTime

#: Integer keys and references: SQLite's rowid alias, PostgreSQL's bigint.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Aware UTC times.
TIME = UTCDateTime
#: What a processing run counts, by kind of change (tasks keep them as `cs_<kind>`).
CHANGE_KINDS = ("new", "changed", "offline", "online", "unchanged")


def id_column() -> sa.Column[int]:
    """A table's own `id` (`primary_key` makes it the key)."""
    return sa.Column("id", ID, nullable=False)


def organization_id(*, nullable: bool = False) -> sa.Column[int]:
    """The organization a row belongs to (`organization_key` makes it a foreign key)."""
    return sa.Column("organization_id", ID, nullable=nullable)


def id_and_organization() -> tuple[sa.Column[int], sa.Column[int]]:
    """`id` and `organization_id`, both required: the first columns of most tables."""
    return id_column(), organization_id()


def owned_row_columns() -> tuple[sa.Column[int], sa.Column[int], sa.Column[str]]:
    """`id`, `organization_id` and `name`: a row an organization owns under a name unique
    within it (`owned_row_keys` makes them its keys)."""
    return *id_and_organization(), sa.Column("name", sa.String(length=200), nullable=False)


def token_columns() -> tuple[sa.Column[str], sa.Column[str]]:
    """A token's public half, `lookup`, which finds its row, and its secret half, hashed."""
    return (
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
    )


def count_columns(names: Iterable[str], *, nullable: bool) -> list[sa.Column[int]]:
    """An integer column per name."""
    return [sa.Column(name, sa.Integer(), nullable=nullable) for name in names]


def timestamps() -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    """`created_at` and `updated_at`, both required."""
    return (
        sa.Column("created_at", TIME(), nullable=False),
        sa.Column("updated_at", TIME(), nullable=False),
    )


def primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    """`pk_<table>` on `columns` (default: `id`)."""
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def foreign_key(
    table: str, column: str, referred: str, *, ondelete: str
) -> sa.ForeignKeyConstraint:
    """`fk_<table>_<column>_<referred>`: `column` holds the `id` of a row of `referred`."""
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete=ondelete,
    )


def organization_key(table: str) -> sa.ForeignKeyConstraint:
    """`organization_id` refers to `organizations`; deleting the organization deletes the row."""
    return foreign_key(table, "organization_id", "organizations", ondelete="CASCADE")


def owned_row_keys(
    table: str,
) -> tuple[sa.ForeignKeyConstraint, sa.PrimaryKeyConstraint, sa.UniqueConstraint]:
    """The keys of `owned_row_columns`: the organization's, the id, the name per organization."""
    return organization_key(table), primary_key(table), unique(table, "organization_id", "name")


def unique(table: str, *columns: str) -> sa.UniqueConstraint:
    """`uq_<table>_<columns>`."""
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def create_index(table: str, *columns: str, unique: bool = False) -> None:
    """`ix_<table>_<columns>`, on an existing table."""
    op.create_index(_index_name(table, columns), table, list(columns), unique=unique)


def drop_index(table: str, *columns: str) -> None:
    """The index `create_index(table, *columns)` made."""
    op.drop_index(_index_name(table, columns), table_name=table)


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    return op.f(f"ix_{table}_{'_'.join(columns)}")
