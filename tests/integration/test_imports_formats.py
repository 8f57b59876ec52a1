"""`POST /api/v1/imports` with nmap XML, masscan and CSV, as a body or a form: good files
fill the inventory, bad ones are refused whole, naming where, leaving nothing behind."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from surveyor.core.jsonl_limits import JsonlLimits
from surveyor.store.engine import Database
from surveyor.store.schema import assets, tasks
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.inventory_data import process_all
from tests.support.tool_files import (
    BILLION_LAUGHS,
    CSV,
    EXTERNAL_ENTITY,
    MASSCAN_LIST,
    ROUTER,
    WEB_SERVER,
    nmap_file,
)

#: The rows of the CSV that have an address (a row known by name only is the connectors'
#: kind of record; processing takes it once it knows assets by name).
ADDRESSED_CSV = "".join(line for line in CSV.splitlines(True) if not line.startswith(",")).encode()


def site_name(console: ConsoleUnderTest) -> str:
    return str(console.admin.get("/api/v1/sites").json()[0]["name"])


def post(console: ConsoleUnderTest, content: bytes, **params: str) -> Any:
    params.setdefault("site", site_name(console))
    return console.admin.post(
        "/api/v1/imports",
        params=params,
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


def leftovers(data_dir: Path) -> list[str]:
    folder = data_dir / "tasks"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def counts(console: ConsoleUnderTest) -> tuple[int, int]:
    with console.db.read() as conn:
        # (not the organization's daily Retention template, there from the start)
        ours = select(func.count()).select_from(tasks).where(tasks.c.type != "retention")
        task_count = conn.execute(ours).scalar_one()
        asset_count = conn.execute(select(func.count()).select_from(assets)).scalar_one()
    return int(task_count), int(asset_count)


def asset_by_address(console: ConsoleUnderTest, address: str) -> dict[str, Any]:
    listed = console.admin.get("/api/v1/assets").json()["items"]
    [found] = [a for a in listed if a["address"] == address]
    detail: dict[str, Any] = console.admin.get(f"/api/v1/assets/{found['id']}").json()
    return detail


def test_an_nmap_file_becomes_an_import_task_whose_assets_have_products_and_versions(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    answer = post(console, nmap_file(WEB_SERVER, ROUTER), name="Legacy nmap")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["type"] == "import"
    assert created["status"] == "processing_queued"
    assert created["stats"] == {"hosts": 2}
    stored = tmp_path / "tasks" / f"{created['id']}.jsonl.gz"
    assert leftovers(tmp_path) == [stored.name]
    assert b'"source":"import:nmap"' in gzip.decompress(stored.read_bytes())
    events = console.admin.get(f"/api/v1/tasks/{created['id']}/events").json()["items"]
    messages = [event.get("message") or "" for event in events]
    assert any(
        "imported 2 host records (nmap XML); 1 hosts that were down" in m for m in messages
    ), messages
    assert process_all(console.db, tmp_path) == 2  # and the Outlier calculation
    done = console.admin.get(f"/api/v1/tasks/{created['id']}").json()
    assert done["status"] == "processed"
    assert done["change_summary"]["new"] == 2
    web = asset_by_address(console, "192.0.2.10")
    assert web["mac"] == "00:1a:2b:3c:4d:5e"
    assert "www.example.test" in web["hostnames"]
    assert web["os"] == "Linux 4.15 - 5.8"
    services = {(s["proto"], s["port"]): s for s in web["services"]}
    assert services[("tcp", 22)]["product"] == "OpenSSH"
    assert services[("tcp", 443)]["http_title"] == "Welcome to the example"
    assert services[("tcp", 443)]["tls_subject"] == "CN=www.example.test,O=Example Ltd"
    assert ("udp", 53) in services


def test_a_csv_file_sent_as_a_form_with_its_site_and_format_as_fields(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    answer = console.admin.post(
        "/api/v1/imports",
        data={"site": site_name(console), "format": "csv", "name": "Spreadsheet"},
        files={"file": ("assets.csv", ADDRESSED_CSV, "text/csv")},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "Spreadsheet"
    assert answer.json()["stats"] == {"hosts": 2}
    assert process_all(console.db, tmp_path) == 2  # and the Outlier calculation
    web = asset_by_address(console, "192.0.2.10")
    assert {s["port"] for s in web["services"]} == {22, 80, 443, 53}


def test_gzip_masscan_output_is_detected_and_merged_per_address(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    answer = post(console, gzip.compress(MASSCAN_LIST))
    assert answer.status_code == 201, answer.text
    assert answer.json()["stats"] == {"hosts": 2}
    assert process_all(console.db, tmp_path) == 2  # and the Outlier calculation
    web = asset_by_address(console, "192.0.2.10")
    assert {s["port"] for s in web["services"]} == {80, 443}


BAD_FILES = [
    pytest.param(BILLION_LAUGHS, "declares the entity 'lol'", None, id="billion laughs"),
    pytest.param(EXTERNAL_ENTITY, "declares the entity 'secret'", None, id="external entity"),
    pytest.param(
        nmap_file(WEB_SERVER).replace(b"</ports>", b"</port>"), "mismatched tag", 60, id="xml"
    ),
    pytest.param(b"ip,ports\n192.0.2.1,22\n192.0.2.2,http\n", "not a port", 3, id="csv"),
    pytest.param(b"#masscan\nopen tcp 80\n", "has 'state proto port", 2, id="masscan"),
    pytest.param(b"\x00\x01 binary", "cannot be told", 1, id="unknown format"),
    pytest.param(
        gzip.compress(nmap_file(WEB_SERVER))[:300], "gzip data is not complete", None, id="gzip"
    ),
]


@pytest.mark.parametrize(("content", "problem", "line"), BAD_FILES)
def test_a_bad_file_is_refused_naming_where_and_leaves_nothing(
    console: ConsoleUnderTest, tmp_path: Path, content: bytes, problem: str, line: int | None
) -> None:
    post(console, nmap_file(ROUTER))  # something already there, untouched by the refusal
    process_all(console.db, tmp_path)
    before = counts(console), leftovers(tmp_path)
    answer = post(console, content)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_import_file"
    assert problem in error["message"]
    assert error["details"].get("line") == line
    if line is not None:
        assert f"line {line}" in error["message"]
    assert (counts(console), leftovers(tmp_path)) == before


def test_a_named_format_that_does_not_fit_is_refused(console: ConsoleUnderTest) -> None:
    answer = post(console, CSV.encode(), format="nmap")
    assert answer.status_code == 400
    assert "line 1, column 1: the XML is broken" in answer.json()["error"]["message"]
    unknown = post(console, CSV.encode(), format="nessus")
    assert unknown.status_code == 422


def test_an_nmap_file_over_the_record_limit_is_refused_naming_the_limit(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = nmap_file(b'<host><address addr="' + b"1" * 3_000_000 + b'"/></host>')
    tight = JsonlLimits(max_record_bytes=100_000)
    with running_console(db, tmp_path, monkeypatch, task_data_limits=tight) as console:
        answer = post(console, content)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["details"]["limit"] == "SURVEYOR_MAX_RECORD_BYTES"
        assert counts(console) == (0, 0)
    assert leftovers(tmp_path) == []
