"""The `outlier` processor: an Outlier calculation scores every asset of its site.

One streaming read of the site's assets in id order, a page (the worker's batch size) at a
time, keeps each asset's features compactly (`SiteProfiles`: assets with the same features
share one profile); the values are counted and each profile scored (core/outliers.py), and
the scores and reasons are written, one fenced transaction per page of assets. Memory holds
the counts, the distinct profiles and two numbers per asset. A stopped or requeued
calculation starts again from the read: scoring is deterministic, so running it again writes
the same scores.

It is requested (`request_after_processing`) whenever processing of a site's data changed
its inventory; at most one waits per site.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from sqlalchemy import Connection

from surveyor.core.outliers import SiteProfiles
from surveyor.core.task import Task
from surveyor.processing.processors import ProcessingJob, StopRequested
from surveyor.processing.records import TaskDataError
from surveyor.store import outliers as outlier_store
from surveyor.store.outliers import AssetFacts

#: Change-summary counts that say a site's inventory changed.
_INVENTORY_CHANGES = ("new", "changed", "offline", "online")


def _pages(job: ProcessingJob, site_id: int) -> Iterator[list[AssetFacts]]:
    after = 0
    while True:
        with job.db.read() as conn:
            page = outlier_store.site_asset_facts(
                conn, site_id, after_id=after, limit=job.batch_size
            )
        if not page:
            return
        yield page
        after = page[-1].id
        if job.should_stop():
            raise StopRequested(job.task.id)


def calculate_outliers(job: ProcessingJob) -> Task:
    """Score every asset of the task's site and mark the task processed."""
    site_id = job.task.site_id
    if site_id is None:
        raise TaskDataError("the task belongs to no site, so there are no peers to compare")
    site = SiteProfiles()
    for page in _pages(job, site_id):
        for facts in page:
            site.add(
                facts.id,
                facts.os,
                facts.hostname,
                facts.services,
                recorded_type=facts.recorded_type,
            )
    results = site.scores(site.counts())
    total = len(site)
    highest = max((result.score for result in results), default=0)
    for start in range(0, total, job.batch_size):
        done = min(start + job.batch_size, total)
        scored = [
            (results[number].score, results[number].reasons, asset_ids)
            for number, asset_ids in site.groups(start, done)
        ]
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": round(done / total, 4)})
            outlier_store.write_scores(conn, scored)
        if job.should_stop():
            raise StopRequested(job.task.id)
    message = (
        f"scored {total} assets; the highest score is {highest}" if total else "no assets to score"
    )
    return job.finish(message=message, changes={"stats": {"assets": total, "highest": highest}})


def request_after_processing(
    conn: Connection, task: Task, summary: Mapping[str, int], *, now: datetime
) -> None:
    """Queue an Outlier calculation of the task's site, in the transaction that finishes its
    processing, when that changed the site's inventory (its change summary counts new,
    changed, offline or online assets)."""
    if task.site_id is None:
        return
    if any(summary.get(key, 0) > 0 for key in _INVENTORY_CHANGES):
        outlier_store.request_outlier_calculation(conn, task.organization_id, task.site_id, now=now)
