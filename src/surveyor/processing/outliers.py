"""The `outlier` processor: an Outlier calculation scores every asset of its site.

Two streaming passes over the site's assets in id order, a page (the worker's batch size) at
a time: the first counts how many assets share each feature value, the second scores each
asset against those counts (core/outliers.py) and writes the scores and reasons, one fenced
transaction per page. Memory holds the counts and one page, whatever the size of the site.
A stopped or requeued calculation starts again from the first pass: scoring is
deterministic, so running it again writes the same scores.

It is requested (`request_after_processing`) whenever processing of a site's data changed
its inventory; at most one waits per site.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from surveyor.core.outliers import FeatureCounts, features_of, score
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


def _features(facts: AssetFacts) -> Any:
    return features_of(facts.os, facts.hostname, facts.services, recorded_type=facts.recorded_type)


def calculate_outliers(job: ProcessingJob) -> Task:
    """Score every asset of the task's site and mark the task processed."""
    site_id = job.task.site_id
    if site_id is None:
        raise TaskDataError("the task belongs to no site, so there are no peers to compare")
    counts = FeatureCounts()
    for page in _pages(job, site_id):
        for facts in page:
            counts.add(_features(facts))
    total = counts.assets
    done = 0
    highest = 0
    for page in _pages(job, site_id):
        scored = []
        for facts in page:
            result = score(_features(facts), counts)
            scored.append((facts.id, result.score, result.reasons))
            highest = max(highest, result.score)
        done += len(page)
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": round(done / total, 4) if total else 1.0})
            outlier_store.write_scores(conn, scored)
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
