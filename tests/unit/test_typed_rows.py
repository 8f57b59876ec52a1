"""The frozen rows the store returns hold every column of their table, by name: a column
added to a table without a field on its row type fails here."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Integer, Table

from surveyor.core.fingerprint import Service
from surveyor.core.inventory import Asset, AssetService, CandidateAsset, OfflineAsset
from surveyor.core.resources import Explorer, HostedZone, Site
from surveyor.core.rows import ColumnRow
from surveyor.store import inventory
from surveyor.store.schema import asset_outliers, assets, explorers, hosted_zones, services, sites

_numbers = itertools.count(1)
_START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _sample(column: Column[Any]) -> Any:
    """A value of the column's type, different from every other column's."""
    n = next(_numbers)
    if isinstance(column.type, Boolean):
        return n % 2 == 0
    if isinstance(column.type, JSON) and column.name == "attributes":
        return {f"{column.name}-{n}": f"{column.name}-{n}-a"}
    if isinstance(column.type, JSON):
        return [f"{column.name}-{n}-a", f"{column.name}-{n}-b"]
    if isinstance(column.type, Integer):
        return n
    if column.type.python_type is datetime:
        return _START + timedelta(minutes=n)
    return f"{column.name}-{n}"


#: Columns of other tables a row type reads through the store's join, by the name they take.
JOINED: dict[str, dict[str, Column[Any]]] = {
    "assets": {"outlier": asset_outliers.c.score, "outlier_reasons": asset_outliers.c.reasons},
}


def sample_row(table: Table) -> dict[str, Any]:
    row = {column.name: _sample(column) for column in table.columns}
    row.update({name: _sample(column) for name, column in JOINED.get(table.name, {}).items()})
    return row


def stored(value: Any) -> Any:
    """A field's value as its column holds it: lists as JSON lists."""
    return list(value) if isinstance(value, tuple) else value


ROW_TYPES = [
    pytest.param(sites, Site, id="sites"),
    pytest.param(hosted_zones, HostedZone, id="hosted_zones"),
    pytest.param(explorers, Explorer, id="explorers"),
    pytest.param(assets, Asset, id="assets"),
]


@pytest.mark.parametrize(("table", "row_type"), ROW_TYPES)
def test_a_row_type_has_a_field_for_every_column_of_its_table(
    table: Table, row_type: type[Any]
) -> None:
    fields = {field.name for field in dataclasses.fields(row_type)}
    assert fields == set(table.columns.keys()) | set(JOINED.get(table.name, {}))


@pytest.mark.parametrize(("table", "row_type"), ROW_TYPES)
def test_from_row_keeps_every_column_under_its_own_name(table: Table, row_type: type[Any]) -> None:
    row = sample_row(table)

    built = row_type.from_row(row)

    assert {name: stored(getattr(built, name)) for name in row} == row


def test_an_asset_service_keeps_every_column_and_splits_its_certificate_names() -> None:
    row = sample_row(services)
    row["tls_sans"] = "one.example\n\ntwo.example"
    row["cpe"] = "cpe:/a:openbsd:openssh:9.6"

    built = AssetService.from_row(row)

    assert {field.name for field in dataclasses.fields(AssetService)} == set(
        services.columns.keys()
    )
    assert built.tls_sans == ("one.example", "two.example")
    assert built.cpe == ("cpe:/a:openbsd:openssh:9.6",)
    split = ("tls_sans", "cpe")
    assert {name: getattr(built, name) for name in row if name not in split} == {
        name: value for name, value in row.items() if name not in split
    }


def test_a_service_row_becomes_the_matching_rules_service_by_column_name() -> None:
    row = sample_row(services)
    row["tls_sans"] = "one.example\ntwo.example"
    row["cpe"] = "cpe:/a:one\ncpe:/a:two"

    service = inventory.service_from_row(row)

    assert set(Service._fields) == set(inventory.SERVICE_FIELDS)
    assert inventory.service_values(service) == {
        name: row[name] for name in inventory.SERVICE_FIELDS
    }


def test_a_candidate_asset_reads_exactly_the_columns_matching_reads() -> None:
    row = sample_row(assets)

    candidate = CandidateAsset.from_row(row)

    read = {column.name for column in inventory._CANDIDATE_COLUMNS}
    assert {field.name for field in dataclasses.fields(CandidateAsset)} == read
    assert {name: getattr(candidate, name) for name in read} == {name: row[name] for name in read}


def test_an_offline_asset_names_columns_of_the_assets_table() -> None:
    fields = {field.name for field in dataclasses.fields(OfflineAsset)}
    assert fields <= set(assets.columns.keys())


def test_the_rows_are_frozen() -> None:
    site = Site.from_row(sample_row(sites))
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.name = "another"  # type: ignore[misc]


def test_an_explorer_never_shows_its_secret_digest() -> None:
    row = sample_row(explorers)

    assert row["secret_hash"] not in repr(Explorer.from_row(row))


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True, slots=True)
class Painted(ColumnRow):
    id: int
    done: bool
    colour: Colour
    second: Colour | None
    note: str | None


def test_flags_and_enums_are_made_their_declared_types_from_what_their_columns_hold() -> None:
    row = {"id": 7, "done": 1, "colour": "red", "second": "blue", "note": None}

    painted = Painted.from_row(row)

    assert painted == Painted(7, True, Colour.RED, Colour.BLUE, None)
    assert painted.done is True
    assert type(painted.colour) is Colour


def test_an_optional_enum_column_holding_null_stays_none() -> None:
    painted = Painted.from_row({"id": 1, "done": 0, "colour": "blue", "second": None, "note": "x"})

    assert painted.second is None
    assert painted.done is False


def test_a_value_that_is_not_one_of_the_enum_is_refused() -> None:
    with pytest.raises(ValueError, match="green"):
        Painted.from_row({"id": 1, "done": 0, "colour": "green", "second": None, "note": None})
