"""The Import page in a real browser, on the console of `surveyor up` with its workers: a
real file dropped on the page is uploaded with a progress bar, then its import task is
followed live to Processed with its change summary, and its assets are found."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import RunningConsole, screenshot
from tests.support.inventory_data import encode, host, records, service

# Records every text the upload bar and the status line show, and marks the document so a
# reload would be noticed (the mark would be gone).
WATCH = """
() => {
  window.__noReload = true;
  window.__bar = [];
  window.__status = [];
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("import-status");
  new MutationObserver(() => window.__bar.push(bar.textContent))
    .observe(bar, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.__status.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}
"""

DROP = """
([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, {type: "application/x-ndjson"}));
  return transfer;
}
"""


def test_a_dropped_file_is_uploaded_with_a_bar_and_followed_to_processed(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.goto(f"{console.url}/tasks")
    page.get_by_role("link", name="Import a file").click()
    expect(page).to_have_url(f"{console.url}/imports")
    hosts = [
        host("127.0.5.1", services=[service(22), service(80)]),
        host("127.0.5.2", services=[service(443)]),
        host("127.0.5.3"),
    ]
    text = encode(records(hosts, targets="127.0.5.0/24"), compress=False).decode()
    page.get_by_label("Name (optional)").fill("legacy spreadsheet")
    expect(page.get_by_label("Format")).to_have_value("")  # auto-detect
    page.evaluate(WATCH)

    transfer = page.evaluate_handle(DROP, ["legacy.jsonl", text])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    assert page.evaluate("document.getElementById('file').files[0].name") == "legacy.jsonl"
    page.get_by_role("button", name="Import").click()

    bar = page.locator("#upload-bar")
    expect(bar).to_be_visible()
    expect(bar).to_have_text("100%")
    status = page.locator("#import-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("Import task: Processed", timeout=60_000)
    expect(page.locator("#import-summary")).to_have_text("Changes: 3 new, 3 total")
    screenshot(page, "import-processed")

    assert page.evaluate("window.__noReload") is True
    seen_bar: list[str] = page.evaluate("window.__bar")
    assert seen_bar
    assert seen_bar[-1] == "100%"
    assert all(re.fullmatch(r"\d{1,3}%", value) for value in seen_bar)
    seen_status: list[str] = page.evaluate("window.__status")
    assert seen_status[0] == "Uploading legacy.jsonl…"
    assert seen_status[-1] == "Import task: Processed"

    task_link = page.get_by_role("link", name=re.compile("Open the import task"))
    expect(task_link).to_contain_text("legacy spreadsheet")
    expect(task_link).to_have_attribute("href", re.compile(r"^/tasks\?tab=all&task=\d+$"))
    page.get_by_role("link", name="See the assets").click()
    for address in ("127.0.5.1", "127.0.5.2", "127.0.5.3"):
        expect(page.get_by_role("link", name=address, exact=True)).to_be_visible()


def test_a_refused_file_is_shown_at_the_form(admin_page: Page, console: RunningConsole) -> None:
    page = admin_page
    page.goto(f"{console.url}/imports")
    page.get_by_label("File").set_input_files(
        files=[{"name": "broken.jsonl", "mimeType": "text/plain", "buffer": b"not json\n"}]
    )
    page.get_by_role("button", name="Import").click()
    errors = page.locator("#form-errors")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("line 1")
    expect(page.get_by_label("File")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#import-progress")).to_be_hidden()
