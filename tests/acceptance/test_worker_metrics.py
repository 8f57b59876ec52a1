"""`surveyor worker --metrics-port`: the worker process serves Prometheus metrics, and with
SURVEYOR_LOG_FORMAT=json every line it logs is a JSON object."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from surveyor.store import accounts
from surveyor.store.engine import Database
from tests.acceptance.conftest import SURVEYOR, clean_environment, free_loopback_port
from tests.support.explorers import new_explorer, new_scan, new_site, utcnow

STARTUP_SECONDS = 60.0


def scrape(url: str, process: subprocess.Popen[bytes], log: Path) -> str:
    """The first answer of the metrics port once it listens."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx2.Client(timeout=5, trust_env=False) as client:  # not a new client each poll
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the worker exited: {log.read_text(errors='replace')}")
            try:
                return client.get(url).text
            except httpx2.TransportError:
                time.sleep(0.05)
    pytest.fail(f"the metrics port never answered: {log.read_text(errors='replace')}")


def test_the_worker_serves_metrics_on_its_port_and_logs_json(db: Database, tmp_path: Path) -> None:
    with db.write() as conn:
        org = accounts.find_organization(conn, "Metrics") or accounts.create_organization(
            conn, "Metrics"
        )
        site = new_site(conn, org["id"])
        offline = new_explorer(conn, org["id"], online=False)
        new_scan(
            conn,
            org["id"],
            site["id"],
            explorer_id=offline["id"],
            start_time=utcnow() - timedelta(minutes=10),
        )
    port = free_loopback_port()
    log = tmp_path / "worker.log"
    env = clean_environment() | {
        "SURVEYOR_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "SURVEYOR_DATA": str(tmp_path),
        "SURVEYOR_LOG_FORMAT": "json",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [SURVEYOR, "worker", "--metrics-port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics", process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert found[("surveyor_worker_up", ())] == 1
    assert found[("surveyor_tasks", (("status", "new"), ("type", "scan")))] == 1
    assert found[("surveyor_explorers_online", ())] == 0
    assert found[("surveyor_scheduler_lateness_seconds", ())] >= 500
    logged = [
        line
        for line in log.read_text().splitlines()
        if line.startswith("{")  # the worker's rich banner lines are not log records
    ]
    assert logged, log.read_text()
    assert all(json.loads(line)["logger"] for line in logged)
