"""PostgreSQL: substring search in the "C" collation, and trigram indexes to match

The search language folds ASCII letters only (`core/search/evaluate.py`), as SQLite's LIKE
does. PostgreSQL's `ILIKE` folded every letter its database's collation folds, so `name:éclair`
found "Éclair" there and nowhere else, and it paid for full Unicode case mapping on every row
it read (about a third of the time of a searched count). The search now compares in the "C"
collation, where `ILIKE` folds ASCII only; a `pg_trgm` index serves a clause only in its own
collation, so each is built again on the column in "C". SQLite is unchanged.
"""

from alembic import op

from surveyor.store.search_index import (
    INDEXED_BY_0023,
    create_trigram_indexes,
    drop_trigram_indexes,
)

revision: str = "0027"
down_revision: str | None = "0026"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        drop_trigram_indexes(conn, INDEXED_BY_0023)
        create_trigram_indexes(conn, INDEXED_BY_0023, form="collated")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        drop_trigram_indexes(conn, INDEXED_BY_0023)
        create_trigram_indexes(conn, INDEXED_BY_0023, form="column")
