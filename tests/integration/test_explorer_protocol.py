"""The explorer protocol (SPEC §6) over HTTP on a real console: work by long poll, attempt
tokens on every report, progress, stop, timeouts, and streamed, checksummed, idempotent
uploads whose data the task then serves."""

from __future__ import annotations

import gzip
import json
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from surveyor.service import explorers as explorer_service
from surveyor.store.engine import Database
from surveyor.store.taskdata import task_data_path
from tests.integration.test_change_bus import WAIT_SECONDS, parked_poll
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import (
    HOST,
    create_scan,
    enroll,
    events,
    get_task,
    sha256,
    task_data,
    utcnow,
)
from tests.support.inventory_data import Place, host, process_all, queue_hosts


def launched_scan(console: ConsoleUnderTest) -> tuple[Any, dict[str, Any]]:
    """An explorer and the scan it received."""
    explorer = enroll(console)
    create_scan(console, explorer_id=explorer.id)
    task = explorer.poll()
    assert task is not None
    return explorer, task


def supervise(console: ConsoleUnderTest, *, after: float, since_seconds_ago: float = 3600) -> None:
    """One supervisor round, `after` seconds from now (timeouts: 60 s silence, 30 s stop)."""
    now = utcnow() + timedelta(seconds=after)
    timeouts = explorer_service.Timeouts(
        silence_seconds=60,
        stop_seconds=30,
        watching_since=utcnow() - timedelta(seconds=since_seconds_ago),
    )
    with console.db.write() as conn:
        explorer_service.supervise(conn, now=now, timeouts=timeouts)


def test_a_poll_hands_out_a_due_scan_with_its_params_and_a_fresh_attempt_token(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    scan = create_scan(console, explorer_id=explorer.id, params={"targets": "127.0.0.1"})

    task = explorer.poll()

    assert task is not None
    assert task["id"] == scan["id"]
    assert task["attempt"] == 1
    assert task["params"]["targets"] == "127.0.0.1"
    assert task["scope_cap"] == 65536
    assert task["report_interval"] <= 1.0
    shown = get_task(console, scan["id"])
    assert shown["status"] == "active"
    assert shown["explorer_id"] == explorer.id
    explorer_view = console.admin.get(f"/api/v1/explorers/{explorer.id}").json()
    assert explorer_view["current_task_id"] == scan["id"]


def test_a_poll_with_nothing_to_do_is_held_then_answers_no_task(
    console: ConsoleUnderTest,
) -> None:
    explorer = enroll(console)
    answer: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: answer.update(task=explorer.poll(wait=1.0)))
    waiter.start()

    held = console.client.app.state.console.explorer_work.wait_parked(1, WAIT_SECONDS)
    waiter.join(WAIT_SECONDS)

    assert held, "the poll was answered without being held"
    assert answer == {"task": None}


def test_a_held_poll_returns_as_soon_as_a_scan_for_the_explorer_is_created(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poll would not look at the database again for ten minutes: only the news of the
    # created scan can answer it before its wait is over.
    with running_console(db, tmp_path, monkeypatch, poll_recheck_seconds=600) as console:
        explorer = enroll(console)
        answered = parked_poll(console, explorer)

        scan = create_scan(console, explorer_id=explorer.id)

        task = answered()
    assert task is not None, "the poll was not woken"
    assert task["id"] == scan["id"]


def test_progress_is_stored_with_its_stats_and_answered_with_stop_false(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)

    response = explorer.progress(task, 0.25, hosts_done=1, hosts_total=4, open_ports=2)

    assert response.json() == {"stop": False}
    shown = get_task(console, task["id"])
    assert shown["progress"]["collect"] == 0.25
    assert shown["stats"] == {"hosts_done": 1, "hosts_total": 4, "open_ports": 2}


def test_a_stop_reaches_the_explorer_in_its_next_report_and_its_confirmation_stops_the_task(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)

    stopping = console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    assert stopping.json()["status"] == "stopping"
    assert explorer.progress(task).json() == {"stop": True}
    confirmed = explorer.stopped(task)

    assert confirmed.json()["status"] == "stopped"
    assert get_task(console, task["id"])["status"] == "stopped"
    last = events(console, task["id"])[-1]
    assert last["to_status"] == "stopped"
    assert "stopped the scan" in last["message"]


def stopped_scan_data(*addresses: str) -> bytes:
    """What a scan stopped mid-way uploads: the hosts it finished, a summary saying so."""
    lines: list[dict[str, Any]] = [{"type": "config", "targets": "127.0.0.1-127.0.0.3"}]
    lines += [{"type": "host", "addresses": [a], "services": []} for a in addresses]
    lines.append({"type": "summary", "hosts": len(addresses), "stopped": True})
    return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())


