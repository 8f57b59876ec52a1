"""Explorers in tests: enroll one through the API and speak its protocol by hand, or build
explorers, zones and scans straight in the store for the launch rule."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import Connection, update

from surveyor.core.task import Task
from surveyor.store import explorers as explorer_store
from surveyor.store import tasks as task_store
from surveyor.store.records import create_record
from surveyor.store.schema import explorers, hosted_zones, sites
from tests.support.console import Api, ConsoleUnderTest

HOST = {
    "version": "9.9.9",
    "hostname": "probe-host",
    "os": "Linux test",
    "addresses": ["127.0.0.5"],
}
_names = itertools.count(1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def task_data(*records: Mapping[str, Any], hosts: int = 1) -> bytes:
    """Valid task data (gzip JSONL): a config record, hosts, a summary."""
    lines: list[Mapping[str, Any]] = [{"type": "config", "targets": "127.0.0.1"}]
    lines += records or [
        {"type": "host", "addresses": [f"127.0.0.{n}"], "services": []} for n in range(1, hosts + 1)
    ]
    lines.append({"type": "summary", "hosts_up": hosts, "stopped": False})
    return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ExplorerUnderTest:
    """An enrolled explorer, speaking the protocol through the test client."""

    client: Any
    id: int
    name: str
    secret: str

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}", **(extra or {})}

    def post(self, path: str, body: Any) -> httpx2.Response:
        response: httpx2.Response = self.client.post(
            f"/api/v1/explorer{path}", json=body, headers=self._headers()
        )
        return response

    def poll(self, wait: float = 0, **host: Any) -> dict[str, Any] | None:
        response = self.post("/poll", {**HOST, **host, "wait": wait})
        assert response.status_code == 200, response.text
        task: dict[str, Any] | None = response.json()["task"]
        return task

    def progress(
        self, task: Mapping[str, Any], collect: float = 0.5, **stats: int
    ) -> httpx2.Response:
        return self.post(
            f"/tasks/{task['id']}/progress",
            {"attempt_token": task["attempt_token"], "collect": collect, "stats": stats},
        )

    def stopped(self, task: Mapping[str, Any]) -> httpx2.Response:
        return self.post(f"/tasks/{task['id']}/stopped", {"attempt_token": task["attempt_token"]})

    def failed(self, task: Mapping[str, Any], error: str) -> httpx2.Response:
        return self.post(
            f"/tasks/{task['id']}/failed",
            {"attempt_token": task["attempt_token"], "error": error},
        )

    def upload(
        self,
        task: Mapping[str, Any],
        data: bytes,
        *,
        checksum: str | None = None,
        partial: bool = False,
    ) -> httpx2.Response:
        def chunks() -> Iterable[bytes]:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        response: httpx2.Response = self.client.put(
            f"/api/v1/explorer/task-data/{task['id']}",
            content=chunks(),
            headers=self._headers(
                {
                    "X-Surveyor-Attempt-Token": task["attempt_token"],
                    "X-Surveyor-Content-SHA256": checksum or sha256(data),
                    "Content-Type": "application/gzip",
                    **({"X-Surveyor-Partial": "true"} if partial else {}),
                }
            ),
        )
        return response


def enrollment_token(admin: Api, **body: Any) -> dict[str, Any]:
    response = admin.post(
        "/api/v1/enrollment-tokens", json={"name": f"token {next(_names)}", **body}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def enroll(console: ConsoleUnderTest, name: str | None = None, **token: Any) -> ExplorerUnderTest:
    """A new explorer of the console's organization, enrolled through the API."""
    plaintext = enrollment_token(console.admin, **token)["token"]
    response = console.client.post(
        "/api/v1/explorer/enroll",
        json={**HOST, "name": name or f"explorer-{next(_names)}"},
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return ExplorerUnderTest(console.client, body["explorer_id"], body["name"], body["secret"])


def create_scan(console: ConsoleUnderTest, **fields: Any) -> dict[str, Any]:
    body = {"name": f"scan {next(_names)}", "params": {"targets": "127.0.0.1"}, **fields}
    response = console.as_role("operator").post("/api/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get_task(console: ConsoleUnderTest, task_id: int) -> dict[str, Any]:
    response = console.admin.get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def events(console: ConsoleUnderTest, task_id: int) -> list[dict[str, Any]]:
    response = console.admin.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# Building blocks in the store, for the launch rule.


def new_site(conn: Connection, organization_id: int, name: str | None = None) -> dict[str, Any]:
    return create_record(
        conn, sites, organization_id, {"name": name or f"site {next(_names)}", "scope": ""}
    )


def new_zone(conn: Connection, organization_id: int, max_concurrent: int = 1) -> dict[str, Any]:
    return create_record(
        conn,
        hosted_zones,
        organization_id,
        {"name": f"zone {next(_names)}", "max_concurrent": max_concurrent},
    )


def new_explorer(
    conn: Connection,
    organization_id: int,
    *,
    online: bool = True,
    site_id: int | None = None,
    zone_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An explorer that checked in just now (online) or two hours ago (offline)."""
    now = now or utcnow()
    explorer, _secret = explorer_store.create_explorer(
        conn,
        organization_id,
        {
            "name": f"explorer {next(_names)}",
            "site_id": site_id,
            "hosted_zone_id": zone_id,
            "last_checkin_at": now if online else now - timedelta(hours=2),
        },
        now=now,
    )
    return dataclasses.asdict(explorer)


def set_checkin(conn: Connection, explorer_id: int, when: datetime | None) -> None:
    conn.execute(
        update(explorers).where(explorers.c.id == explorer_id).values(last_checkin_at=when)
    )


def new_scan(
    conn: Connection,
    organization_id: int,
    site_id: int,
    *,
    explorer_id: int | None = None,
    zone_id: int | None = None,
    start_time: datetime | None = None,
    grace_period: int = 3600,
    now: datetime | None = None,
) -> Task:
    now = now or utcnow()
    return task_store.create_task(
        conn,
        {
            "organization_id": organization_id,
            "site_id": site_id,
            "name": f"scan {next(_names)}",
            "type": "scan",
            "params": {"targets": "127.0.0.1"},
            "explorer_id": explorer_id,
            "hosted_zone_id": zone_id,
            "start_time": start_time or now - timedelta(seconds=1),
            "grace_period": grace_period,
        },
        actor="test",
        now=now - timedelta(seconds=2),
    )
