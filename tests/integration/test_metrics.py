"""`GET /metrics`: what it reports after some activity, on both backends, and who may read it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from surveyor.store.engine import Database
from tests.support.console import ConsoleUnderTest, running_console
from tests.support.explorers import (
    create_scan,
    enroll,
    new_explorer,
    new_scan,
    new_site,
    task_data,
    utcnow,
)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def public_console(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleUnderTest]:
    monkeypatch.setenv("SURVEYOR_METRICS_PUBLIC", "1")
    with running_console(db, tmp_path, monkeypatch) as running:
        yield running


def test_metrics_report_tasks_queue_explorers_latency_and_uploads(
    public_console: ConsoleUnderTest,
) -> None:
    console = public_console
    uploader, scanner = enroll(console), enroll(console)
    first = create_scan(console, explorer_id=uploader.id)
    second = create_scan(console, explorer_id=scanner.id)
    handed = uploader.poll()
    assert handed is not None
    assert handed["id"] == first["id"]
    data = task_data(hosts=3)
    assert uploader.upload(handed, data).status_code in (200, 201, 204)
    running = scanner.poll()
    assert running is not None
    assert running["id"] == second["id"]
    assert scanner.progress(running, probes_sent=40).status_code == 200
    with console.db.write() as conn:
        site = new_site(conn, console.organization_id)
        offline = new_explorer(conn, console.organization_id, online=False)
        new_scan(
            conn,
            console.organization_id,
            site["id"],
            explorer_id=offline["id"],
            start_time=utcnow() - timedelta(hours=1),
        )

    answer = console.anonymous().get("/metrics")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert value(found, "surveyor_tasks", status="processing_queued", type="scan") == 1
    assert value(found, "surveyor_tasks", status="active", type="scan") == 1
    assert value(found, "surveyor_tasks", status="new", type="scan") == 1
    assert value(found, "surveyor_processing_queue_depth") == 1
    assert value(found, "surveyor_processing_queue_oldest_age_seconds") >= 0
    assert value(found, "surveyor_scheduler_lateness_seconds") >= 3500
    assert value(found, "surveyor_explorers") == 3
    assert value(found, "surveyor_explorers_online") == 2
    assert value(found, "surveyor_explorers_busy") == 1
    assert value(found, "surveyor_scan_probes_sent") == 40
    assert value(found, "surveyor_upload_bytes_total") >= len(data)
    tab_total = sum(v for (name, _), v in found.items() if name == "surveyor_tasks_by_tab")
    assert tab_total == 4  # and the organization's hidden daily Retention template
    # Latency by route template: the poll's template, never a raw path with an id in it.
    poll = value(
        found,
        "surveyor_http_request_duration_seconds_count",
        method="POST",
        route="/api/v1/explorer/poll",
        status="2xx",
    )
    assert poll == 2
    routes = {
        dict(labels)["route"]
        for (name, labels) in found
        if name == "surveyor_http_request_duration_seconds_count"
    }
    assert f"/api/v1/explorer/task-data/{first['id']}" not in routes
    assert any("{" in route for route in routes if route.startswith("/api/v1/explorer/tasks"))


def test_the_metrics_need_an_admin_token_unless_made_public(console: ConsoleUnderTest) -> None:
    assert console.anonymous().get("/metrics").status_code == 401
    assert console.as_role("operator").get("/metrics").status_code == 403
    answer = console.admin.get("/metrics")
    assert answer.status_code == 200
    assert "surveyor_processing_queue_depth" in answer.text


def test_public_metrics_need_no_token(public_console: ConsoleUnderTest) -> None:
    assert public_console.anonymous().get("/metrics").status_code == 200


def test_every_answer_carries_a_request_id_and_keeps_a_sane_incoming_one(
    console: ConsoleUnderTest,
) -> None:
    fresh = console.anonymous().get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 16
    kept = console.anonymous().get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42"
    odd = console.anonymous().get("/healthz", headers={"X-Request-Id": 'a b" <script>'})
    assert odd.headers["x-request-id"] != 'a b" <script>'
    refused = console.anonymous().get("/api/v1/tasks")
    assert refused.status_code == 401
    assert refused.headers["x-request-id"]
