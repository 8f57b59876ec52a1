"""The Import page's upload on each backend: a plain form post and the page script's upload
both create the import task; a refused file is shown at the form, in words, and leaves no
task, no file and no asset behind."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from surveyor.core.jsonl_limits import RECORD_SETTING, JsonlLimits
from surveyor.store.engine import Database
from surveyor.store.schema import assets, tasks
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.inventory_data import encode, host, process_all, records, service
from tests.support.tool_files import WEB_SERVER, nmap_file


def site_id(console: ConsoleUnderTest) -> str:
    return str(console.admin.get("/api/v1/sites").json()[0]["id"])


def form_post(client: TestClient, csrf: str, content: bytes, **fields: str) -> object:
    return client.post(
        "/imports",
        data={"csrf_token": csrf, **fields},
        files={"file": ("hosts.jsonl.gz", content)},
        follow_redirects=False,
    )


def script_post(client: TestClient, csrf: str, content: bytes, **query: str) -> object:
    """As the page's script sends it: the file as the body, the fields in the query."""
    return client.post(
        "/imports",
        params=query,
        content=content,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/gzip"},
    )


def nothing_left(console: ConsoleUnderTest, data_dir: Path) -> None:
    folder = data_dir / "tasks"
    assert (sorted(p.name for p in folder.iterdir()) if folder.exists() else []) == []
    with console.db.read() as conn:
        # every organization has its daily Retention template; nothing else is left
        left = select(func.count()).select_from(tasks).where(tasks.c.type != "retention")
        assert conn.execute(left).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 0


def error_text(page: str) -> str:
    return html.unescape(page)


def test_the_page_offers_the_sites_and_formats_to_operators(console: ConsoleUnderTest) -> None:
    client, _ = signed_in(console, "operator")
    page = client.get("/imports")
    assert page.status_code == 200
    assert 'type="file"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    for label in ("Auto-detect", "Surveyor JSONL", "nmap XML", "masscan", "CSV"):
        assert f">{label}</option>" in page.text
    assert f'<option value="{site_id(console)}"' in page.text
    assert "<progress" in page.text
    assert 'href="/imports"' in client.get("/tasks").text


def test_a_viewer_is_told_why_not(console: ConsoleUnderTest) -> None:
    client, _ = signed_in(console, "viewer")
    page = client.get("/imports")
    assert page.status_code == 403
    assert "needs the operator role" in page.text


def test_a_form_post_creates_the_import_task_and_goes_to_it(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, csrf = signed_in(console, "operator")
    content = encode(records([host("127.0.0.1", services=[service(22)]), host("127.0.0.2")]))
    answer = form_post(client, csrf, content, site=site_id(console), name="Old inventory")
    assert answer.status_code == 303, answer.text
    listed = console.admin.get("/api/v1/tasks", params={"type": "import"}).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    created = next(task for task in items if task["name"] == "Old inventory")
    assert answer.headers["location"] == f"/tasks?tab=all&task={created['id']}"
    assert created["status"] == "processing_queued"
    assert process_all(console.db, tmp_path) == 2  # and the Outlier calculation
    shown = client.get(f"/imports/{created['id']}/state").json()
    assert shown["status"] == "processed"
    assert shown["status_label"] == "Processed"
    assert shown["change_summary"]["new"] == 2


def test_the_page_scripts_upload_answers_with_the_task(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, csrf = signed_in(console, "operator")
    content = encode(records([host("127.0.0.3")]))
    answer = script_post(client, csrf, content, site=site_id(console), format="jsonl")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["task"]["status"] == "processing_queued"
    assert body["url"] == f"/tasks?tab=all&task={body['task']['id']}"
    shown = console.admin.get(f"/api/v1/tasks/{body['task']['id']}").json()
    assert shown["type"] == "import"
    assert shown["created_by"] == "web-operator@example.test"


def test_the_page_takes_an_nmap_file_and_a_wrong_format_is_told_at_its_field(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, csrf = signed_in(console, "operator")
    content = nmap_file(WEB_SERVER)
    refused = script_post(client, csrf, content, site=site_id(console), format="csv")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] in ("file", "format")
    nothing_left(console, tmp_path)
    answer = form_post(client, csrf, content, site=site_id(console), name="From nmap")
    assert answer.status_code == 303, answer.text
    listed = console.admin.get("/api/v1/tasks", params={"type": "import"}).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    created = next(task for task in items if task["name"] == "From nmap")
    assert process_all(console.db, tmp_path) == 2  # and the Outlier calculation
    assets_now = console.admin.get("/api/v1/assets").json()["items"]
    assert len(assets_now) == 1
    assert created["status"] == "processing_queued"


def test_an_upload_without_the_csrf_token_is_refused(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, _ = signed_in(console, "operator")
    answer = script_post(client, "forged", encode(records([host("127.0.0.1")])))
    assert answer.status_code == 403
    nothing_left(console, tmp_path)


def test_a_bad_file_is_shown_at_the_form_naming_the_line(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, csrf = signed_in(console, "operator")
    good = encode(records([host("127.0.0.1")]), compress=False).splitlines(keepends=True)
    broken = b"".join([*good[:2], b"not json at all\n", *good[2:]])
    page = form_post(client, csrf, broken, site=site_id(console), name="kept name")
    assert page.status_code == 400
    text = error_text(page.text)
    assert "line 3" in text
    assert 'id="file-error"' in page.text
    assert 'value="kept name"' in page.text
    scripted = script_post(client, csrf, broken, site=site_id(console))
    assert scripted.status_code == 400
    error = scripted.json()["error"]
    assert error["field"] == "file"
    assert "line 3" in error["message"]
    nothing_left(console, tmp_path)


def test_an_unknown_site_and_a_missing_file_are_shown_at_their_fields(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    client, csrf = signed_in(console, "operator")
    content = encode(records([host("127.0.0.1")]))
    page = form_post(client, csrf, content, site="Nowhere")
    assert page.status_code == 400
    assert 'id="site-error"' in page.text
    assert "there is no site 'Nowhere'" in error_text(page.text)
    scripted = script_post(client, csrf, content, site="Nowhere")
    assert scripted.json()["error"]["field"] == "site"
    missing = client.post(
        "/imports",
        data={"csrf_token": csrf, "site": site_id(console)},
        files={"file": ("", b"")},
    )
    assert missing.status_code == 400
    assert "choose a file" in missing.text
    empty = script_post(client, csrf, b"", site=site_id(console))
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]["message"]
    nothing_left(console, tmp_path)


def test_a_file_over_a_limit_is_shown_naming_the_limit(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tight = JsonlLimits(max_record_bytes=20_000)
    content = encode(records([{**host("127.0.0.1"), "os": "a" * 50_000}]))
    with running_console(db, tmp_path, monkeypatch, task_data_limits=tight) as console:
        client, csrf = signed_in(console, "operator")
        page = form_post(client, csrf, content, site=site_id(console))
        assert page.status_code == 413
        assert RECORD_SETTING in error_text(page.text)
        assert 'id="file-error"' in page.text
        nothing_left(console, tmp_path)
