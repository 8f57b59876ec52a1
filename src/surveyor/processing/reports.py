"""The `report` processor: a report task computes its report and stores the result.

The task's params name the report (`{"report": "overview"}`, core/reports.py). The overview
and the comparison are built from grouped counts (one read, store/reports.py); the External
assets report reads the organization's assets a page (the worker's batch size) at a time,
keeping only the external ones, with progress written as it goes. A stopped or requeued
report task starts again: computing a report twice stores the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from surveyor.core import reports
from surveyor.core.task import Task
from surveyor.processing.processors import ProcessingJob, StopRequested
from surveyor.processing.records import TaskDataError
from surveyor.store import reports as report_store


def _external(job: ProcessingJob) -> dict[str, Any]:
    organization_id = job.task.organization_id
    with job.db.read() as conn:
        total = report_store.count_assets(conn, organization_id)
    found: list[reports.ExternalAsset] = []
    after = 0
    done = 0
    while True:
        with job.db.read() as conn:
            page, last = report_store.external_pages(
                conn, organization_id, after_id=after, limit=max(job.batch_size, 1000)
            )
        if last is None:
            break
        found.extend(page)
        done = min(total, done + max(job.batch_size, 1000))
        after = last
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": round(0.9 * done / total, 4) if total else 0.9})
        if job.should_stop():
            raise StopRequested(job.task.id)
    return reports.external(found, job.clock.now())


def compute_report(job: ProcessingJob) -> Task:
    """Compute the report the task names, store its result and mark the task processed."""
    report = reports.report_named(str(job.task.params.get(reports.REPORT_PARAM, "")))
    if report is None:
        known = ", ".join(r.id for r in reports.REPORTS)
        raise TaskDataError(f"the task names no report; the reports are: {known}")
    now = job.clock.now()
    organization_id = job.task.organization_id
    if report is reports.EXTERNAL:
        result = _external(job)
    else:
        with job.db.read() as conn:
            counts = report_store.inventory_counts(
                conn,
                organization_id,
                now=now,
                services_per_site=report is not reports.OVERVIEW,
            )
        with job.db.write() as conn:
            job.fence(conn, {"progress_process": 0.8})
        build = reports.overview if report is reports.OVERVIEW else reports.comparison
        result = build(counts, now)
    with job.db.write() as conn:
        job.fence(conn)
        report_store.save_result(
            conn, organization_id, report.id, result, task_id=job.task.id, now=job.clock.now()
        )
    return job.finish(
        message=stored_message(report.name, result["summary"]),
        changes={"stats": {str(label): value for label, value in result["summary"]}},
    )


def stored_message(name: str, summary: Sequence[Sequence[Any]]) -> str:
    """The task's message: the report and its first three figures, in words
    ("Comparison stored: 1 site, 4 assets, 0 differences")."""
    return f"{name} stored: " + ", ".join(
        _counted(value, str(label)) for label, value in summary[:3]
    )


def _counted(value: Any, label: str) -> str:
    """`4 assets`, `1 asset`: a one-word plural label is made singular for one."""
    word = label.lower()
    if value == 1 and " " not in word and word.endswith("s"):
        word = word[:-1]
    return f"{value} {word}"
