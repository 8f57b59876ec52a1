"""PostgreSQL: the search compares folded text with LIKE, and its indexes hold that text

A substring term was `(column COLLATE "C") ILIKE pattern`. `ILIKE` lowers the value it reads
on every row, and a searched count reads up to a few hundred thousand index entries: about
half of a `name:` count went to that. The search now compares `lower(column COLLATE "C")`
with a plain `LIKE` on a pattern folded beforehand (the same ASCII-only folding), and the
indexes hold that expression:

- each trigram index is rebuilt on it (a `pg_trgm` index serves a clause on its own
  expression only);
- `ix_tasks_search` holds `created_by` and `name` folded, and includes the columns themselves
  (PostgreSQL reads an index alone only when every column a query names is in it): a count
  then takes the folded text from the index instead of lowering each value again.

SQLite is unchanged: its LIKE already ignores ASCII case, at no extra cost.
"""

from alembic import op

from surveyor.store.search_index import (
    INDEXED_BY_0023,
    create_trigram_indexes,
    drop_trigram_indexes,
)

revision: str = "0028"
down_revision: str | None = "0027"


#: `ix_tasks_search` as of migration 0026, up to its two text keys.
_KEYS = (
    "tab, organization_id, hidden, created_at, status, type, site_id, explorer_id,"
    " hosted_zone_id, cs_new, cs_changed, cs_offline"
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    drop_trigram_indexes(conn, INDEXED_BY_0023)
    create_trigram_indexes(conn, INDEXED_BY_0023, form="folded")
    op.drop_index("ix_tasks_search", table_name="tasks")
    op.execute(
        f'CREATE INDEX ix_tasks_search ON tasks ({_KEYS}, lower(created_by COLLATE "C"),'
        ' lower(name COLLATE "C")) INCLUDE (created_by, name)'
    )


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.drop_index("ix_tasks_search", table_name="tasks")
    op.execute(f"CREATE INDEX ix_tasks_search ON tasks ({_KEYS}, created_by, name)")
    drop_trigram_indexes(conn, INDEXED_BY_0023)
    create_trigram_indexes(conn, INDEXED_BY_0023, form="collated")
