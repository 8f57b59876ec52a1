"""Task data for inventory tests: host records in the SPEC §7 format, files, queued tasks."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.processing.worker import Worker, WorkerSettings
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.engine import Database
from surveyor.store.records import create_record
from surveyor.store.schema import assets, services, sites
from surveyor.store.taskdata import task_data_path

FINISHED_AT = "2026-03-01T12:00:00Z"
#: The ports a test file's config record says were probed, unless a test says otherwise.
CONFIG_PORTS = "22,80,443"


def service(
    port: int,
    *,
    proto: str = "tcp",
    banner: str | None = None,
    product: str | None = None,
    http: Mapping[str, Any] | None = None,
    tls: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "port": port,
        "proto": proto,
        "state": "open",
        "banner": banner,
        "product": product,
        "http": dict(http) if http is not None else None,
        "tls": dict(tls) if tls is not None else None,
    }


def host(
    *addresses: str,
    mac: str | None = None,
    hostnames: Sequence[str] = (),
    services: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "type": "host",
        "addresses": list(addresses),
        "mac": mac,
        "hostnames": list(hostnames),
        "services": [dict(s) for s in services],
        "timing": {"rtt_ms": 1.5},
    }


def records(
    hosts: Iterable[Mapping[str, Any]],
    *,
    targets: str | None = "127.0.0.0/24",
    excludes: str = "",
    ports: str | None = CONFIG_PORTS,
    finished_at: str | None = FINISHED_AT,
) -> list[dict[str, Any]]:
    """A whole task data file: config, hosts, summary."""
    hosts = list(hosts)
    config: dict[str, Any] = {"type": "config", "excludes": excludes, "probes": ["banner"]}
    if targets is not None:
        config["targets"] = targets
    if ports is not None:
        config["ports"] = ports
    summary: dict[str, Any] = {"type": "summary", "hosts": len(hosts)}
    if finished_at is not None:
        summary["finished_at"] = finished_at
    return [config, *hosts, summary]


def encode(lines: Iterable[Mapping[str, Any] | str], *, compress: bool = True) -> bytes:
    text = "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
    ).encode()
    return gzip.compress(text) if compress else text


@dataclass(frozen=True)
class Place:
    """An organization and a site to merge into."""

    organization_id: int
    site_id: int


def make_place(db: Database, organization: str = "Acme", site: str = "HQ") -> Place:
    with db.write() as conn:
        org = accounts.find_organization(conn, organization) or accounts.create_organization(
            conn, organization
        )
        row = create_record(conn, sites, org["id"], {"name": site, "scope": "127.0.0.0/24"})
    return Place(org["id"], row["id"])


def queue_data(
    db: Database,
    data_dir: Path,
    place: Place,
    content: bytes,
    *,
    name: str = "data",
    task_type: TaskType = TaskType.IMPORT,
    params: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> int:
    """A task of `place` in `processing_queued` whose stored data is `content`; `params`
    are what the console stored for it (a scan's targets and excludes: its scope), and
    `partial` says the console received the data as partial (a stopped scan's)."""
    with db.write() as conn:
        task = task_store.create_task(
            conn,
            {
                "organization_id": place.organization_id,
                "site_id": place.site_id,
                "name": name,
                "type": task_type.value,
                "params": dict(params or {}),
            },
            actor="test",
        )
        path = task_data_path(data_dir, task.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        steps = [TaskStatus.ACTIVE, TaskStatus.SCANNED] if task_type is TaskType.SCAN else []
        for step in steps:
            task_store.transition(conn, place.organization_id, task.id, step, actor="test")
        task_store.transition(
            conn,
            place.organization_id,
            task.id,
            TaskStatus.PROCESSING_QUEUED,
            actor="test",
            changes={
                "size_data": len(content),
                "data_sha256": hashlib.sha256(content).hexdigest(),
                **({"data_partial": True} if partial else {}),
            },
        )
    return int(task.id)


def queue_hosts(
    db: Database, data_dir: Path, place: Place, hosts: Iterable[Mapping[str, Any]], **config: Any
) -> int:
    """A queued task holding these hosts. With targets (the default) it is a scan whose
    stored params scan what its config record says (targets, excludes, ports); without, an
    import (no scope, no ports of its own)."""
    content = encode(records(hosts, **config))
    targets = config.get("targets", "127.0.0.0/24")
    if targets is None:
        return queue_data(db, data_dir, place, content)
    params = {"targets": targets, "excludes": config.get("excludes", "")}
    ports = config.get("ports", CONFIG_PORTS)
    if ports is not None:
        params["tcp_ports"] = ports
    return queue_data(db, data_dir, place, content, task_type=TaskType.SCAN, params=params)


def process_all(db: Database, data_dir: Path, **settings: Any) -> int:
    """Run one worker until the queue is empty; how many tasks it claimed."""
    worker = Worker(db, data_dir, WorkerSettings(**settings), name="test-worker")
    return worker.drain()


def task(db: Database, place: Place, task_id: int) -> dict[str, Any]:
    with db.read() as conn:
        found = task_store.get_task(conn, place.organization_id, task_id)
    assert found is not None
    return found


def inventory(db: Database, place: Place) -> list[dict[str, Any]]:
    """The site's assets with their services, comparable across sites and runs."""
    with db.read() as conn:
        rows = conn.execute(
            select(assets).where(assets.c.site_id == place.site_id).order_by(assets.c.address_key)
        ).mappings()
        found = [{**row, "services": []} for row in rows]
        by_id = {row["id"]: row for row in found}
        in_site = select(assets.c.id).where(assets.c.site_id == place.site_id)
        for service in conn.execute(
            select(services)
            .where(services.c.asset_id.in_(in_site))
            .order_by(services.c.asset_id, services.c.proto, services.c.port)
        ).mappings():
            by_id[service["asset_id"]]["services"].append(
                {k: v for k, v in service.items() if k not in ("id", "asset_id")}
            )
    return found


IDENTITY_FREE = ("id", "site_id", "organization_id", "last_task_id", "last_run_id")


def comparable(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Inventory rows without the ids that differ between sites, tasks and runs."""
    return [{k: v for k, v in row.items() if k not in IDENTITY_FREE} for row in rows]
