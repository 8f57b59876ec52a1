"""Exports: the inventory as CSV or JSONL, streamed (SPEC §9 "Exports"), and the CSV
encoding the exports share.

An export reads the inventory a page at a time, each page in its own short read transaction,
and sends each page as it is read: a million assets never sit in memory, and a slow client
holds no transaction open. The CSV is what spreadsheets expect: UTF-8 with a byte-order mark
(so Excel does not guess another encoding), CRLF line ends, fields quoted where they must be,
lists joined with "; ", and any cell that a spreadsheet would take for a formula (starting
with `=`, `+`, `-`, `@`, a tab or a carriage return) prefixed with `'`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi.responses import StreamingResponse

from surveyor.console.presenters import asset_out
from surveyor.console.schemas import AssetOut, ServiceOut, from_attributes
from surveyor.console.state import ConsoleState
from surveyor.store import inventory, records

ExportFormat = Literal["csv", "jsonl"]
#: Assets read per transaction while exporting.
EXPORT_PAGE = 500
#: What Excel needs to read the file as UTF-8.
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Columns of the API shape left out of the CSV: the same in every row.
_CSV_LEFT_OUT = frozenset({"organization_id"})
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "json": "application/json",
}


def csv_cell(value: Any) -> str:
    """One value as a spreadsheet cell: lists joined, times in ISO 8601, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(csv_cell(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """CSV bytes, a line at a time, starting with the byte-order mark and the header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield (BOM + buffer.getvalue()).encode()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue().encode()


def json_line(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value, default=_json_default, separators=(",", ":")) + "\n").encode()


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def asset_columns() -> list[str]:
    """The CSV columns: the asset's API fields, in their order."""
    return [name for name in AssetOut.model_fields if name not in _CSV_LEFT_OUT]


def _asset_pages(
    state: ConsoleState, organization_id: int, search: Any
) -> Iterator[list[tuple[AssetOut, list[dict[str, Any]]]]]:
    """The matching assets a page at a time, each page read in its own transaction."""
    cursor: str | None = None
    while True:
        with state.db.read() as conn:
            page = inventory.list_assets(
                conn,
                organization_id,
                search=search,
                limit=EXPORT_PAGE,
                cursor=cursor,
            )
            names = records.site_names(conn, organization_id, {a.site_id for a in page.items})
            ids = [asset.id for asset in page.items]
            found = inventory.services_of(conn, ids)
            sources = inventory.sources_of(conn, ids)
        yield [
            (
                asset_out(asset, names, found[asset.id], sources[asset.id]),
                [_service(service) for service in found[asset.id]],
            )
            for asset in page.items
        ]
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _service(service: Any) -> dict[str, Any]:
    return from_attributes(ServiceOut, service).model_dump(mode="json")


def export_assets(
    state: ConsoleState,
    organization_id: int,
    search: Any,
    export_format: ExportFormat,
) -> Iterator[bytes]:
    """The matching assets as CSV (one row each) or JSONL (one object each, with its
    services), streamed. `search`: the compiled search clause (compile it before the
    response starts, so that a bad search is an error answer, not a broken download)."""
    pages = _asset_pages(state, organization_id, search)
    if export_format == "jsonl":
        for page in pages:
            for asset, services in page:
                yield json_line({**asset.model_dump(mode="json"), "services": services})
        return
    columns = asset_columns()

    def rows() -> Iterator[list[Any]]:
        for page in pages:
            for asset, _services in page:
                shown = asset.model_dump()
                # A cell names the sources; their times are in the JSONL export.
                shown["sources"] = [source["source"] for source in shown.get("sources") or ()]
                yield [shown[name] for name in columns]

    yield from csv_lines(columns, rows())


def assets_download(
    state: ConsoleState, organization_id: int, search: Any, export_format: ExportFormat
) -> StreamingResponse:
    """The export as a download named after the moment it was asked for (the API's route
    and the Assets page's Export links both answer with it)."""
    stamp = state.clock.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        export_assets(state, organization_id, search, export_format),
        media_type=MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": (
                f'attachment; filename="surveyor-assets-{stamp}.{export_format}"'
            )
        },
    )
