"""`GET /api/v1/assets/export` and the change report as CSV: what a spreadsheet opens is
what the API lists, quoted so that commas, quotes and line breaks survive and no cell runs
as a formula; the export streams the whole inventory page after page."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import encode, host, process_all, records, service

TRICKY_OS = 'Linux "jammy", 22.04\nsecond line'
FORMULA_OS = '=HYPERLINK("http://127.0.0.1/","click")'


def imported(console: ConsoleUnderTest, data_dir: Path, hosts: list[dict[str, Any]]) -> int:
    site = console.admin.get("/api/v1/sites").json()[0]["name"]
    answer = console.admin.post(
        "/api/v1/imports",
        params={"site": site},
        content=encode(records(hosts)),
        headers={"Content-Type": "application/gzip"},
    )
    assert answer.status_code == 201, answer.text
    assert process_all(console.db, data_dir) >= 1
    task_id: int = answer.json()["id"]
    return task_id


def read_csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    text = content.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.DictReader(io.StringIO(text, newline="")))


def listed(console: ConsoleUnderTest, search: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = console.admin.get(
            "/api/v1/assets", params={"search": search, "cursor": cursor, "limit": 500}
        ).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_the_csv_export_is_the_listing_and_reads_back_with_the_csv_module(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    with_os = [
        {**host("127.0.4.1", services=[service(22), service(443)]), "os": TRICKY_OS},
        {**host("127.0.4.2", services=[service(80)]), "os": FORMULA_OS},
        host("127.0.4.3"),
    ]
    imported(console, tmp_path, with_os)

    answer = console.admin.get("/api/v1/assets/export", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = read_csv(answer.content)
    api = listed(console)
    assert [row["address"] for row in rows] == [asset["address"] for asset in api]
    by_address = {row["address"]: row for row in rows}
    assert by_address["127.0.4.1"]["os"] == TRICKY_OS  # comma, quotes and newline survive
    assert by_address["127.0.4.1"]["ports"] == "; ".join(api[0]["ports"])
    assert by_address["127.0.4.2"]["os"] == "'" + FORMULA_OS  # never a live formula
    assert by_address["127.0.4.3"]["alive"] == "true"
    # the cell names the sources that saw it, as the listing does
    assert by_address["127.0.4.1"]["sources"] == "; ".join(
        source["source"] for source in api[0]["sources"]
    )
    assert by_address["127.0.4.1"]["sources"]
    assert "organization_id" not in rows[0]
    assert set(rows[0]) >= {"id", "site", "address", "hostnames", "mac", "os", "first_seen"}


def test_the_export_keeps_the_search_and_streams_every_page(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    hosts = [
        host(f"127.0.{5 + n // 250}.{1 + n % 250}", services=[service(22)] if n % 3 == 0 else [])
        for n in range(1200)
    ]
    imported(console, tmp_path, hosts)

    everything = read_csv(console.admin.get("/api/v1/assets/export").content)
    assert len(everything) == 1200  # more than two pages of the export's reading
    assert len({row["id"] for row in everything}) == 1200

    answer = console.admin.get(
        "/api/v1/assets/export", params={"search": "port:22", "format": "jsonl"}
    )
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["address"] for line in lines] == [a["address"] for a in listed(console, "port:22")]
    assert len(lines) == 400
    assert all(line["services"][0]["port"] == 22 for line in lines)


def test_a_bad_search_is_refused_before_any_download_starts(console: ConsoleUnderTest) -> None:
    answer = console.admin.get("/api/v1/assets/export", params={"search": "port:>>"})
    assert answer.status_code == 400
    assert "error" in answer.json()
    wrong = console.admin.get("/api/v1/assets/export", params={"format": "xlsx"})
    assert wrong.status_code == 422


def test_viewers_may_export_and_strangers_may_not(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    imported(console, tmp_path, [host("127.0.4.9")])
    viewer = console.as_role("viewer").get("/api/v1/assets/export")
    assert viewer.status_code == 200
    assert [row["address"] for row in read_csv(viewer.content)] == ["127.0.4.9"]
    assert console.anonymous().get("/api/v1/assets/export").status_code == 401
    _org, other = console.other_organization()
    assert read_csv(other.get("/api/v1/assets/export").content) == []


def test_the_change_report_downloads_as_csv(console: ConsoleUnderTest, tmp_path: Path) -> None:
    task_id = imported(console, tmp_path, [host("127.0.4.1", services=[service(22)])])
    second = imported(
        console,
        tmp_path,
        [host("127.0.4.1", services=[service(22), service(80)]), host("127.0.4.2")],
    )
    del task_id
    report = console.admin.get(f"/api/v1/tasks/{second}/changes").json()
    answer = console.admin.get(f"/api/v1/tasks/{second}/changes", params={"format": "csv"})
    assert answer.status_code == 200
    assert f"task-{second}-run-1-changes.csv" in answer.headers["content-disposition"]
    rows = read_csv(answer.content)
    assert [(row["kind"], row["address"]) for row in rows] == [
        (item["kind"], item["address"]) for item in report["items"]
    ]
    assert {row["kind"] for row in rows} == {"new", "changed"}
    changed = next(row for row in rows if row["kind"] == "changed")
    assert json.loads(changed["details"]) == next(
        item["details"] for item in report["items"] if item["kind"] == "changed"
    )
