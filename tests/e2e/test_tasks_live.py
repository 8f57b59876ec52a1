"""The Tasks overview in a real browser, with real scans of loopback addresses run by the
embedded explorer of `surveyor up` and processed by its workers: statuses, rings and counts
move on the page without a reload."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    BROWSER_TIME_ZONE,
    NARROW,
    RunningConsole,
    create_task,
    screenshot,
    wait_for_status,
)

# Records every status label a task's badges show, in order, and marks the document so a
# reload would be noticed (the mark would be gone).
WATCH_STATUSES = """
(taskId) => {
  window.__noReload = true;
  window.__seen = [];
  const note = () => {
    const badge = document.querySelector(`#task-card [data-status-of="${taskId}"] .st-label`);
    const label = badge ? badge.textContent : null;
    if (label && window.__seen[window.__seen.length - 1] !== label) window.__seen.push(label);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        const inBadge = node.parentElement?.closest?.(`[data-status-of="${taskId}"]`);
        if (node.nodeType === Node.TEXT_NODE && inBadge && window.__seen.at(-1) !== node.data) {
          window.__seen.push(node.data);
        }
      }
    }
    note();
  }).observe(document.getElementById("overview"), {childList: true, subtree: true});
  note();
}
"""


def seen_statuses(page: Page) -> list[str]:
    seen: list[str] = page.evaluate("window.__seen")
    return seen


def card_status(page: Page) -> str:
    return page.locator("#task-card .card-status .st-label").inner_text()


def test_a_new_scan_passes_active_processing_completed_without_a_reload(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.get_by_role("link", name="New scan").click()
    expect(page.get_by_label("Targets")).to_have_value("127.0.0.1")  # the site's scope
    page.get_by_label("Name").fill("loopback sweep")
    page.get_by_label("Targets").fill("127.0.0.1-127.0.0.4")
    page.get_by_label("custom", exact=True).check()
    page.get_by_label("Custom ports").fill("1-300")
    page.get_by_label("Rate (probes per second)").fill("200")
    screenshot(page, "new-scan-form")
    page.get_by_role("button", name="Create scan").click()

    page.wait_for_url(re.compile(r"/tasks\?tab=all&task=\d+"))
    task_id = int(re.search(r"task=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    expect(page.locator("#card-title")).to_contain_text("loopback sweep")
    page.evaluate(WATCH_STATUSES, task_id)
    completed_before = int(page.locator('[data-count="completed"]').inner_text())

    expect(page.locator("#task-card .card-status")).to_contain_text("Active")
    # the outer ring moves while the scan runs
    collect = page.locator('#task-card [data-ring-text="collect"]').first
    expect(collect).to_have_text(re.compile(r"^([1-9]\d?)%$"), timeout=30_000)
    screenshot(page, "task-card-active", full_page=False)

    expect(page.locator("#task-card .card-status")).to_contain_text("Processed", timeout=60_000)
    assert page.evaluate("window.__noReload") is True, "the page was reloaded"
    seen = seen_statuses(page)
    assert "Active" in seen
    assert any(label.startswith("Processing") for label in seen), seen
    assert seen[-1] == "Processed"
    assert seen.index("Active") < seen.index("Processed")
    expect(page.locator('#task-card [data-ring-text="collect"]').first).to_have_text("100%")
    expect(page.locator('#task-card [data-ring-text="process"]').first).to_have_text("100%")
    expect(page.locator("#changes-title")).to_be_visible()
    # the scan, and the system tasks its processing may have queued and finished by now: the
    # Outlier calculation and the first refresh of the organization's three reports
    completed = page.locator('[data-count="completed"]')
    expect(completed).not_to_have_text(str(completed_before))
    assert completed_before + 1 <= int(completed.inner_text()) <= completed_before + 5
    expect(page.get_by_role("link", name="Download data")).to_be_visible()
    report_link = page.get_by_role("link", name="Download change report")
    expect(report_link).to_be_visible()
    report = page.request.get(f"{console.url}{report_link.get_attribute('href')}")
    assert report.ok
    lines = [json.loads(line) for line in report.text().splitlines() if line.strip()]
    assert lines[0]["type"] == "report"
    assert lines[0]["status"] == "processed"
    changes = [line for line in lines if line["type"] == "change"]
    # every change the summary counts is listed, one per asset
    kinds = [change["kind"] for change in changes]
    assert kinds
    for kind in set(kinds):
        assert kinds.count(kind) == lines[0]["summary"][kind], (kind, lines[0]["summary"])
    assert len({change["asset_id"] for change in changes}) == len(changes)
    screenshot(page, "task-card-processed")

    page.set_viewport_size(NARROW)
    screenshot(page, "task-card-processed-narrow")
    screenshot(page, "task-card-processed-phone", full_page=False)


def test_stopping_a_running_scan(admin_page: Page, console: RunningConsole) -> None:
    task = create_task(
        console,
        name="long sweep",
        params={"targets": "127.0.0.1", "tcp_ports": "1-65535", "rate": 100},
    )
    wait_for_status(console, task["id"], {"active"})
    page = admin_page
    page.goto(f"{console.url}/tasks?tab=active&task={task['id']}")
    page.evaluate(WATCH_STATUSES, task["id"])
    expect(page.locator("#task-card .card-status")).to_contain_text("Active")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#task-card .card-status")).to_contain_text("Stopped", timeout=30_000)
    assert page.evaluate("window.__noReload") is True
    assert "Stopping" in seen_statuses(page) or "Stopped" in seen_statuses(page)
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.locator("#task-card .timeline")).to_contain_text("stop requested by")
    expect(page.locator('[data-count="active"]')).to_have_text("0")
    screenshot(page, "task-card-stopped", full_page=False)


def test_a_recurring_scan_is_previewed_paused_resumed_and_lists_its_runs(
    admin_page: Page, console: RunningConsole
) -> None:
    page = admin_page
    page.goto(f"{console.url}/tasks/new")
    page.get_by_label("Name").fill("weekly loopback")
    page.get_by_label("Custom ports").fill("22,80,443")
    page.get_by_label("Recurring", exact=True).check()
    page.get_by_label("Repeat").select_option("weekly")
    page.get_by_label("Wed").check()
    page.get_by_label("At (local time)").fill("03:30")
    # the zone starts as the browser's own
    expect(page.get_by_label("Time zone")).to_have_value(BROWSER_TIME_ZONE)
    preview = page.locator("#preview-list li")
    expect(preview).to_have_count(5)
    expect(preview.first).to_contain_text("03:30 Europe/Berlin")
    expect(page.locator("#preview-description")).to_contain_text("Mon, Wed")

    # a wrong zone is named at its field as you type, and the preview waits for a valid one
    page.get_by_label("Time zone").fill("Europe/Berln")
    at_field = page.locator("#timezone").locator("xpath=..").locator(".field-error")
    expect(at_field).to_contain_text("did you mean 'Europe/Berlin'")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    expect(preview).to_have_count(0)
    screenshot(page, "new-recurring-form-error")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    expect(preview).to_have_count(5)
    screenshot(page, "new-recurring-form")

    page.get_by_role("button", name="Create scan").click()
    page.wait_for_url(re.compile(r"/tasks\?tab=recurring&task=\d+"))
    expect(page.locator("#task-card .schedule")).to_contain_text("Europe/Berlin")
    expect(page.locator("#runs-title")).to_be_visible()
    page.evaluate("window.__noReload = true")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#task-card .card-status")).to_contain_text("Paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#task-card .card-status")).to_contain_text("New")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()

    page.get_by_role("button", name="Run now").click()
    run = page.locator(".runs tbody tr")
    expect(run).to_have_count(1)
    # the run is scanned and processed while we watch
    expect(run.first.locator(".st-label")).to_have_text("Processed", timeout=60_000)
    # and the refreshed card shows what it found
    expect(run.first.locator('td[data-label="Changes"]')).to_have_text(re.compile(r"\d+ \w+"))
    expect(page.locator('[data-count="processing"]')).to_have_text("0")
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#task-card .timeline")).to_contain_text("paused by")
    expect(page.locator("#task-card .timeline")).to_contain_text("resumed by")
    screenshot(page, "recurring-with-runs")

    run.first.get_by_role("link").click()
    expect(page.locator("#task-card")).to_contain_text("Run of")
    page.go_back()
    expect(page.locator("#task-card .schedule")).to_contain_text("Europe/Berlin")
