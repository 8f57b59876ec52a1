"""trigram indexes for the substring keys of the search language

SQLite: an FTS5 table (`trigram` tokenizer) per searched table, kept in step by triggers;
PostgreSQL: `pg_trgm` GIN indexes. Filled from the rows already there. See
`surveyor.store.search_index`.
"""

from alembic import op

from surveyor.store.search_index import (
    INDEXED_BY_0023,
    create_trigram_indexes,
    drop_trigram_indexes,
)

revision: str = "0023"
down_revision: str | None = "0022"


def upgrade() -> None:
    # The indexes of this revision's day: of the columns as they are (0027 collates them).
    create_trigram_indexes(op.get_bind(), INDEXED_BY_0023, form="column")


def downgrade() -> None:
    drop_trigram_indexes(op.get_bind(), INDEXED_BY_0023)
