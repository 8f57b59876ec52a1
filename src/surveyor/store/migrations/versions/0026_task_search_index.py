"""`ix_tasks_search`: searched tab counts from one covering index

A searched count reads every task of a tab until it has found `COUNT_CAP` matches, or the
whole tab when there are fewer. Through `ix_tasks_tab_page` each task read was a lookup of its
row, wide with params and stats: about 10 µs a task on SQLite, so counting a search over a
million tasks took 100 to 500 ms. This index holds, per tab, the keys a search compares most
(status, type, site, explorer, zone, creator, name, new, changed and offline counts), ordered
by creation time so an age term reads a range of it. A count over these keys reads the index
alone. It is kept to these: PostgreSQL unpacks every column of each index entry it reads, and
the three more that were tried (template, online and unchanged counts) made the longest count
of the benchmark 25% slower there; `parent_id:=` has `ix_tasks_parent_runs`. `updated_at` is
left out on purpose: a task's progress reports, which write only it and the progress columns,
change nothing here. `tab` comes first, so that a query on the organization alone does not
find a prefix of this index.
"""

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"

COLUMNS = [
    "tab",
    "organization_id",
    "hidden",
    "created_at",
    "status",
    "type",
    "site_id",
    "explorer_id",
    "hosted_zone_id",
    "cs_new",
    "cs_changed",
    "cs_offline",
    "created_by",
    "name",
]


def upgrade() -> None:
    op.create_index("ix_tasks_search", "tasks", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_tasks_search", table_name="tasks")
