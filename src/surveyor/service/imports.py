"""Imports: what turning an uploaded, checked task data file into an `import` task means.

The console receives and checks the file (`console/routes/imports.py`); this module picks
the site, creates the task, puts the file in place as its task data, queues it for
processing and audits the import, in one transaction: a refusal or a failure leaves no task
and no file behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from surveyor.core import kinds
from surveyor.core.resources import Site
from surveyor.core.task import Task
from surveyor.core.tasks import TaskStatus
from surveyor.service import audit
from surveyor.store import accounts
from surveyor.store import tasks as task_store
from surveyor.store.accounts import Principal
from surveyor.store.records import find_site, get_site

#: The largest site id a `site` given by number may name (the API's id bound).
_MAX_SITE_ID = 2**63 - 1


class ImportRefused(Exception):
    """The import cannot be made as asked; `field` names what to change, if anything."""

    def __init__(self, message: str, *, field: str | None = None, site: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.site = site


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """A received file that passed the task data checks, waiting at `path`."""

    path: Path
    size: int
    sha256: str
    hosts: int


def resolve_site(conn: Connection, principal: Principal, site: str | None) -> Site:
    """The site an import goes to: the one named (by id or name), or the organization's
    default site."""
    if site is None or not site.strip():
        default = accounts.default_site_id(conn, principal.organization_id)
        found = get_site(conn, principal.organization_id, default) if default else None
        if found is None:
            raise ImportRefused("this organization has no site yet")
        return found
    site = site.strip()
    found = None
    if site.isdigit() and int(site) <= _MAX_SITE_ID:
        found = get_site(conn, principal.organization_id, int(site))
    found = found or find_site(conn, principal.organization_id, site)
    if found is None:
        raise ImportRefused(f"there is no site {site!r}", field="site", site=site)
    return found


def create_import(
    conn: Connection,
    principal: Principal,
    imported: ImportedFile,
    *,
    site: str | None,
    name: str | None,
    description: str,
    data_path: Callable[[int], Path],
    move: Callable[[Path, Path], None],
    now: datetime,
) -> Task:
    """Create the import task in `processing_queued`, its data moved (`move`) from
    `imported.path` to `data_path(task id)`. The caller removes the moved file again when the
    transaction does not commit, so no task data is left without its task."""
    target = resolve_site(conn, principal, site)
    task = task_store.create_task(
        conn,
        {
            "organization_id": principal.organization_id,
            "site_id": target.id,
            "name": name or f"Import into {target.name}",
            "description": description,
            "type": kinds.IMPORT.type,
            "created_by": principal.email,
            "created_by_user_id": principal.user_id,
        },
        actor=principal.email,
        now=now,
    )
    final = data_path(task.id)
    move(imported.path, final)
    queued = task_store.transition(
        conn,
        principal.organization_id,
        task.id,
        TaskStatus.PROCESSING_QUEUED,
        actor=principal.email,
        message=f"imported {imported.hosts} host records",
        changes={
            "size_data": imported.size,
            "data_sha256": imported.sha256,
            "stats": {"hosts": imported.hosts},
            "data_acquisition_ended_at": task.created_at,
        },
        now=now,
    )
    audit.record(
        conn,
        principal,
        "import",
        "task",
        task.id,
        now=now,
        details={"site_id": target.id, "hosts": imported.hosts, "bytes": imported.size},
    )
    return queued
