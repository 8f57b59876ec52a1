"""`POST /api/v1/imports`: good files become import tasks; bad files are refused whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from surveyor.store.schema import assets, tasks
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import encode, host, process_all, records, service


def site_name(console: ConsoleUnderTest) -> str:
    return str(console.admin.get("/api/v1/sites").json()[0]["name"])


def upload(console: ConsoleUnderTest, content: bytes, **params: str) -> object:
    params.setdefault("site", site_name(console))
    return console.admin.post(
        "/api/v1/imports",
        params=params,
        content=content,
        headers={"Content-Type": "application/gzip"},
    )


def stored_files(data_dir: Path) -> list[str]:
    folder = data_dir / "tasks"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def task_count(console: ConsoleUnderTest) -> int:
    with console.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


def test_an_imported_file_becomes_a_queued_import_task_that_fills_the_inventory(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    content = encode(records([host("127.0.0.1", services=[service(22)]), host("127.0.0.2")]))
    answer = upload(console, content, name="Legacy inventory")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["type"] == "import"
    assert created["status"] == "processing_queued"
    assert created["name"] == "Legacy inventory"
    assert created["size_data"] == len(content)
    assert created["stats"] == {"hosts": 2}
    assert stored_files(tmp_path) == [f"{created['id']}.jsonl.gz"]
    assert (
        process_all(console.db, tmp_path) == 2
    )  # the import, and the Outlier calculation it queued
    done = console.admin.get(f"/api/v1/tasks/{created['id']}").json()
    assert done["status"] == "processed"
    assert done["change_summary"]["new"] == 2
    listed = console.admin.get("/api/v1/assets").json()["items"]
    assert [a["address"] for a in listed] == ["127.0.0.1", "127.0.0.2"]


def test_a_plain_jsonl_file_is_stored_compressed(console: ConsoleUnderTest, tmp_path: Path) -> None:
    content = encode(records([host("127.0.0.1")]), compress=False)
    answer = upload(console, content)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    stored = (tmp_path / "tasks" / f"{created['id']}.jsonl.gz").read_bytes()
    assert gzip.decompress(stored) == content
    assert created["size_data"] == len(stored)
    downloaded = console.admin.get(f"/api/v1/tasks/{created['id']}/data")
    assert downloaded.status_code == 200
    assert gzip.decompress(downloaded.content) == content


def test_the_site_can_be_named_by_id(console: ConsoleUnderTest) -> None:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    answer = upload(console, encode(records([host("127.0.0.1")])), site=str(site_id))
    assert answer.status_code == 201
    assert answer.json()["site_id"] == site_id


BAD_FILES = [
    pytest.param(
        [records([host("127.0.0.1")])[0], "{not json", records([])[-1]],
        2,
        "not valid JSON",
        id="a line that is not JSON",
    ),
    pytest.param(
        records([host("127.0.0.1"), host("127.0.0.1.5")]),
        3,
        "addresses[0]",
        id="a bad address",
    ),
    pytest.param(
        records([{**host("127.0.0.1"), "services": [{"port": 70000}]}]),
        2,
        "services[0].port",
        id="a port out of range",
    ),
    pytest.param(records([{**host("127.0.0.1"), "mac": "zz:11"}]), 2, "not a MAC", id="a bad MAC"),
    pytest.param(
        records([host("127.0.0.1")])[1:], 1, "first record must be 'config'", id="no config"
    ),
    pytest.param(records([host("127.0.0.1")])[:-1], None, "without its 'summary'", id="no summary"),
    pytest.param(
        [*records([]), host("127.0.0.1")], 3, "follows the summary", id="a host after the summary"
    ),
    pytest.param(
        records([{**host("127.0.0.1"), "addresses": []}]),
        2,
        "at least one address",
        id="no address",
    ),
    pytest.param(
        [*records([host("127.0.0.1")])[:-1], {"type": "summary", "hosts": 5}],
        3,
        "counts 5 hosts",
        id="a summary that counts more hosts",
    ),
    pytest.param([{"type": "banner"}], 1, "'type' must be one of", id="an unknown record type"),
    pytest.param(
        records([*(host(f"127.0.{n // 250}.{n % 250 + 1}") for n in range(3000)), host("::g")]),
        3002,
        "addresses[0]",
        id="a bad record after thousands of good ones",
    ),
    pytest.param(
        records([{**host("127.0.0.1"), "services": [service(22), service(22)]}]),
        2,
        "listed twice",
        id="a port listed twice",
    ),
    pytest.param(
        records([{**host("127.0.0.1"), "services_truncated": -3}]),
        2,
        "'services_truncated' must be a whole number",
        id="a negative count of services left out",
    ),
]


@pytest.mark.parametrize(("lines", "line", "problem"), BAD_FILES)
def test_a_bad_file_is_refused_naming_the_line_and_nothing_is_written(
    console: ConsoleUnderTest,
    tmp_path: Path,
    lines: list[object],
    line: int | None,
    problem: str,
) -> None:
    before = task_count(console)
    answer = upload(console, encode(lines))  # type: ignore[arg-type]
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_task_data"
    assert problem in error["message"]
    assert error["details"].get("line") == line
    if line is not None:
        assert f"line {line}" in error["message"]
    assert task_count(console) == before
    assert stored_files(tmp_path) == []
    with console.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 0


def test_a_truncated_gzip_file_is_refused(console: ConsoleUnderTest, tmp_path: Path) -> None:
    content = encode(records([host(f"127.0.0.{n}") for n in range(1, 200)]))
    answer = upload(console, content[: len(content) // 2])
    assert answer.status_code == 400
    assert "not complete" in answer.json()["error"]["message"]
    assert stored_files(tmp_path) == []


def test_an_empty_body_a_form_without_a_file_and_an_unknown_site_are_refused(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    empty = upload(console, b"")
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]["message"]
    no_file = console.admin.post("/api/v1/imports", files={"notes": (None, b"no file here")})
    assert no_file.status_code == 400
    assert "no file" in no_file.json()["error"]["message"]
    unknown = upload(console, encode(records([host("127.0.0.1")])), site="Nowhere")
    assert unknown.status_code == 400
    assert "Nowhere" in unknown.json()["error"]["message"]
    assert stored_files(tmp_path) == []
    with console.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 0


def test_viewers_cannot_import(console: ConsoleUnderTest) -> None:
    viewer = console.as_role("viewer")
    answer = viewer.post(
        "/api/v1/imports", params={"site": site_name(console)}, content=encode(records([]))
    )
    assert answer.status_code == 403
    operator = console.as_role("operator")
    accepted = operator.post(
        "/api/v1/imports", params={"site": site_name(console)}, content=encode(records([]))
    )
    assert accepted.status_code == 201
    assert accepted.json()["created_by"] == operator.email


def test_imports_may_be_larger_than_other_request_bodies(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    hosts = [
        host(
            f"127.{n // 65536}.{n // 256 % 256}.{n % 256}", services=[service(22, banner="x" * 300)]
        )
        for n in range(1, 6000)
    ]
    content = encode(records(hosts, targets="127.0.0.0/8"), compress=False)
    assert len(content) > 1 << 20
    answer = console.admin.post(
        "/api/v1/imports",
        params={"site": site_name(console)},
        content=content,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 201, answer.text[:300]
    assert json.loads(answer.text)["stats"]["hosts"] == len(hosts)
