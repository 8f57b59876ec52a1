"""trigram indexes for the substring keys of the search language

SQLite: an FTS5 table (`trigram` tokenizer) per searched table, kept in step by triggers;
PostgreSQL: `pg_trgm` GIN indexes. Filled from the rows already there. See
`surveyor.store.search_index`.
"""

from alembic import op

from surveyor.store.search_index import create_trigram_indexes, drop_trigram_indexes

revision: str = "0023"
down_revision: str | None = "0022"

#: The indexed columns as of this revision (a later change of the list is a new migration).
_INDEXED: dict[str, tuple[str, ...]] = {
    "tasks": ("name", "description", "targets", "error", "created_by"),
    "assets": ("mac", "mac_vendor", "os", "os_version", "device_type", "description", "seen_by"),
    "services": (
        "name",
        "product",
        "version",
        "cpe",
        "banner",
        "http_title",
        "http_server",
        "tls_subject",
        "tls_issuer",
    ),
}


def upgrade() -> None:
    # The indexes of this revision's day: of the columns as they are (0027 collates them).
    create_trigram_indexes(op.get_bind(), _INDEXED, form="column")


def downgrade() -> None:
    drop_trigram_indexes(op.get_bind(), _INDEXED)