def test_a_stopped_scan_uploads_what_it_found_and_the_task_ends_stopped_with_its_data(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    """Issue 10.8: a scan stopped at 34 % had no data, and reprocess answered 409."""
    explorer, task = launched_scan(console)
    explorer.progress(task, 0.34)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    assert explorer.progress(task, 0.34).json() == {"stop": True}
    data = stopped_scan_data("127.0.0.1")

    answer = explorer.upload(task, data, partial=True)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stopped"
    shown = get_task(console, task["id"])
    assert shown["status"] == "stopped"
    assert shown["size_data"] == len(data)
    assert shown["data_partial"] is True
    assert shown["progress"]["collect"] == 0.34
    assert task_data_path(tmp_path, task["id"]).read_bytes() == data
    path = [event["to_status"] for event in events(console, task["id"])]
    assert path[-3:] == ["active", "stopping", "stopped"]
    assert "uploaded what it had found" in events(console, task["id"])[-1]["message"]
    download = console.as_role("viewer").get(f"/api/v1/tasks/{task['id']}/data")
    assert gzip.decompress(download.content) == gzip.decompress(data)
    again = explorer.upload(task, data, partial=True)
    assert again.json()["already_stored"] is True


def test_a_stopped_scans_data_is_processed_on_request_and_marks_nothing_offline(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    widened = console.admin.patch(
        f"/api/v1/sites/{site_id}", json={"allowed_scope": "127.0.0.0/29"}
    )
    assert widened.status_code == 200, widened.text
    place = Place(console.organization_id, site_id)
    queue_hosts(console.db, tmp_path, place, [host("127.0.0.1"), host("127.0.0.2")])
    process_all(console.db, tmp_path)
    explorer = enroll(console)
    scan = create_scan(console, explorer_id=explorer.id, params={"targets": "127.0.0.1-127.0.0.3"})
    task = explorer.poll()
    assert task is not None
    assert task["id"] == scan["id"]
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    explorer.upload(task, stopped_scan_data("127.0.0.1", "127.0.0.3"), partial=True)

    queued = console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/reprocess")
    assert queued.status_code == 200, queued.text
    assert queued.json()["status"] == "processing_queued"
    assert process_all(console.db, tmp_path) == 2  # the scan, and the Outlier calculation it queued

    done = get_task(console, task["id"])
    assert done["status"] == "processed"
    assert done["change_summary"]["new"] == 1
    assert done["change_summary"]["unchanged"] == 1
    assert done["change_summary"]["offline"] == 0
    alive = {
        item["address"]: item["alive"]
        for item in console.admin.get("/api/v1/assets").json()["items"]
    }
    assert alive == {"127.0.0.1": True, "127.0.0.2": True, "127.0.0.3": True}
    path = [event["to_status"] for event in events(console, task["id"])]
    assert path[-4:] == ["stopped", "processing_queued", "processing", "processed"]


def test_the_card_of_a_stopped_scan_with_data_offers_to_process_it(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    explorer.upload(task, stopped_scan_data("127.0.0.1"), partial=True)
    client, csrf = signed_in(console, "operator")

    card = client.get(f"/tasks?tab=failed&task={task['id']}").text

    assert '<span class="tag" title="The scan was stopped' in card
    assert re.search(r'data-action="reprocess".*?<button[^>]*>Process data</button>', card, re.S)
    done = client.post(f"/tasks/{task['id']}/reprocess", data={"csrf_token": csrf, "tab": "failed"})
    assert done.status_code == 303
    assert get_task(console, task["id"])["status"] == "processing_queued"


def test_a_stopped_task_without_data_cannot_be_processed(console: ConsoleUnderTest) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    explorer.stopped(task)

    refused = console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/reprocess")

    assert refused.status_code == 409
    assert "no stored data" in refused.json()["error"]["message"]


def test_data_arriving_after_a_forced_stop_is_kept_on_the_stopped_task(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")
    supervise(console, after=31)
    assert get_task(console, task["id"])["status"] == "stopped"
    data = stopped_scan_data("127.0.0.1")

    late = explorer.upload(task, data, partial=True)

    assert late.status_code == 200, late.text
    shown = get_task(console, task["id"])
    assert (shown["status"], shown["size_data"], shown["data_partial"]) == (
        "stopped",
        len(data),
        True,
    )
    assert events(console, task["id"])[-1]["kind"] == "data"
    other = explorer.upload(task, stopped_scan_data("127.0.0.9"), partial=True)
    assert other.status_code == 409
    assert task_data_path(tmp_path, task["id"]).read_bytes() == data


def test_a_stopped_scans_upload_from_a_superseded_attempt_is_refused(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")

    stale = explorer.upload({**task, "attempt_token": "not-this-attempt"}, stopped_scan_data())

    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_attempt"
    assert get_task(console, task["id"])["status"] == "stopping"
    assert not task_data_path(tmp_path, task["id"]).exists()


def test_invalid_data_from_a_scan_being_stopped_stops_it_without_data(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")

    refused = explorer.upload(task, gzip.compress(b'{"type": "host"}\n'), partial=True)

    assert refused.status_code == 422
    shown = get_task(console, task["id"])
    assert (shown["status"], shown["size_data"], shown["error"]) == ("stopped", 0, None)
    assert "nothing was kept" in events(console, task["id"])[-1]["message"]
    assert not task_data_path(tmp_path, task["id"]).exists()


def test_an_upload_the_explorer_marks_partial_is_queued_as_partial(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)

    answer = explorer.upload(task, task_data(), partial=True)

    assert answer.json()["status"] == "processing_queued"
    assert get_task(console, task["id"])["data_partial"] is True


def test_a_stop_the_explorer_never_confirms_is_forced_after_the_timeout_with_a_note(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)
    console.as_role("operator").post(f"/api/v1/tasks/{task['id']}/stop")

    supervise(console, after=10)
    assert get_task(console, task["id"])["status"] == "stopping"
    supervise(console, after=31)

    assert get_task(console, task["id"])["status"] == "stopped"
    note = events(console, task["id"])[-1]["message"]
    assert (
        note
        == f"force-stopped: the explorer '{explorer.name}' did not confirm the stop within 30 s"
    )


def test_a_silent_explorers_scan_is_canceled_with_an_error_saying_so(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)

    supervise(console, after=30)
    assert get_task(console, task["id"])["status"] == "active"
    supervise(console, after=61)

    canceled = get_task(console, task["id"])
    assert canceled["status"] == "canceled"
    assert canceled["error"] == (
        f"the explorer '{explorer.name}' stopped reporting for 60 s while scanning; "
        "the scan was canceled"
    )
    late = explorer.progress(task)
    assert late.status_code == 409
    assert get_task(console, task["id"])["status"] == "canceled"


def test_a_console_that_was_down_does_not_blame_explorers_for_its_own_downtime(
    console: ConsoleUnderTest,
) -> None:
    _, task = launched_scan(console)

    supervise(console, after=120, since_seconds_ago=-100)

    assert get_task(console, task["id"])["status"] == "active"


def test_a_report_from_a_superseded_attempt_is_refused_and_changes_nothing(
    console: ConsoleUnderTest,
) -> None:
    explorer, first = launched_scan(console)
    explorer.progress(first, 0.5)
    second = explorer.poll()  # the explorer restarted: the scan is launched again
    assert second is not None
    assert second["id"] == first["id"]
    assert second["attempt"] == 2

    stale = explorer.progress(first, 0.9)

    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_attempt"
    assert explorer.failed(first, "late failure").status_code == 409
    assert explorer.upload(first, task_data()).status_code == 409
    shown = get_task(console, first["id"])
    assert shown["status"] == "active"
    assert shown["progress"]["collect"] == 0.0
    assert any(event["kind"] == "relaunched" for event in events(console, first["id"]))


def test_an_explorer_that_lost_a_scan_too_often_gets_it_canceled(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)
    explorer.poll()
    explorer.poll()

    assert explorer.poll() is None

    canceled = get_task(console, task["id"])
    assert canceled["status"] == "canceled"
    assert "lost the scan 3 times" in canceled["error"]


def test_a_failure_report_cancels_the_scan_with_the_explorers_reason(
    console: ConsoleUnderTest,
) -> None:
    explorer, task = launched_scan(console)

    explorer.failed(task, "no usable network interface")

    canceled = get_task(console, task["id"])
    assert canceled["status"] == "canceled"
    assert canceled["error"] == (
        f"the scan failed on explorer '{explorer.name}': no usable network interface"
    )


def test_an_upload_queues_the_task_for_processing_and_its_data_downloads(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    data = task_data(hosts=3)

    answer = explorer.upload(task, data)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "processing_queued"
    assert answer.json()["already_stored"] is False
    shown = get_task(console, task["id"])
    assert shown["status"] == "processing_queued"
    assert shown["size_data"] == len(data)
    assert shown["progress"]["collect"] == 1.0
    path = [event["to_status"] for event in events(console, task["id"])]
    assert path[-3:] == ["active", "scanned", "processing_queued"]
    assert task_data_path(tmp_path, task["id"]).read_bytes() == data

    download = console.as_role("viewer").get(f"/api/v1/tasks/{task['id']}/data")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    assert f"surveyor-task-{task['id']}.jsonl.gz" in download.headers["content-disposition"]
    assert download.headers["x-surveyor-content-sha256"] == sha256(data)
    assert gzip.decompress(download.content) == gzip.decompress(data)


def test_an_upload_whose_checksum_does_not_match_is_refused_and_nothing_is_stored(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    data = task_data()

    refused = explorer.upload(task, data, checksum=sha256(b"something else"))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "checksum_mismatch"
    assert not task_data_path(tmp_path, task["id"]).exists()
    assert list(task_data_path(tmp_path, task["id"]).parent.iterdir()) == []
    shown = get_task(console, task["id"])
    assert shown["status"] == "scanned"
    assert shown["size_data"] == 0
    assert console.admin.get(f"/api/v1/tasks/{task['id']}/data").status_code == 404
    retried = explorer.upload(task, data)
    assert retried.json()["status"] == "processing_queued"


def test_uploading_the_same_data_again_is_answered_as_stored_without_storing_it_twice(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)
    data = task_data()
    first = explorer.upload(task, data)
    stored_at = task_data_path(tmp_path, task["id"]).stat().st_mtime_ns

    again = explorer.upload(task, data)

    assert again.status_code == 200
    assert again.json()["already_stored"] is True
    assert again.json()["status"] == first.json()["status"]
    assert task_data_path(tmp_path, task["id"]).stat().st_mtime_ns == stored_at
    queued = [e for e in events(console, task["id"]) if e["to_status"] == "processing_queued"]
    assert len(queued) == 1
    different = explorer.upload(task, task_data(hosts=2))
    assert different.status_code == 409


def test_an_upload_that_is_not_task_data_cancels_the_task(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    explorer, task = launched_scan(console)

    refused = explorer.upload(task, gzip.compress(b'{"type": "host"}\n'))

    assert refused.status_code == 422
    shown = get_task(console, task["id"])
    assert shown["status"] == "canceled"
    assert "not Surveyor task data" in shown["error"]
    assert not task_data_path(tmp_path, task["id"]).exists()


def test_a_task_that_collected_nothing_has_no_data_to_download(
    console: ConsoleUnderTest,
) -> None:
    scan = create_scan(console)

    missing = console.admin.get(f"/api/v1/tasks/{scan['id']}/data")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "no_data"


def test_uploads_may_be_larger_than_other_request_bodies(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_console(db, tmp_path, monkeypatch, max_body_bytes=4096) as console:
        explorer, task = launched_scan(console)
        data = task_data(
            *({"type": "host", "addresses": [f"127.0.{n // 250}.{n % 250}"]} for n in range(2000))
        )
        assert len(data) > 4096
        too_big = explorer.post("/poll", {**HOST, "wait": 0, "os": "x" * 5000})

        uploaded = explorer.upload(task, data)

    assert too_big.status_code == 413
    assert uploaded.status_code == 200, uploaded.text
