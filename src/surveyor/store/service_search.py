"""The keys services can be searched by (a saved query of kind `service`), mapped onto the
`services` table. Their names are the asset search's (SPEC §11), so the same search finds, on
the Assets page, the assets that have such services; keys on the asset (`os`, `site`,
`address`, `hostname`) reach it through the service's `asset_id`. A bare value searches the
service's name, product and banner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from surveyor.core.search import Catalogue, FieldKind, SearchField
from surveyor.store.asset_search import address_keys, service_keys
from surveyor.store.schema import asset_outliers, assets, services, sites
from surveyor.store.search_sql import RelatedValue, SqlCatalogue

_TEXT, _NUMBER, _TIME, _BOOL = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.TIME, FieldKind.BOOL
_s = services.c
#: The name of an asset's site, read beside the asset.
_SITE_NAME = select(sites.c.name).where(sites.c.id == assets.c.site_id).scalar_subquery()


def _asset(column: ColumnElement[Any]) -> RelatedValue:
    """A key on the service's asset."""
    return RelatedValue(_s.asset_id, assets.c.id, column)


SERVICE_SEARCH: SqlCatalogue = Catalogue(
    fields={
        **service_keys(),
        "first_seen": SearchField(_TIME, _s.first_seen),
        "changed_at": SearchField(_TIME, _s.changed_at),
        **address_keys(_s.asset_id),
        "os": SearchField(_TEXT, _asset(assets.c.os)),
        "device_type": SearchField(_TEXT, _asset(assets.c.device_type)),
        "alive": SearchField(_BOOL, _asset(assets.c.alive)),
        "outlier": SearchField(
            _NUMBER, RelatedValue(_s.asset_id, asset_outliers.c.asset_id, asset_outliers.c.score)
        ),
        "site": SearchField(_TEXT, _asset(_SITE_NAME)),
    },
    bare_keys=("service", "product", "banner"),
)
