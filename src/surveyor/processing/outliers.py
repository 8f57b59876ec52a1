"""The `outlier` processor: an Outlier calculation scores every asset of its site.

One streaming read of the site's assets in id order, a page (the worker's batch size) at a
time, keeps each asset's features compactly (`SiteProfiles`: assets with the same features
share one profile), and the score and reasons each has; the values are counted and each
profile scored (core/outliers.py), and the scores and reasons that changed are written (to
`asset_outliers`), one fenced transaction per batch of them: a calculation after a small
change of the site writes little. On PostgreSQL the server works while Python does: the
next page is read while one is counted, and two batches are written at a time. Memory holds
the counts, the distinct profiles and four numbers per asset. A stopped or requeued
calculation starts again from the read: scoring is deterministic, so running it again writes
only what it did not write yet.

It is requested (`request_after_processing`) whenever processing of a site's data changed
its inventory; at most one waits per site.
"""

from __future__ import annotations

import json
import threading
from array import array
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from datetime import datetime

from sqlalchemy import Connection

from surveyor.core.outliers import SiteProfiles
from surveyor.core.task import Task
from surveyor.processing.processors import ProcessingJob, StopRequested
from surveyor.processing.records import TaskDataError
from surveyor.store import outliers as outlier_store
from surveyor.store.outliers import AssetFacts

#: Batches of scores written at a time on PostgreSQL.
_WRITERS = 2
#: Change-summary counts that say a site's inventory changed.
_INVENTORY_CHANGES = ("new", "changed", "offline", "online")


def _pages(job: ProcessingJob, site_id: int) -> Generator[list[AssetFacts], None, None]:
    """The site's assets a page at a time. On PostgreSQL the next page is read (by another
    thread, on its own connection) while this one is counted: the server works while Python
    does. SQLite reads in this process, so a second reader would only take turns with the
    counting (and map the database file a second time): there pages are read in turn."""

    def read(after: int) -> list[AssetFacts]:
        with job.db.read() as conn:
            return outlier_store.site_asset_facts(
                conn, site_id, after_id=after, limit=job.batch_size
            )

    if job.db.is_sqlite:
        page = read(0)
        while page:
            yield page
            if job.should_stop():
                raise StopRequested(job.task.id)
            page = read(page[-1].id)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="outlier-read") as reader:
        upcoming = reader.submit(read, 0)
        while True:
            page = upcoming.result()
            if not page:
                return
            upcoming = reader.submit(read, page[-1].id)
            yield page
            if job.should_stop():
                raise StopRequested(job.task.id)


def count_page(site: SiteProfiles, page: Sequence[AssetFacts]) -> None:
    """Add a page of the site's assets (as `site_asset_facts` reads them) to its profiles."""
    for facts in page:
        site.add(
            facts.id,
            facts.os,
            facts.hostname,
            facts.services,
            recorded_type=facts.recorded_type,
        )


class _Written:
    """The score and reasons each asset has (as read, in the order read): two numbers per
    asset, its reasons being a number for their text (a site's assets share few texts)."""

    def __init__(self) -> None:
        self.scores = array("h")
        self.reasons = array("l")
        self._numbers: dict[str, int] = {}
        self._read: dict[str, int] = {}

    def number(self, reasons: str) -> int:
        """The number of a reasons text as `reasons_text` writes it."""
        return self._numbers.setdefault(reasons, len(self._numbers))

    def add(self, score: int | None, reasons: str | None) -> None:
        if score is None or reasons is None:
            self.scores.append(-1)
            self.reasons.append(-1)
            return
        number = self._read.get(reasons)
        if number is None:
            # Read texts are compared as `reasons_text` would write their reasons.
            canonical = outlier_store.reasons_text(json.loads(reasons))
            number = self._read[reasons] = self.number(canonical)
        self.scores.append(score)
        self.reasons.append(number)


def calculate_outliers(job: ProcessingJob) -> Task:
    """Score every asset of the task's site, write the scores and reasons that changed, and
    mark the task processed."""
    site_id = job.task.site_id
    if site_id is None:
        raise TaskDataError("the task belongs to no site, so there are no peers to compare")
    site = SiteProfiles()
    written = _Written()
    with closing(_pages(job, site_id)) as pages:
        for page in pages:
            count_page(site, page)
            for facts in page:
                written.add(facts.score, facts.reasons)
    results = site.scores(site.counts())
    total = len(site)
    highest = max((result.score for result in results), default=0)
    # Each profile's score, reasons text and the text's number.
    wanted = []
    for result in results:
        reasons = outlier_store.reasons_text(result.reasons)
        wanted.append((result.score, reasons, written.number(reasons)))
    changed = 0
    pending: list[tuple[int, int, str]] = []
    with _Writer(job) as writer:
        for position, (asset_id, number) in enumerate(
            zip(site.asset_ids, site.profile_of, strict=True)
        ):
            score, reasons, reasons_number = wanted[number]
            if written.scores[position] != score or written.reasons[position] != reasons_number:
                pending.append((asset_id, score, reasons))
                if len(pending) >= job.batch_size:
                    writer.write(pending, (position + 1) / total)
                    changed += len(pending)
                    pending = []
        writer.write(pending, 1.0)
        changed += len(pending)
    message = (
        f"scored {total} assets, {changed} of them anew; the highest score is {highest}"
        if total
        else "no assets to score"
    )
    return job.finish(
        message=message,
        changes={"stats": {"assets": total, "changed": changed, "highest": highest}},
    )


class _Writer:
    """Writes batches of scores, each in a transaction of its own fenced by the lease, with
    the progress it reaches. On PostgreSQL two batches are written at a time (the server
    does the work of a write, and has more than one core); only their fences and commits
    take turns, so the progress recorded never goes back. SQLite has one writer: there the
    batches are written one after another."""

    def __init__(self, job: ProcessingJob) -> None:
        self._job = job
        self._pool = (
            None
            if job.db.is_sqlite
            else ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="outlier-write")
        )
        self._in_flight: deque[Future[None]] = deque()
        self._turn = threading.Lock()
        self._progress = 0.0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, failure: type[BaseException] | None, *details: object) -> None:
        if self._pool is None:
            return
        try:
            # What was handed over is written (or fails) before the calculation ends; when
            # it ends with an error already, that error is the one told.
            while self._in_flight:
                written = self._in_flight.popleft()
                if failure is None:
                    written.result()
                else:
                    wait([written])
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, scored: list[tuple[int, int, str]], progress: float) -> None:
        if self._pool is None:
            self._write(scored, progress)
        else:
            while len(self._in_flight) >= _WRITERS:
                self._in_flight.popleft().result()
            self._in_flight.append(self._pool.submit(self._write, scored, progress))
        if self._job.should_stop():
            raise StopRequested(self._job.task.id)

    def _write(self, scored: list[tuple[int, int, str]], progress: float) -> None:
        turn = False
        try:
            with self._job.db.write() as conn:
                outlier_store.write_scores(conn, scored)
                self._turn.acquire()
                turn = True
                self._progress = max(self._progress, progress)
                self._job.fence(conn, {"progress_process": round(self._progress, 4)})
        finally:
            if turn:
                self._turn.release()


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
