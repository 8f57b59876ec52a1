"""The keys tasks can be searched by (SPEC §11), mapped onto the `tasks` table.

Reference records for `surveyor.core.search.evaluate` are dicts with these keys; `site`,
`explorer` and `hosted_zone` hold names (or None).
"""

from __future__ import annotations

from surveyor.core.search import Catalogue, FieldKind, SearchField, mentions_key
from surveyor.store.schema import explorers, hosted_zones, sites, tasks
from surveyor.store.search_sql import RelatedValue, SqlCatalogue

__all__ = ["HIDDEN_KEY", "TASK_SEARCH", "mentions_key"]

#: Hidden tasks are left out of results unless the query names this key.
HIDDEN_KEY = "hidden"


_TEXT, _NUMBER, _TIME, _BOOL = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.TIME, FieldKind.BOOL
_t = tasks.c

TASK_SEARCH: SqlCatalogue = Catalogue(
    fields={
        "id": SearchField(_NUMBER, _t.id),
        "name": SearchField(_TEXT, _t.name),
        "description": SearchField(_TEXT, _t.description),
        "type": SearchField(_TEXT, _t.type),
        "status": SearchField(_TEXT, _t.status),
        "site": SearchField(_TEXT, RelatedValue(_t.site_id, sites.c.id, sites.c.name)),
        "explorer": SearchField(
            _TEXT, RelatedValue(_t.explorer_id, explorers.c.id, explorers.c.name)
        ),
        "hosted_zone": SearchField(
            _TEXT, RelatedValue(_t.hosted_zone_id, hosted_zones.c.id, hosted_zones.c.name)
        ),
        "created_by": SearchField(_TEXT, _t.created_by),
        "parent_id": SearchField(_NUMBER, _t.parent_id),
        "recur": SearchField(_BOOL, _t.recur),
        HIDDEN_KEY: SearchField(_BOOL, _t.hidden),
        "error": SearchField(_TEXT, _t.error),
        "targets": SearchField(_TEXT, _t.targets),
        "created_at": SearchField(_TIME, _t.created_at),
        "updated_at": SearchField(_TIME, _t.updated_at),
        "start_time": SearchField(_TIME, _t.start_time),
        "finished_at": SearchField(_TIME, _t.finished_at),
        "new": SearchField(_NUMBER, _t.cs_new),
        "changed": SearchField(_NUMBER, _t.cs_changed),
        "offline": SearchField(_NUMBER, _t.cs_offline),
        "online": SearchField(_NUMBER, _t.cs_online),
        "unchanged": SearchField(_NUMBER, _t.cs_unchanged),
    }
)
